"""Pure helpers of pack installation, registration over the API, pack configs and the
``pack-management`` runner's result."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.packs.configs import MASK, check_values, mask_secrets
from poundcake.engine.packs.index import fetch_index, index_urls, search_index
from poundcake.engine.packs.install import (
    compatibility_problems,
    dependency_ref,
    packs_directory,
    version_satisfies,
)
from poundcake.engine.packs.loader import ContentType, PackSpec
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR, ContentLocations
from poundcake.engine.packs.registration import plan_registration
from poundcake.engine.packs.runner import workflow_result
from poundcake.engine.packs.sources import PackSource, clone, pick_commit, resolve_source
from poundcake.engine.runners.registry import runner_class, runner_types
from poundcake.exceptions import ValidationError


def make_pack(root: Path, name: str = "mypack") -> Path:
    pack = root / name
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        f"name: {name}\ndescription: d\nversion: 1.0.0\nauthor: Tests\n"
    )
    return pack


BUNDLED = BUNDLED_PACKS_DIR
GIT = ("git", "-c", "user.name=Tests", "-c", "user.email=tests@example.com")


def make_repository(root: Path) -> Path:
    """A bare repository of a pack with tags v1.0.0 and v1.1.0 and one untagged commit."""
    work = root / "work"
    work.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "master"], cwd=work, check=True)
    for version, tag in (("1.0.0", "v1.0.0"), ("1.1.0", "v1.1.0"), ("1.2.0", None)):
        (work / "pack.yaml").write_text(
            f"name: repo\ndescription: d\nversion: {version}\nauthor: Tests\n"
        )
        subprocess.run([*GIT, "add", "-A"], cwd=work, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", version], cwd=work, check=True)
        if tag:
            subprocess.run([*GIT, "tag", tag], cwd=work, check=True)
    bare = root / "repo.git"
    subprocess.run([*GIT, "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


def write_index(root: Path, packs: dict[str, Any]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "index.json"
    path.write_text(json.dumps({"metadata": {}, "packs": packs}))
    return path.as_uri()


def spec(**fields: object) -> PackSpec:
    values: dict[str, object] = {
        "ref": "mypack",
        "name": "mypack",
        "description": "d",
        "version": "1.0.0",
        "author": "Tests",
        "path": Path("/nowhere"),
    }
    values.update(fields)
    return PackSpec(**values)  # type: ignore[arg-type]


# --- sources -------------------------------------------------------------------------------


def test_file_urls_and_absolute_paths_name_local_packs(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "with space")
    for request in (
        f"file://{pack}",
        f"file://localhost{pack}",
        "file://" + str(pack).replace(" ", "%20"),
        str(pack),
        f"  {pack}  ",
    ):
        assert resolve_source(request, (), BUNDLED) == PackSource(request, directory=pack)


@pytest.mark.parametrize(
    ("request_text", "repo_url", "version"),
    [
        ("https://github.com/StackStorm-Exchange/stackstorm-aws", None, None),
        ("https://github.com/StackStorm-Exchange/stackstorm-aws=v1.2.0", None, "v1.2.0"),
        ("git@github.com:StackStorm-Exchange/stackstorm-aws.git=main", None, "main"),
        (
            "StackStorm-Exchange/stackstorm-aws=1.0.0",
            "https://github.com/StackStorm-Exchange/stackstorm-aws",
            "1.0.0",
        ),
    ],
)
def test_git_urls_and_versions(
    request_text: str, repo_url: str | None, version: str | None
) -> None:
    source = resolve_source(request_text, (), BUNDLED)
    assert source.repo_url == (repo_url or request_text.partition("=")[0])
    assert source.version == version


def test_a_local_git_repository_is_cloned_not_copied(tmp_path: Path) -> None:
    repository = make_repository(tmp_path)
    source = resolve_source(f"file://{repository}=v1.0.0", (), BUNDLED)
    assert (source.repo_url, source.version, source.directory) == (
        repository.as_uri(),
        "v1.0.0",
        None,
    )


def test_names_come_from_the_index_then_the_bundled_packs(tmp_path: Path) -> None:
    index = write_index(
        tmp_path, {"aws": {"repo_url": "https://example.com/aws", "version": "2.0.0"}}
    )
    aws = resolve_source("aws", (index,), BUNDLED)
    assert (aws.repo_url, aws.version, aws.index_name) == (
        "https://example.com/aws",
        "2.0.0",
        "aws",
    )
    assert resolve_source("aws=1.0.0", (index,), BUNDLED).version == "1.0.0"
    linux = resolve_source("linux", (index,), BUNDLED)
    assert linux.directory == BUNDLED / "linux"
    with pytest.raises(ValidationError, match='No record of the "gcp" pack in the index'):
        resolve_source("gcp", (index,), BUNDLED)
    unreachable = (tmp_path / "missing.json").as_uri()
    with pytest.raises(ValidationError, match=r"No results from the pack index.*unresponsive"):
        resolve_source("aws", (unreachable,), BUNDLED)
    assert resolve_source("linux", (unreachable,), BUNDLED).directory == BUNDLED / "linux"


def test_what_names_nothing_is_refused() -> None:
    with pytest.raises(ValidationError, match='"not a name" is not a pack name or a URL'):
        resolve_source("not a name", (), BUNDLED)
    with pytest.raises(ValidationError, match="An empty pack name"):
        resolve_source("=1.0.0", (), BUNDLED)


def test_file_url_on_another_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="absolute path on this host"):
        resolve_source(f"file://otherhost{tmp_path}", (), BUNDLED)


def test_a_directory_without_pack_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=f"{tmp_path} has no pack.yaml"):
        resolve_source(f"file://{tmp_path}", (), BUNDLED)
    with pytest.raises(ValidationError, match="is not a git repository, so it has no version"):
        resolve_source(f"file://{make_pack(tmp_path)}=1.0.0", (), BUNDLED)


def test_versions_are_branches_tags_or_commits_and_1_0_0_finds_v1_0_0(tmp_path: Path) -> None:
    repository = make_repository(tmp_path)
    checkout = tmp_path / "checkout"
    source = PackSource("r", repo_url=repository.as_uri(), version="1.0.0")
    clone(source, checkout)
    assert "version: 1.0.0" in (checkout / "pack.yaml").read_text()
    tagged = subprocess.run(
        ["git", "rev-parse", "v1.0.0^{commit}"], cwd=checkout, capture_output=True, text=True
    ).stdout.strip()
    assert pick_commit(checkout, "v1.0.0", "r") == tagged
    assert pick_commit(checkout, tagged, "r") == tagged
    assert pick_commit(checkout, "master", "r") != tagged
    with pytest.raises(ValidationError) as refused:
        pick_commit(checkout, "3.0.0", "repo")
    assert str(refused.value) == (
        '"3.0.0" is not a valid version, hash, tag or branch in repo. '
        "Available versions are: 1.0.0, 1.1.0."
    )


def test_search_ranks_names_then_keywords_then_the_rest(tmp_path: Path) -> None:
    index = write_index(
        tmp_path,
        {
            "zabbix": {"name": "zabbix", "description": "Monitoring with Zabbix."},
            "nagios": {"name": "nagios", "keywords": ["monitoring"], "description": "x"},
            "monitoring": {"name": "monitoring", "description": "x"},
            "mail": {"name": "mail", "email": "monitoring@example.com", "description": "x"},
        },
    )
    found = search_index([index], "MONITORING")
    assert [pack["name"] for pack in found] == ["monitoring", "nagios", "zabbix"]
    with pytest.raises(ValidationError, match="Query must be specified"):
        search_index([index], " ")


def test_the_first_index_wins_and_bad_indexes_are_reported(tmp_path: Path) -> None:
    first = write_index(tmp_path / "a", {"aws": {"name": "aws", "version": "1.0.0"}})
    second = write_index(tmp_path / "b", {"aws": {"name": "aws", "version": "2.0.0"}})
    broken = tmp_path / "broken.json"
    broken.write_text("[]")
    index = fetch_index([first, second, broken.as_uri()])
    assert index.packs["aws"]["version"] == "1.0.0"
    assert [status["error"] for status in index.status] == [None, None, "malformed"]
    assert index_urls(None) == ["https://index.stackstorm.org/v1/index.json"]
    assert index_urls(" a , b ") == ["a", "b"]
    assert index_urls("") == []


def test_packs_go_to_the_first_existing_writable_base_path(tmp_path: Path) -> None:
    missing, read_only, writable = tmp_path / "missing", tmp_path / "ro", tmp_path / "rw"
    read_only.mkdir()
    writable.mkdir()
    read_only.chmod(0o500)
    try:
        locations = ContentLocations(tmp_path / "system", (missing, read_only, writable), tmp_path)
        if os.access(read_only, os.W_OK):  # running as root: permissions do not bind
            assert packs_directory(locations) == read_only
        else:
            assert packs_directory(locations) == writable
    finally:
        read_only.chmod(0o700)


def test_without_a_packs_base_path_nothing_can_be_installed(tmp_path: Path) -> None:
    locations = ContentLocations(tmp_path, (), tmp_path / "configs")
    with pytest.raises(ValidationError, match=r"\[content\] packs_base_paths is nothing"):
        packs_directory(locations)


# --- compatibility and dependencies --------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        (">=3.0.0", True),
        (">=3.9.0,<4.0.0", True),
        (">3.9.0", False),
        ("<3.9.0", False),
        ("<=3.9.0", True),
        ("=3.9.0", True),
        ("==3.8.1", False),
        (">= 2.10.0, < 3.10.0", True),
        (">=4.0.0", False),
    ],
)
def test_stackstorm_version_requirements(requirement: str, expected: bool) -> None:
    assert version_satisfies(requirement, "3.9.0") is expected


def test_a_version_requirement_must_have_a_clause() -> None:
    with pytest.raises(ValidationError):
        version_satisfies("3.9.0")


@pytest.mark.parametrize(
    ("dependency", "ref"),
    [
        ("core", "core"),
        ("aws=1.2.0", "aws"),
        ("https://github.com/StackStorm-Exchange/stackstorm-aws.git", "aws"),
        ("https://github.com/org/my-pack/", "my_pack"),
        ("file:///opt/packs/monitoring", "monitoring"),
    ],
)
def test_dependency_refs(dependency: str, ref: str) -> None:
    assert dependency_ref(dependency) == ref


def test_compatibility_problems() -> None:
    assert compatibility_problems(spec(python_versions=["2", "3"])) == []
    assert compatibility_problems(spec(stackstorm_version=">=3.0.0")) == []
    python2 = compatibility_problems(spec(python_versions=["2"]))
    assert python2 == ['Pack "mypack" supports Python 2 only, and actions here run on Python 3.']
    too_new = compatibility_problems(spec(stackstorm_version=">=4.0.0"))
    assert too_new == [
        'Pack "mypack" requires StackStorm >=4.0.0, and this engine is compatible with '
        "StackStorm 3.9.0."
    ]


# --- registration types --------------------------------------------------------------------

EVERY_KIND = (
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
)


@pytest.mark.parametrize("types", [None, [], ["all"], ["action", "all"]])
def test_no_types_or_all_registers_everything(types: list[str] | None) -> None:
    plan = plan_registration(types)
    assert plan.counted == EVERY_KIND
    assert plan.content_types == frozenset(ContentType)


def test_singular_and_plural_types_and_what_they_imply() -> None:
    assert plan_registration(["action"]).counted == ("runners", "actions")
    assert plan_registration(["actions"]).content_types == {
        ContentType.RUNNERS,
        ContentType.ACTIONS,
    }
    rules = plan_registration(["rule"])
    assert (rules.counted, rules.content_types) == (("rules", "rule_types"), {ContentType.RULES})
    assert plan_registration(["policy_type"]).counted == ("policy_types",)
    assert plan_registration(["policy_type"]).content_types == frozenset()
    assert plan_registration(["POLICIES"]).counted == ("policy_types", "policies")
    assert plan_registration(["alias", "config"]).counted == ("aliases", "configs")


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError, match='Invalid content type "gadget"; valid types are'):
        plan_registration(["action", "gadget"])


# --- configs -------------------------------------------------------------------------------

SCHEMA = {
    "host": {"type": "string", "required": True},
    "port": {"type": "integer", "default": 443},
    "token": {"type": "string", "secret": True},
    "auth": {
        "type": "object",
        "properties": {"user": {"type": "string"}, "password": {"type": "string", "secret": True}},
    },
}


def test_config_values_get_defaults_and_templates_pass() -> None:
    assert check_values({"host": "a"}, SCHEMA) == {"host": "a", "port": 443}
    templated = check_values({"host": "a", "port": "{{ st2kv.system.port }}"}, SCHEMA)
    assert templated["port"] == "{{ st2kv.system.port }}"
    assert check_values({"anything": 1}, None) == {"anything": 1}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"port": 1}, "'host' is a required property"),
        ({"host": 5}, "host: 5 is not of type 'string'"),
        ({"host": "a", "auth": {"user": 1}}, "auth.user: 1 is not of type 'string'"),
        (["host"], "must be an object"),
    ],
)
def test_config_values_that_break_the_schema(values: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        check_values(values, SCHEMA)


def test_secret_config_attributes_are_masked() -> None:
    values = {"host": "a", "token": "t", "auth": {"user": "u", "password": "p"}, "other": 1}
    assert mask_secrets(values, SCHEMA) == {
        "host": "a",
        "token": MASK,
        "auth": {"user": "u", "password": MASK},
        "other": 1,
    }
    assert mask_secrets({"host": "a", "token": None}, SCHEMA) == {"host": "a", "token": None}
    assert mask_secrets(values, None) == values


# --- the pack-management runner ------------------------------------------------------------


def test_a_returned_report_becomes_the_workflow_output() -> None:
    python_result = {
        "result": {"packs_list": ["mypack"], "warning_list": []},
        "stdout": "",
        "stderr": "",
        "exit_code": 0,
    }
    assert workflow_result(python_result) == {
        "output": {"packs_list": ["mypack"], "warning_list": []},
        "stdout": "",
        "stderr": "",
        "exit_code": 0,
    }


def test_a_reported_error_becomes_the_workflow_errors() -> None:
    shaped = workflow_result(
        {
            "result": {"packs_list": [], "warning_list": [], "error": "no such pack"},
            "stdout": "",
            "stderr": "",
            "exit_code": 0,
        }
    )
    assert shaped["output"] == {"packs_list": [], "warning_list": []}
    assert shaped["errors"] == [{"type": "error", "message": "no such pack"}]


def test_a_crash_or_a_timeout_becomes_the_workflow_errors() -> None:
    crashed = workflow_result(
        {"result": None, "stdout": "", "stderr": "Traceback\nKeyError: 'x'\n", "exit_code": 1}
    )
    assert (crashed["output"], crashed["errors"]) == (
        {},
        [{"type": "error", "message": "KeyError: 'x'"}],
    )
    timed_out = workflow_result(
        {"result": None, "stdout": "", "stderr": "", "exit_code": -9, "error": "too slow"}
    )
    assert timed_out["errors"] == [{"type": "error", "message": "too slow"}]
    assert timed_out["error"] == "too slow"


def test_the_runner_type_is_shipped() -> None:
    spec = runner_types()["pack-management"]
    assert spec.output_key == "output"
    assert runner_class("pack-management").runner_type == "pack-management"
    assert spec.runner_parameters["timeout"]["default"] == 600
