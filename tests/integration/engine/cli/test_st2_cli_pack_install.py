"""The official ``st2`` CLI installing packs as on StackStorm: from local bare git repositories at
a version, with a dependency from another repository, by name through a local pack index;
``st2 pack search|show|remove``; a user's ``linux`` pack replacing the bundled one; and pack
config schemas through ``st2 pack config`` and ``st2 pack register``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.support.pack_actions import engine_api, output, shell_action, write_pack
from tests.integration.support.st2cli import (
    STREAM_SERVICES,
    RunningEngine,
    St2,
    logged_in,
    running_engine,
)

PACKS_DIR = "installed-packs"
USER_PACKS_DIR = "user-packs"
GIT_IDENTITY = ("-c", "user.name=Tests", "-c", "user.email=tests@example.com")


def git(*arguments: str, cwd: Path) -> None:
    subprocess.run(["git", *GIT_IDENTITY, *arguments], cwd=cwd, check=True, capture_output=True)


class Repository:
    """A pack in a git working copy, published to a bare repository as it changes."""

    def __init__(self, root: Path, ref: str) -> None:
        self.ref = ref
        self.work = root / f"{ref}-work"
        self.bare = root / f"{ref}.git"
        self.work.mkdir(parents=True)
        git("init", "-q", "-b", "master", cwd=self.work)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(
        self, version: str, files: dict[str, Any], tag: str | None = None, **fields: Any
    ) -> Repository:
        write_pack(self.work, files, version, ref=self.ref, name=self.ref, **fields)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", f"{self.ref} {version}", cwd=self.work)
        if tag:
            git("tag", tag, cwd=self.work)
        if self.bare.exists():
            git("push", "-q", "--tags", str(self.bare), "master", cwd=self.work)
        else:
            git("clone", "-q", "--bare", str(self.work), str(self.bare), cwd=self.work.parent)
        return self


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pack-sources")


@pytest.fixture(scope="module")
def repositories(sources: Path) -> dict[str, Repository]:
    helper = Repository(sources, "helper")
    helper.commit(
        "1.0.0", {"actions/ping.yaml": shell_action("ping", "echo helper 1.0.0")}, "v1.0.0"
    )
    helper.commit(
        "2.0.0", {"actions/ping.yaml": shell_action("ping", "echo helper 2.0.0")}, "v2.0.0"
    )
    webapp = Repository(sources, "webapp")
    webapp.commit(
        "1.0.0",
        {"actions/hello.yaml": shell_action("hello", "echo webapp 1.0.0")},
        "v1.0.0",
        dependencies=[f"{helper.url}=1.0.0"],
    )
    webapp.commit(
        "1.1.0",
        {"actions/hello.yaml": shell_action("hello", "echo webapp 1.1.0")},
        dependencies=[f"{helper.url}=1.0.0"],
    )
    greeter = Repository(sources, "greeter")
    greeter.commit("0.2.0", {"actions/greet.yaml": shell_action("greet", "echo hi")}, "v0.2.0")
    greeter.commit("0.3.0", {"actions/greet.yaml": shell_action("greet", "echo unreleased")})
    linux = Repository(sources, "linux")
    linux.commit("1.2.0", {"actions/netstat.yaml": shell_action("netstat", "echo netstat")})
    return {"helper": helper, "webapp": webapp, "greeter": greeter, "linux": linux}


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, sources: Path, repositories: dict[str, Repository]
) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-pack-install")
    (directory / PACKS_DIR).mkdir()
    user_packs = directory / USER_PACKS_DIR
    write_pack(
        user_packs / "linux",
        {"actions/check_loadavg.yaml": shell_action("check_loadavg", "cat /proc/loadavg")},
        "1.2.0",
        author="A user",
    )
    greeter = repositories["greeter"]
    index = {
        "metadata": {"generated_ts": 0, "hash": "tests"},
        "packs": {
            "greeter": {
                "name": "greeter",
                "description": "Says hello; found through the index.",
                "keywords": ["greeting", "hello"],
                "version": "0.2.0",
                "author": "Tests",
                "email": "tests@example.com",
                "repo_url": greeter.url,
                "content": {"actions": {"count": 1, "resources": ["greet"]}},
            },
            "helper": {
                "name": "helper",
                "description": "Helps the greeter.",
                "keywords": ["tests"],
                "version": "1.0.0",
                "author": "Tests",
                "repo_url": repositories["helper"].url,
            },
        },
    }
    (sources / "index.json").write_text(json.dumps(index))
    extra = (
        f"[content]\npacks_base_paths = {directory / PACKS_DIR}:{user_packs}\n"
        f"index_url = {(sources / 'index.json').as_uri()}\n"
    )
    with running_engine(directory, extra_conf=extra, services=STREAM_SERVICES) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


@pytest.fixture
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def latest_install(api: httpx.Client) -> dict[str, Any]:
    executions = api.get("/executions", params={"action": "packs.install", "limit": 1}).json()
    return dict(executions[0])


def test_install_a_tagged_version_from_a_bare_repository_with_its_dependency(
    st2: St2, api: httpx.Client, engine: RunningEngine, repositories: dict[str, Repository]
) -> None:
    installed = st2("pack", "install", f"{repositories['webapp'].url}=v1.0.0", timeout=240)
    assert installed.returncode == 0, output(installed)
    assert api.get("/packs/webapp").json()["version"] == "1.0.0"
    assert api.get("/packs/helper").json()["version"] == "1.0.0"
    assert latest_install(api)["result"]["output"]["packs_list"] == ["helper", "webapp"]
    destination = engine.directory / PACKS_DIR / "webapp"
    assert not (destination / ".git").exists()
    ran = st2("run", "webapp.hello", "-j")
    assert ran.json()["result"]["stdout"] == "webapp 1.0.0"
    helped = st2("run", "helper.ping", "-j")
    assert helped.json()["result"]["stdout"] == "helper 1.0.0"

    # Without a version: the default branch. The dependency is installed at the wanted version.
    latest = st2("pack", "install", repositories["webapp"].url, timeout=240)
    assert latest.returncode == 0, output(latest)
    assert st2("run", "webapp.hello", "-j").json()["result"]["stdout"] == "webapp 1.1.0"
    assert latest_install(api)["result"]["output"]["packs_list"] == ["webapp"]

    # A semantic version finds the v-prefixed tag; a version that is nowhere is refused.
    st2("pack", "install", f"{repositories['webapp'].url}=1.0.0", timeout=240)
    assert api.get("/packs/webapp").json()["version"] == "1.0.0"
    missing = st2("pack", "install", f"{repositories['webapp'].url}=9.9.9")
    assert missing.returncode == 1
    assert '"9.9.9" is not a valid version, hash, tag or branch' in output(missing)
    assert "Available versions are: 1.0.0." in output(missing)


def test_a_dependency_at_another_version_than_installed_is_a_conflict(
    st2: St2, api: httpx.Client, sources: Path, repositories: dict[str, Repository]
) -> None:
    if api.get("/packs/helper").status_code == 404:
        st2("pack", "install", f"{repositories['helper'].url}=1.0.0", timeout=240)
    needy = Repository(sources, "needy")
    needy.commit(
        "0.1.0",
        {"actions/run.yaml": shell_action("run", "true")},
        dependencies=[f"{repositories['helper'].url}=2.0.0"],
    )
    refused = st2("pack", "install", needy.url)
    assert refused.returncode == 1
    assert "Unable to install packs due to conflicts" in output(refused)
    assert "(installed: 1.0.0)" in output(refused)
    skipped = st2("pack", "install", needy.url, "--skip-dependencies", timeout=240)
    assert skipped.returncode == 0, output(skipped)
    assert api.get("/packs/helper").json()["version"] == "1.0.0"


def test_install_by_name_through_the_index_and_several_at_once(st2: St2, api: httpx.Client) -> None:
    installed = st2("pack", "install", "helper", "greeter", timeout=240)
    assert installed.returncode == 0, output(installed)
    # The CLI counts what the index says the last pack holds.
    assert 'For the "helper, greeter" packs, the following content will be registered' in (
        installed.stdout
    )
    assert api.get("/packs/greeter").json()["version"] == "0.2.0"
    assert st2("run", "greeter.greet", "-j").json()["result"]["stdout"] == "hi"
    unknown = st2("pack", "install", "nosuchpack")
    assert unknown.returncode == 1
    assert 'No record of the "nosuchpack" pack in the index.' in output(unknown)


def test_search_and_show_read_the_index(st2: St2, api: httpx.Client) -> None:
    found = st2("pack", "search", "hello", "-j")
    assert found.returncode == 0, output(found)
    assert [pack["name"] for pack in found.json()] == ["greeter"]
    by_description = st2("pack", "search", "HELPS", "-j")
    assert [pack["name"] for pack in by_description.json()] == ["helper"]
    shown = st2("pack", "show", "greeter", "-j")
    assert shown.returncode == 0, output(shown)
    assert shown.json()["version"] == "0.2.0"
    assert "No matching items found" in st2("pack", "search", "nothing-like-it").stdout
    index = api.get("/packs/index").json()
    assert sorted(index["index"]) == ["greeter", "helper"]
    assert index["status"][0]["message"] == "Success."


def test_remove_an_installed_pack(st2: St2, api: httpx.Client, engine: RunningEngine) -> None:
    if api.get("/packs/greeter").status_code == 404:
        st2("pack", "install", "greeter", timeout=240)
    removed = st2("pack", "remove", "greeter", timeout=240)
    assert removed.returncode == 0, output(removed)
    assert not (engine.directory / PACKS_DIR / "greeter").exists()
    assert st2("pack", "get", "greeter").returncode == 1
    assert "No matching items found" in st2("action", "list", "--pack", "greeter").stdout


def test_the_users_linux_pack_replaces_the_bundled_one(
    st2: St2, api: httpx.Client, engine: RunningEngine, repositories: dict[str, Repository]
) -> None:
    shown = st2("pack", "get", "linux", "-j")
    assert shown.json()["author"] == "A user"
    actions = {action["ref"] for action in st2("action", "list", "--pack", "linux", "-j").json()}
    assert actions == {"linux.check_loadavg"}
    assert (
        "cat /proc/loadavg"
        in api.get("/actions/linux.check_loadavg").json()["parameters"]["cmd"]["default"]
    )
    assert api.get("/packs/core").json()["path"].endswith("/packs/core")

    # The Exchange's linux, installed from git, replaces the bundled one too.
    installed = st2("pack", "install", repositories["linux"].url, timeout=240)
    assert installed.returncode == 0, output(installed)
    assert api.get("/packs/linux").json()["path"] == str(engine.directory / PACKS_DIR / "linux")
    assert st2("run", "linux.netstat", "-j").json()["result"]["stdout"] == "netstat"


def test_pack_views_show_the_files_of_an_installed_pack(
    st2: St2, api: httpx.Client, engine: RunningEngine
) -> None:
    pack = write_pack(
        engine.directory / PACKS_DIR / "viewed",
        {"actions/run.yaml": shell_action("run", "true"), "icon.png": "\0binary"},
    )
    (pack / "README.md").write_text("# viewed\n")
    assert st2("pack", "register", "viewed").returncode == 0
    files = {
        item["file_path"]: item["content"] for item in api.get("/packs/views/files/viewed").json()
    }
    assert sorted(files) == ["README.md", "actions/run.yaml", "pack.yaml"]
    assert files["README.md"] == "# viewed\n"
    one = api.get("/packs/views/file/viewed/README.md")
    assert (one.status_code, one.text) == (200, "# viewed\n")
    assert one.headers["content-type"].startswith("text/markdown")
    again = api.get(
        "/packs/views/file/viewed/README.md", headers={"If-None-Match": one.headers["ETag"]}
    )
    assert again.status_code == 304
    assert api.get("/packs/views/file/viewed/icon.png").content == b"\0binary"
    for outside in ("../../st2.conf", "nosuchfile", "actions/../../../st2.conf"):
        missing = api.get(f"/packs/views/file/viewed/{outside}")
        assert missing.status_code == 404, outside
    assert api.get("/packs/views/files/nosuchpack").status_code == 404


# --- pack configs --------------------------------------------------------------------------


CONFIG_SCHEMA = {
    "greeting": {"type": "string", "required": True},
    "retries": {"type": "integer", "default": 3},
    "api_token": {"type": "string", "secret": True},
}


def test_pack_config_prompts_from_the_schema_then_the_client_fails_on_its_own_question(
    st2: St2, api: httpx.Client, engine: RunningEngine
) -> None:
    write_pack(
        engine.directory / PACKS_DIR / "cfgcli",
        {"config.schema.yaml": CONFIG_SCHEMA, "actions/noop.yaml": shell_action("noop", "true")},
    )
    assert st2("pack", "register", "cfgcli").returncode == 0
    answered = st2.on_terminal(
        "pack", "config", "cfgcli", answers=["hello", "5", "s3cr3t", "n", "y"]
    )
    # The prompts come from our /v1/config_schemas/cfgcli: each attribute, its type, default
    # and secrecy.
    assert "greeting: hello" in answered.stdout
    assert "retries (integer) [3]: 5" in answered.stdout
    assert "api_token (secret): s3cr3t" in answered.stdout
    # st2client 3.9.0 then asks "preview the config in an editor?" with a description, which
    # it hands to the prompt_toolkit 3.0.52 it pins as prompt_toolkit 1's
    # get_bottom_toolbar_tokens: the CLI fails there, before any request, whatever the server.
    assert answered.returncode == 2
    assert "unexpected keyword argument 'get_bottom_toolbar_tokens'" in answered.stdout
    assert api.get("/configs/cfgcli").status_code == 404

    # What the CLI would then send (PUT /v1/configs/cfgcli) is checked against the schema.
    wrong = api.put("/configs/cfgcli", json={"greeting": "hello", "retries": "five"})
    assert wrong.status_code == 400
    config_file = engine.directory / "data" / "configs" / "cfgcli.yaml"
    assert wrong.json()["faultstring"] == (
        f'Config of pack "cfgcli" ({config_file}) does not match its config.schema.yaml: '
        "retries: 'five' is not of type 'integer'"
    )
    saved = api.put("/configs/cfgcli", json={"greeting": "hello", "api_token": "s3cr3t"})
    assert saved.status_code == 200, saved.text
    stored = api.get("/configs/cfgcli").json()["values"]
    assert stored == {"greeting": "hello", "api_token": "********", "retries": 3}
    shown = api.get("/configs/cfgcli", params={"show_secrets": "true"}).json()["values"]
    assert shown["api_token"] == "s3cr3t"


def test_a_config_that_breaks_its_schema_is_refused_naming_pack_file_and_key(
    st2: St2, engine: RunningEngine
) -> None:
    write_pack(engine.directory / PACKS_DIR / "cfgbad", {"config.schema.yaml": CONFIG_SCHEMA})
    config_file = engine.directory / "data" / "configs" / "cfgbad.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("greeting: hi\nretries: many\n")
    refused = st2("pack", "register", "cfgbad")
    assert refused.returncode == 2, output(refused)
    assert f"{config_file}: retries: 'many' is not of type 'integer'" in output(refused)
    config_file.write_text("greeting: hi\n")
    registered = st2("pack", "register", "cfgbad")
    assert registered.returncode == 0, output(registered)

    schema_file = engine.directory / PACKS_DIR / "cfgbad" / "config.schema.yaml"
    schema_file.write_text(yaml.safe_dump({"retries": {"type": "integr"}}))
    bad_schema = st2("pack", "register", "cfgbad")
    assert bad_schema.returncode == 2
    assert f"{schema_file}: retries" in output(bad_schema)
