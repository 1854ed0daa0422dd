"""Pure helpers of pack installation, registration over the API, pack configs and the
``pack-management`` runner's result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poundcake.engine.packs.configs import MASK, check_values, mask_secrets
from poundcake.engine.packs.install import (
    compatibility_problems,
    dependency_ref,
    local_source,
    packs_directory,
    version_satisfies,
)
from poundcake.engine.packs.loader import ContentType, PackSpec
from poundcake.engine.packs.locations import ContentLocations
from poundcake.engine.packs.registration import plan_registration
from poundcake.engine.packs.runner import workflow_result
from poundcake.engine.runners.registry import runner_class, runner_types
from poundcake.exceptions import ValidationError


def make_pack(root: Path, name: str = "mypack") -> Path:
    pack = root / name
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        f"name: {name}\ndescription: d\nversion: 1.0.0\nauthor: Tests\n"
    )
    return pack


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
    assert local_source(f"file://{pack}") == pack
    assert local_source(f"file://localhost{pack}") == pack
    assert local_source("file://" + str(pack).replace(" ", "%20")) == pack
    assert local_source(str(pack)) == pack
    assert local_source(f"  {pack}  ") == pack


@pytest.mark.parametrize(
    "source",
    [
        "aws",
        "https://github.com/StackStorm-Exchange/stackstorm-aws",
        "git@github.com:StackStorm-Exchange/stackstorm-aws.git",
        "aws=1.0.0",
        "relative/path",
    ],
)
def test_remote_and_relative_sources_are_refused(source: str) -> None:
    with pytest.raises(ValidationError, match="only local packs can be installed"):
        local_source(source)


def test_file_url_on_another_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="absolute path on this host"):
        local_source(f"file://otherhost{tmp_path}")


def test_a_directory_without_pack_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=f"{tmp_path} has no pack.yaml"):
        local_source(f"file://{tmp_path}")


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
