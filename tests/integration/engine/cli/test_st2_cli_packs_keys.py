"""The official ``st2`` CLI against the engine: packs (list, get, register, install from a local
directory, remove), the datastore (``st2 key``) and pack configs, with every engine service
running as a real process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.support import st2cli
from tests.integration.support.pack_actions import shell_action, write_pack
from tests.integration.support.st2cli import (
    STREAM_SERVICES,
    USER,
    CliResult,
    RunningEngine,
    St2,
    running_engine,
)

PACKS_DIR = "installed-packs"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-packs")
    (directory / PACKS_DIR).mkdir()
    # An index without the packs these tests name: a name is looked up in it and not found.
    index = directory / "index.json"
    index.write_text('{"metadata": {}, "packs": {"unrelated": {"name": "unrelated"}}}')
    extra = f"[content]\npacks_base_paths = {directory / PACKS_DIR}\nindex_url = {index.as_uri()}\n"
    with running_engine(directory, extra_conf=extra, services=STREAM_SERVICES) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    cli = St2(engine, tmp_path / "home")
    cli.login()
    return cli


@pytest.fixture
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as client:
        yield client


def output(result: CliResult) -> str:
    return result.stdout + result.stderr


# --- packs ---------------------------------------------------------------------------------


def test_pack_list_and_get(st2: St2, api: httpx.Client) -> None:
    listed = st2("pack", "list", "-j")
    assert listed.returncode == 0, output(listed)
    packs = {pack["ref"]: pack for pack in listed.json()}
    assert {"core", "packs"} <= set(packs)
    assert packs["core"]["version"] == "1.0.0"
    filtered = api.get("/packs/", params={"include_attributes": "ref,name,version"})
    assert filtered.headers["X-Total-Count"] == str(len(packs))
    assert {"id", "ref", "name", "version"} == set(filtered.json()[0])
    table = st2("pack", "list")
    assert "core" in table.stdout and "PoundCake" in table.stdout
    shown = st2("pack", "get", "core", "-j")
    assert shown.returncode == 0, output(shown)
    assert shown.json()["name"] == "core"
    assert shown.json()["author"] == "PoundCake"
    missing = st2("pack", "get", "nosuchpack")
    assert missing.returncode == 1
    assert "not found" in output(missing)


def test_pack_register_prints_counts(st2: St2) -> None:
    everything = st2("pack", "register", "core", "-j")
    assert everything.returncode == 0, output(everything)
    counts = everything.json()
    assert set(counts) == {
        "runners",
        "actions",
        "triggers",
        "sensors",
        "rules",
        "rule_types",
        "policy_types",
        "aliases",
        "policies",
        "configs",
    }
    core_actions = len(list((st2cli.REPOSITORY / "packs" / "core" / "actions").glob("*.yaml")))
    assert counts["actions"] == core_actions
    assert counts["runners"] >= 5
    assert counts["rule_types"] == 2
    actions_only = st2("pack", "register", "core", "--types", "action", "-j")
    assert actions_only.returncode == 0, output(actions_only)
    assert actions_only.json() == {"runners": counts["runners"], "actions": core_actions}
    table = st2("pack", "register", "core")
    assert table.returncode == 0, output(table)
    assert "actions" in table.stdout and str(core_actions) in table.stdout


def test_register_of_an_unknown_pack_fails(st2: St2) -> None:
    result = st2("pack", "register", "nosuchpack")
    assert result.returncode == 2
    assert 'Pack "nosuchpack" not found on disk: searched' in output(result)
    bad_type = st2("pack", "register", "core", "--types", "gadget")
    assert bad_type.returncode == 2
    assert 'Invalid content type "gadget"' in output(bad_type)


def test_install_run_and_remove_a_local_pack(
    st2: St2, engine: RunningEngine, api: httpx.Client, tmp_path: Path
) -> None:
    source = write_pack(
        tmp_path / "sources" / "mypack",
        {"actions/hello.yaml": shell_action("hello", "echo hello from mypack")},
    )
    installed = st2("pack", "install", f"file://{source}", timeout=180)
    assert installed.returncode == 0, output(installed)
    assert "mypack" in installed.stdout
    destination = engine.directory / PACKS_DIR / "mypack"
    assert (destination / "actions" / "hello.yaml").is_file()
    assert api.get("/packs/mypack").json()["path"] == str(destination)

    listed = st2("action", "list", "--pack", "mypack", "-j")
    assert [action["ref"] for action in listed.json()] == ["mypack.hello"]
    ran = st2("run", "mypack.hello", "-j")
    assert ran.returncode == 0, output(ran)
    assert ran.json()["result"]["stdout"] == "hello from mypack"

    install = latest_execution(api, "packs.install")
    assert install["status"] == "succeeded"
    assert install["runner"]["name"] == "pack-management"
    assert install["context"]["user"] == USER
    assert install["result"]["output"] == {"packs_list": ["mypack"], "warning_list": []}

    removed = st2("pack", "remove", "mypack", timeout=180)
    assert removed.returncode == 0, output(removed)
    assert not destination.exists()
    assert st2("pack", "get", "mypack").returncode == 1
    assert "No matching items found" in st2("action", "list", "--pack", "mypack").stdout
    assert source.is_dir(), "the source directory is left alone"
    assert latest_execution(api, "packs.uninstall")["status"] == "succeeded"
    uninstalls = api.get("/executions", params={"action": "packs.uninstall"})
    system = st2("pack", "remove", "core")
    assert system.returncode == 1
    assert 'Pack "core" is a system pack and cannot be removed.' in output(system)
    again = api.get("/executions", params={"action": "packs.uninstall"})
    assert again.headers["X-Total-Count"] == uninstalls.headers["X-Total-Count"] == "1"
    assert api.get("/packs/core").status_code == 200


def latest_execution(api: httpx.Client, action: str) -> dict[str, Any]:
    found = api.get("/executions", params={"action": action, "limit": 1})
    assert found.status_code == 200, found.text
    execution: dict[str, Any] = found.json()[0]
    return execution


def test_install_refuses_what_cannot_work_before_running_anything(
    st2: St2, api: httpx.Client, tmp_path: Path
) -> None:
    before = api.get("/executions", params={"action": "packs.install"}).headers["X-Total-Count"]
    unreachable = st2("pack", "install", "http://127.0.0.1:9/stackstorm-aws.git")
    assert unreachable.returncode == 1
    assert "MESSAGE: Cannot install" in output(unreachable)
    assert "git clone of http://127.0.0.1:9/stackstorm-aws.git failed" in output(unreachable)
    nowhere = st2("pack", "install", "file:///nonexistent/stackstorm-aws.git=v1.0.0")
    assert "/nonexistent/stackstorm-aws.git does not exist" in output(nowhere)
    exchange = st2("pack", "install", "aws")
    assert exchange.returncode == 1
    assert 'No record of the "aws" pack in the index.' in output(exchange)
    empty = tmp_path / "not-a-pack"
    empty.mkdir()
    no_manifest = st2("pack", "install", f"file://{empty}")
    assert no_manifest.returncode == 1
    assert f"{empty} has no pack.yaml" in output(no_manifest)
    needy = write_pack(tmp_path / "needy", {"actions/hello.yaml": shell_action("hello", "true")})
    manifest = yaml.safe_load((needy / "pack.yaml").read_text())
    (needy / "pack.yaml").write_text(yaml.safe_dump({**manifest, "dependencies": ["other"]}))
    missing = st2("pack", "install", str(needy))
    assert missing.returncode == 1
    assert 'No record of the "other" pack in the index.' in output(missing)
    after = api.get("/executions", params={"action": "packs.install"}).headers["X-Total-Count"]
    assert after == before, "nothing was requested"


def test_a_pack_that_does_not_register_is_a_failed_install(
    st2: St2, engine: RunningEngine, api: httpx.Client, tmp_path: Path
) -> None:
    broken = write_pack(tmp_path / "broken", {"actions/bad.yaml": "name: [unclosed\n"})
    result = st2("pack", "install", f"file://{broken}", timeout=180)
    # st2client 3.9.0 then fails to print the details of a failed execution whose runner is
    # not a workflow runner ("'Namespace' object has no attribute 'with_schema'").
    assert result.returncode == 1, output(result)
    install = latest_execution(api, "packs.install")
    assert install["status"] == "failed"
    assert install["parameters"]["packs"] == [f"file://{broken}"]
    [error] = install["result"]["errors"]
    assert "Failed to register" in error["message"]
    assert "bad.yaml: is not valid YAML" in error["message"]
    assert install["result"]["output"] == {"packs_list": [], "warning_list": []}
    assert not (engine.directory / PACKS_DIR / "broken").exists()
    assert st2("pack", "get", "broken").returncode == 1


def test_pack_search_of_an_empty_index_finds_nothing(st2: St2, api: httpx.Client) -> None:
    result = st2("pack", "search", "aws")
    assert result.returncode == 0, output(result)
    assert "No matching items found" in result.stdout
    response = api.post("/packs/index/search", json={"pack": "aws"})
    assert (response.status_code, response.json()) == (200, [])


# --- pack configs --------------------------------------------------------------------------


CONFIG_SCHEMA = {
    "greeting": {"type": "string", "description": "What to say.", "required": True},
    "api_token": {"type": "string", "secret": True, "required": False},
    "retries": {"type": "integer", "default": 3},
}


def test_register_a_new_pack_and_configure_it(
    st2: St2, engine: RunningEngine, api: httpx.Client
) -> None:
    write_pack(
        engine.directory / PACKS_DIR / "cfgpack",
        {
            "config.schema.yaml": CONFIG_SCHEMA,
            "actions/greet.yaml": shell_action("greet", "echo {{ config_context.greeting }}"),
        },
    )
    registered = st2("pack", "register", "cfgpack", "-j")
    assert registered.returncode == 0, output(registered)
    assert registered.json()["actions"] == 1

    schema = api.get("/config_schemas/cfgpack")
    assert schema.status_code == 200
    assert schema.json()["attributes"] == CONFIG_SCHEMA
    assert api.get("/configs/cfgpack").status_code == 404

    stored = api.put("/configs/cfgpack", json={"greeting": "hi there", "api_token": "s3cr3t"})
    assert stored.status_code == 200, stored.text
    assert stored.json()["values"] == {
        "greeting": "hi there",
        "api_token": "********",
        "retries": 3,
    }
    shown = api.get("/configs/cfgpack", params={"show_secrets": "true"}).json()
    assert shown["values"]["api_token"] == "s3cr3t"
    assert api.get("/configs/cfgpack").json()["values"]["api_token"] == "********"
    on_disk = yaml.safe_load((engine.directory / "data" / "configs" / "cfgpack.yaml").read_text())
    assert on_disk == {"greeting": "hi there", "api_token": "s3cr3t"}
    listed = api.get("/configs")
    assert [config["pack"] for config in listed.json()] == ["cfgpack"]
    assert listed.headers["X-Total-Count"] == "1"

    wrong_type = api.put("/configs/cfgpack", json={"greeting": 5})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["faultstring"] == (
        f'Config of pack "cfgpack" ({engine.directory / "data" / "configs" / "cfgpack.yaml"}) '
        "does not match its config.schema.yaml: greeting: 5 is not of type 'string'"
    )
    missing = api.put("/configs/cfgpack", json={"retries": 1})
    assert missing.status_code == 400
    assert "'greeting' is a required property" in missing.json()["faultstring"]
    assert api.get("/configs/cfgpack", params={"show_secrets": "true"}).json()["values"] == {
        "greeting": "hi there",
        "api_token": "s3cr3t",
        "retries": 3,
    }
    assert api.put("/configs/nosuchpack", json={}).status_code == 404
    assert api.get("/config_schemas/core").status_code == 404

    ran = st2("run", "cfgpack.greet", "-j")
    assert ran.returncode == 0, output(ran)
    assert ran.json()["result"]["stdout"] == "hi there"


# --- the datastore -------------------------------------------------------------------------


def test_key_set_get_list_and_delete(st2: St2, api: httpx.Client) -> None:
    created = st2("key", "set", "a", "b", "-j")
    assert created.returncode == 0, output(created)
    assert created.json() == {"name": "a", "value": "b", "scope": "st2kv.system"}
    assert st2("key", "set", "app.url", "http://x", "-j").returncode == 0
    shown = st2("key", "get", "a", "-j")
    assert shown.returncode == 0, output(shown)
    assert shown.json()["value"] == "b"
    assert shown.json()["secret"] is False

    names = {item["name"] for item in st2("key", "list", "-j").json()}
    assert {"a", "app.url"} <= names
    prefixed = st2("key", "list", "--prefix", "app.", "-j")
    assert [item["name"] for item in prefixed.json()] == ["app.url"]
    table = st2("key", "list")
    assert "app.url" in table.stdout and "http://x" in table.stdout
    page = api.get("/keys/", params={"limit": 1, "scope": "system"})
    assert len(page.json()) == 1
    assert int(page.headers["X-Total-Count"]) >= 2

    deleted = st2("key", "delete", "a")
    assert deleted.returncode == 0, output(deleted)
    gone = st2("key", "get", "a")
    assert gone.returncode == 1
    assert "not found" in output(gone)
    assert api.delete("/keys/a").status_code == 404


def test_secret_keys_are_encrypted_unless_decrypted(st2: St2) -> None:
    stored = st2("key", "set", "s", "secretvalue", "-e", "-j")
    assert stored.returncode == 0, output(stored)
    assert stored.json()["value"] != "secretvalue"
    encrypted = st2("key", "get", "s", "-j").json()
    assert encrypted["secret"] is True and encrypted["encrypted"] is True
    assert encrypted["value"] != "secretvalue"
    assert all(c in "0123456789ABCDEF" for c in encrypted["value"])
    decrypted = st2("key", "get", "s", "-d", "-j").json()
    assert decrypted["value"] == "secretvalue"
    assert decrypted["encrypted"] is False
    listed = {item["name"]: item for item in st2("key", "list", "-d", "-j").json()}
    assert listed["s"]["value"] == "secretvalue"
    reloaded = st2("key", "set", "s2", encrypted["value"], "--encrypted", "-j")
    assert reloaded.returncode == 0, output(reloaded)
    assert st2("key", "get", "s2", "-d", "-j").json()["value"] == "secretvalue"


def test_key_with_ttl_expires(st2: St2) -> None:
    stored = st2("key", "set", "t", "v", "-l", "1", "-j")
    assert stored.returncode == 0, output(stored)
    assert stored.json()["expire_timestamp"].endswith("Z")
    time.sleep(1.5)
    expired = st2("key", "get", "t")
    assert expired.returncode == 1
    assert "not found" in output(expired)
    assert "t" not in {item["name"] for item in st2("key", "list", "-j").json()}


def test_user_scoped_keys(st2: St2, api: httpx.Client) -> None:
    stored = st2("key", "set", "mine", "u1", "-s", "user", "-j")
    assert stored.returncode == 0, output(stored)
    assert stored.json()["scope"] == "st2kv.user"
    assert st2("key", "get", "mine").returncode == 1, "not in the system scope"
    shown = st2("key", "get", "mine", "-s", "user", "-j")
    assert shown.returncode == 0, output(shown)
    assert shown.json()["value"] == "u1"
    user_keys = st2("key", "list", "-s", "user", "-j").json()
    assert [(item["name"], item["scope"]) for item in user_keys] == [("mine", "st2kv.user")]
    everything = {(item["name"], item["scope"]) for item in st2("key", "list", "-j").json()}
    assert ("mine", "st2kv.user") in everything
    for_other = st2("key", "set", "theirs", "u2", "-s", "user", "-u", "someone", "-j")
    assert for_other.returncode == 0, output(for_other)
    other = api.get("/keys/theirs", params={"scope": "user", "user": "someone"})
    assert (other.json()["value"], other.json()["user"]) == ("u2", "someone")
    assert api.get("/keys/theirs", params={"scope": "user"}).status_code == 404
    mine_only = api.get("/keys", params={"scope": "user"}).json()
    assert {item["user"] for item in mine_only} == {USER}
    deleted = st2("key", "delete", "mine", "-s", "user")
    assert deleted.returncode == 0, output(deleted)
    assert st2("key", "get", "mine", "-s", "user").returncode == 1


def test_key_errors_are_faultstrings(api: httpx.Client) -> None:
    no_value = api.put("/keys/x", json={"name": "x"})
    assert (no_value.status_code, no_value.json()) == (
        400,
        {"faultstring": "'value' is a required property"},
    )
    bad_scope = api.get("/keys/x", params={"scope": "galaxy"})
    assert bad_scope.status_code == 400
    assert 'Invalid scope "galaxy"' in bad_scope.json()["faultstring"]
    bad_ttl = api.put("/keys/x", json={"name": "x", "value": "v", "ttl": 0})
    assert bad_ttl.status_code == 400
