"""StackStorm's schema dialect, the checks of action parameters and rule criteria, pack paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poundcake.config import load_st2_config
from poundcake.engine.actions.service import check_runner_overrides
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR, content_locations
from poundcake.engine.packs.schema import (
    apply_defaults,
    check_parameters,
    check_schema,
    object_schema,
    to_draft4,
    validate,
)
from poundcake.engine.rules.service import check_criteria
from tests.paths import REPOSITORY

RUNNER = {
    "cmd": {"type": "string", "description": "command"},
    "sudo": {"type": "boolean", "default": False},
    "kwarg_op": {"type": "string", "default": "--"},
    "sudo_password": {"type": "string", "default": None, "secret": True},
    "timeout": {"type": "integer", "default": 60},
    "locked": {"type": "string", "default": "x", "immutable": True},
}


def field_of(call: Any, *args: Any) -> str:
    with pytest.raises(FieldError) as caught:
        call(*args)
    return caught.value.field


def test_boolean_required_becomes_a_draft4_list_at_every_level() -> None:
    schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "integer", "required": True},
            "c": {"type": "string", "required": False},
            "required": {
                "type": "object",
                "properties": {"d": {"required": True}},
            },
            "e": {"type": "array", "items": {"properties": {"f": {"required": True}}}},
            "g": {"type": "string", "default": None},
        },
    }
    converted = to_draft4(schema)
    assert converted["required"] == ["a", "b"]
    assert "required" not in converted["properties"]["b"]
    assert "required" not in converted["properties"]["c"]
    assert converted["properties"]["required"]["required"] == ["d"]
    assert converted["properties"]["e"]["items"]["required"] == ["f"]
    assert converted["properties"]["g"]["type"] == ["string", "null"]
    assert schema["properties"]["b"]["required"] is True


def test_validate_names_the_failing_path_and_lets_templates_through() -> None:
    schema = object_schema(
        {
            "port": {"type": "integer", "required": True},
            "nested": {"type": "object", "properties": {"level": {"type": "integer"}}},
        }
    )
    validate({"port": 1, "nested": {"level": 2}}, schema, "config")
    with pytest.raises(FieldError) as caught:
        validate({"port": 1, "nested": {"level": "high"}}, schema, "config")
    assert caught.value.field == "config.nested.level"
    assert field_of(validate, {}, schema, "config") == "config"
    validate({"port": "{{ st2kv.system.port }}"}, schema, "config", allow_templates=True)
    with pytest.raises(FieldError):
        validate({"port": "{{ st2kv.system.port }}"}, schema, "config")


def test_defaults_fill_missing_and_null_values_recursively() -> None:
    schema = object_schema(
        {
            "a": {"default": 1},
            "b": {"default": 2},
            "obj": {"type": "object", "default": {}, "properties": {"x": {"default": "x"}}},
            "absent": {"type": "object", "properties": {"y": {"default": "y"}}},
            "rows": {"type": "array", "items": {"properties": {"z": {"default": 0}}}},
        }
    )
    given = {"b": None, "rows": [{}, {"z": 5}]}
    assert apply_defaults(given, schema) == {
        "a": 1,
        "b": 2,
        "obj": {"x": "x"},
        "rows": [{"z": 0}, {"z": 5}],
    }
    assert given == {"b": None, "rows": [{}, {"z": 5}]}


def test_check_schema_refuses_malformed_schemas() -> None:
    check_schema({"type": "object", "properties": {"a": {"required": True}}}, "s")
    assert field_of(check_schema, {"type": "objekt"}, "s") == "s.type"
    assert field_of(check_schema, ["not", "a", "schema"], "s") == "s"


def test_action_may_override_only_some_runner_attributes() -> None:
    check_runner_overrides(
        {
            "cmd": {"type": "string", "required": True, "default": "ls", "immutable": True},
            "sudo": {"immutable": True},
            "timeout": {"default": 5, "description": "shorter"},
            "sudo_password": {"immutable": True},
        },
        RUNNER,
    )
    assert field_of(check_runner_overrides, {"cmd": {"type": "integer"}}, RUNNER) == (
        "parameters.cmd.type"
    )
    assert field_of(check_runner_overrides, {"locked": {"immutable": True}}, RUNNER) == (
        "parameters.locked"
    )
    assert field_of(check_runner_overrides, {"cmd": {"immutable": True}}, RUNNER) == (
        "parameters.cmd"
    )
    assert field_of(check_runner_overrides, {"mine": {"immutable": True}}, RUNNER) == (
        "parameters.mine"
    )


@pytest.mark.parametrize(
    ("positions", "message"),
    [
        ([0, 1, 2], None),
        ([1, 0], None),
        ([1, 2], None),
        ([1], None),
        ([3, 5, 4], None),
        ([0, 2], "Positions supplied [0, 2] for parameters are not contiguous."),
        ([1, 3], "Positions supplied [1, 3] for parameters are not contiguous."),
    ],
)
def test_positions_follow_each_other_from_any_start(
    positions: list[int], message: str | None
) -> None:
    """StackStorm's rule: positions without holes; the first need not be 0."""
    parameters = {f"p{index}": {"position": position} for index, position in enumerate(positions)}
    if message is None:
        check_runner_overrides(parameters, {})
        return
    with pytest.raises(FieldError) as refused:
        check_runner_overrides(parameters, {})
    assert (refused.value.field, refused.value.problem) == ("parameters", message)


def test_positions_are_unique() -> None:
    parameters = {"a": {"position": 0}, "b": {"position": 0}}
    with pytest.raises(FieldError) as refused:
        check_runner_overrides(parameters, {})
    assert refused.value.field == "parameters.b.position"
    assert refused.value.problem == (
        "Parameters b and a have same position 0. Position values have to be unique."
    )


@pytest.mark.parametrize(("position", "accepted"), [(1.0, True), (1.5, False), (-1, False)])
def test_a_position_is_a_whole_number(position: float, accepted: bool) -> None:
    parameters = {"count": {"type": "integer", "position": position}}
    if accepted:
        check_parameters(parameters, "parameters")
    else:
        assert field_of(check_parameters, parameters, "parameters") == ("parameters.count.position")


def test_criteria_need_a_known_operator_and_a_pattern() -> None:
    check_criteria(
        {
            "trigger.a": {"type": "equals", "pattern": "x"},
            "trigger.b": {"type": "exists"},
            "trigger.c": {"type": "nin", "pattern": [1, 2]},
            "trigger.d": {"type": "search", "condition": "any", "pattern": {}},
        }
    )
    like = {"trigger.k": {"type": "like", "pattern": "x"}}
    assert field_of(check_criteria, like) == "criteria.trigger.k.type"
    assert field_of(check_criteria, {"trigger.k": {"pattern": "x"}}) == "criteria.trigger.k.type"
    no_pattern = {"trigger.k": {"type": "regex"}}
    assert field_of(check_criteria, no_pattern) == "criteria.trigger.k.pattern"
    bad_regex = {"trigger.k": {"type": "regex", "pattern": "(unclosed"}}
    assert field_of(check_criteria, bad_regex) == "criteria.trigger.k.pattern"


def test_content_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POUNDCAKE_DATA_DIR", str(tmp_path / "data"))
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[content]\npacks_base_paths = {tmp_path}/a:{tmp_path}/b\n")
    locations = content_locations(load_st2_config(conf))
    assert REPOSITORY / "packs" == BUNDLED_PACKS_DIR
    assert locations.search_paths == (BUNDLED_PACKS_DIR, tmp_path / "a", tmp_path / "b")
    assert locations.configs_dir == tmp_path / "data" / "configs"
    conf.write_text(
        f"[content]\nsystem_packs_base_path = {tmp_path}/sys\npacks_base_paths = {tmp_path}/sys\n"
        f"[system]\nbase_path = {tmp_path}/st2\n"
    )
    locations = content_locations(load_st2_config(conf))
    assert locations.search_paths == (tmp_path / "sys",)
    assert locations.configs_dir == tmp_path / "st2" / "configs"
