"""Reading and checking steps files, and the steps runner type's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.runners.registry import runner_class, runner_types
from poundcake.engine.runners.steps.definition import (
    StepsDefinitionError,
    load_steps,
    parse_steps,
)
from poundcake.engine.runners.steps.runner import StepsRunner

DISK_CLEANUP = """
stop_on_first_failure: false
steps:
  - name: free_space
    ref: core.local
    parameters:
      cmd: "df -h {{ alert.labels.mountpoint }}"
    expected_result:
      succeeded: true
      stdout_matches: "\\\\d+%"
    timeout_seconds: 60
  - name: clean-tmp
    ref: core.local
    parameters: {cmd: "echo {{ free_space.stdout }}"}
  - name: done
    ref: core.noop
"""


def test_a_steps_file_is_parsed_once_and_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "cab.yaml"
    path.write_text("steps:\n  - {name: first, ref: core.noop}\n")
    assert load_steps(path) is load_steps(path)
    # Rewritten in place with the same size: the modification time or inode tells.
    replacement = tmp_path / "cab.new"
    replacement.write_text("steps:\n  - {name: other, ref: core.noop}\n")
    replacement.replace(path)
    assert [step.name for step in load_steps(path).steps] == ["other"]


def test_a_steps_file_is_read_with_its_steps_in_order(tmp_path: Path) -> None:
    path = tmp_path / "disk_cleanup.yaml"
    path.write_text(DISK_CLEANUP)
    workflow = load_steps(path)
    assert workflow.stop_on_first_failure is False
    assert [step.name for step in workflow.steps] == ["free_space", "clean-tmp", "done"]
    first, second, third = workflow.steps
    assert first.ref == "core.local"
    assert first.parameters == {"cmd": "df -h {{ alert.labels.mountpoint }}"}
    assert first.timeout_seconds == 60
    assert first.expected_result is not None
    assert first.expected_result.succeeded is True
    assert first.expected_result.stdout_matches is not None
    assert first.expected_result.stdout_matches.pattern == r"\d+%"
    assert first.expected_result_document == {"succeeded": True, "stdout_matches": r"\d+%"}
    assert second.expected_result is None
    assert second.expected_result_document is None
    assert second.timeout_seconds is None
    assert third.parameters == {}


def test_stop_on_first_failure_defaults_to_true() -> None:
    workflow = parse_steps({"steps": [{"name": "a", "ref": "core.noop", "parameters": None}]})
    assert workflow.stop_on_first_failure is True
    assert workflow.steps[0].parameters == {}


def _document(**step_changes: Any) -> dict[str, Any]:
    """Three valid steps; the third changed (or keys removed with a None value)."""
    third: dict[str, Any] = {"name": "third", "ref": "core.noop"}
    for key, value in step_changes.items():
        if value is None:
            third.pop(key, None)
        else:
            third[key] = value
    return {
        "steps": [
            {"name": "first", "ref": "core.noop"},
            {"name": "second", "ref": "core.local", "parameters": {"cmd": "true"}},
            third,
        ]
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("just text", "the file must hold a mapping with a 'steps' list"),
        ({"steps": []}, "steps: must be a non-empty list of steps"),
        ({"steps": {"a": 1}}, "steps: must be a non-empty list of steps"),
        ({"chain": [], "steps": []}, "the definition: unknown keys chain"),
        ({"stop_on_first_failure": "yes", "steps": []}, "stop_on_first_failure: must be true"),
        ({"steps": ["core.noop"]}, "steps[0]: must be a mapping"),
        (_document(name=None), "steps[2].name: required"),
        (_document(name="has space"), "steps[2].name: required, letters, digits"),
        (_document(name="st2kv"), 'steps[2].name: "st2kv" is reserved'),
        (_document(name="first"), 'steps[2].name: "first" is already the name of steps[0]'),
        (_document(ref=None), "steps[2].ref: required"),
        (_document(ref=""), "steps[2].ref: required"),
        (_document(params={"a": 1}), "steps[2]: unknown keys params (allowed: "),
        (_document(parameters=["a"]), "steps[2].parameters: must be a mapping"),
        (_document(timeout_seconds=0), "steps[2].timeout_seconds: must be a positive integer"),
        (_document(timeout_seconds="9"), "steps[2].timeout_seconds: must be a positive integer"),
        (_document(timeout_seconds=True), "steps[2].timeout_seconds: must be a positive integer"),
        (_document(expected_result="ok"), "steps[2].expected_result: must be a mapping"),
        (
            _document(expected_result={"stdout_matches": "[a-"}),
            "steps[2].expected_result.stdout_matches: invalid regular expression",
        ),
        (
            _document(expected_result={"rc": 0}),
            "steps[2].expected_result: unknown keys rc",
        ),
        (
            _document(expected_result={"schema": {"required": "x"}}),
            "steps[2].expected_result.schema['required']: invalid JSON schema",
        ),
        (
            _document(expected_result={"status": "done"}),
            "steps[2].expected_result.status: must be one of",
        ),
    ],
)
def test_invalid_definitions_are_refused_naming_the_key(document: Any, message: str) -> None:
    with pytest.raises(StepsDefinitionError) as raised:
        parse_steps(document, source="cab.yaml")
    text = str(raised.value)
    assert text.startswith(f'Invalid steps definition "cab.yaml": {message}'), text


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StepsDefinitionError, match="Failed to read steps definition"):
        load_steps(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [unclosed")
    with pytest.raises(StepsDefinitionError, match="Failed to read steps definition"):
        load_steps(broken)


def test_the_runner_type_is_registered_from_its_metadata() -> None:
    spec = runner_types()["steps"]
    assert spec.enabled
    assert spec.runner_parameters == {}
    assert spec.output_key == "steps"
    assert spec.metadata_file == "steps/runner.yaml"
    assert runner_class("steps") is StepsRunner
