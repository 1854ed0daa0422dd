"""CAB files: validation with the field named, the engine pack they become, engine checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from poundcake.remediation.cabs.definition import CabError, load_cab_directory, parse_cab
from poundcake.remediation.cabs.pack import (
    action_document,
    rule_document,
    workflow_document,
    write_pack,
)
from poundcake.remediation.cabs.validation import validate_cab

GOOD: dict[str, Any] = {
    "name": "disk_cleanup",
    "description": "Free space",
    "alert_name_pattern": "^Disk(Full|AlmostFull)$",
    "severity_filter": ["critical", "warning"],
    "steps": [
        {
            "name": "clean",
            "action": "core.local",
            "parameters": {"cmd": "echo {{ alert.labels.instance }} {{ request_id }}"},
            "expected_result": {"succeeded": True},
            "timeout_seconds": 30,
        },
        {"action": "core.echo", "parameters": {"message": "after {{ clean.stdout }}"}},
    ],
}


def changed(**fields: Any) -> dict[str, Any]:
    return {**GOOD, **fields}


def step_changed(index: int, **fields: Any) -> dict[str, Any]:
    steps = [dict(step) for step in GOOD["steps"]]
    steps[index].update(fields)
    return changed(steps=steps)


def test_a_good_cab_parses_with_defaults() -> None:
    cab = parse_cab(GOOD)
    assert cab.name == "disk_cleanup"
    assert cab.stop_on_first_failure is True
    assert cab.enabled is True
    assert [(step.order, step.name) for step in cab.steps] == [(1, "clean"), (2, "step_2")]
    assert cab.matches("DiskFull", "critical")
    assert not cab.matches("DiskFull", "info")
    assert not cab.matches("CPUHigh", "critical")
    assert parse_cab(changed(severity_filter=[])).matches("DiskFull", None)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (changed(name="Bad Name"), "name:"),
        (changed(alert_name_pattern="(unclosed"), "alert_name_pattern: is not a valid regex"),
        (changed(alert_name_pattern=""), "alert_name_pattern: is required"),
        (changed(severity_filter=5), "severity_filter:"),
        (changed(stop_on_first_failure="yes"), "stop_on_first_failure:"),
        (changed(steps=[]), "steps: is required"),
        (changed(surprise=1), "surprise: is not a CAB field"),
        (step_changed(0, action="nodot"), "steps[0].action:"),
        (step_changed(0, bogus=1), "steps[0].bogus: is not a step field"),
        (step_changed(1, name="clean"), 'steps[1].name: "clean" is used by an earlier step'),
        (step_changed(0, timeout_seconds=0), "steps[0].timeout_seconds:"),
        (step_changed(0, parameters={"cmd": "{{ alert.labels.x "}), "steps[0].parameters.cmd"),
        (
            step_changed(0, parameters={"cmd": "{{ os.system('x') }}"}),
            "steps[0].parameters.cmd: template",
        ),
        (
            step_changed(0, parameters={"cmd": "{{ step_2.stdout }}"}),
            "uses step_2",
        ),
    ],
)
def test_problems_name_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(CabError) as raised:
        parse_cab(document, source="cabs/x.yaml")
    assert str(raised.value).startswith("cabs/x.yaml: ")
    assert field in str(raised.value)


def test_the_engine_pack_documents() -> None:
    cab = parse_cab(GOOD)
    rule = rule_document(cab)
    assert rule["pack"] == "poundcake_cabs"
    assert rule["enabled"] is True
    assert rule["trigger"] == {"type": "poundcake.alert"}
    assert rule["criteria"] == {
        "trigger.status": {"type": "equals", "pattern": "firing"},
        "trigger.alertname": {"type": "regex", "pattern": "^Disk(Full|AlmostFull)$"},
        "trigger.severity": {"type": "inside", "pattern": ["critical", "warning"]},
        "trigger.admitted_cabs": {"type": "contains", "pattern": "disk_cleanup"},
    }
    assert rule["action"] == {
        "ref": "poundcake_cabs.disk_cleanup",
        "parameters": {"alert": "{{ trigger }}", "request_id": "{{ trigger.request_id }}"},
    }
    action = action_document(cab)
    assert (action["runner_type"], action["entry_point"]) == (
        "steps",
        "workflows/disk_cleanup.yaml",
    )
    assert action["parameters"]["alert"]["required"] is True
    workflow = workflow_document(cab)
    assert workflow["stop_on_first_failure"] is True
    assert workflow["steps"][0] == {
        "name": "clean",
        "ref": "core.local",
        "parameters": {"cmd": "echo {{ alert.labels.instance }} {{ request_id }}"},
        "expected_result": {"succeeded": True},
        "timeout_seconds": 30,
    }
    no_filter = rule_document(parse_cab(changed(severity_filter=None)))
    assert "trigger.severity" not in no_filter["criteria"]


def test_write_pack_holds_exactly_the_cabs(tmp_path: Path) -> None:
    first = parse_cab(GOOD)
    second = parse_cab(changed(name="cpu_fix", alert_name_pattern="CPU"))
    assert write_pack(tmp_path, [first, second]) == (["disk_cleanup", "cpu_fix"], [])
    assert write_pack(tmp_path, [first, second]) == ([], [])
    assert yaml.safe_load((tmp_path / "pack.yaml").read_text())["ref"] == "poundcake_cabs"
    assert write_pack(tmp_path, [first]) == ([], ["cpu_fix"])
    assert not (tmp_path / "rules" / "cpu_fix.yaml").exists()
    assert not (tmp_path / "actions" / "workflows" / "cpu_fix.yaml").exists()
    assert (tmp_path / "rules" / "disk_cleanup.yaml").exists()


def test_a_directory_loads_each_file_and_reports_the_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "disk_cleanup.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(changed(name="not_the_file_name")))
    (tmp_path / "broken.yml").write_text("name: [unclosed")
    (tmp_path / "README.md").write_text("ignored")
    cabs, problems = load_cab_directory(tmp_path)
    assert [cab.name for cab in cabs] == ["disk_cleanup"]
    messages = sorted(str(problem) for problem in problems)
    assert "broken.yml: is not valid YAML" in messages[0]
    assert 'must match the file name "other"' in messages[1]


class FakeEngine:
    actions: ClassVar[dict[str, dict[str, Any]]] = {
        "core.local": {
            "id": "a1",
            "runner_type": "local-shell-cmd",
            "parameters": {"sudo": {"type": "boolean", "immutable": True, "default": False}},
        },
        "core.echo": {
            "id": "a2",
            "runner_type": "local-shell-cmd",
            "parameters": {"message": {"type": "string", "required": True}},
        },
        "tests.off": {"id": "a3", "runner_type": "noop", "parameters": {}, "enabled": False},
    }
    runners: ClassVar[dict[str, dict[str, Any]]] = {
        "local-shell-cmd": {"runner_parameters": {"cmd": {"type": "string"}, "env": {}}},
        "noop": {"runner_parameters": {}},
    }

    def get_action(self, ref: str) -> dict[str, Any] | None:
        return self.actions.get(ref)

    def get_runner_type(self, name: str) -> dict[str, Any] | None:
        return self.runners.get(name)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (step_changed(0, action="core.nope"), 'steps[0].action: action "core.nope" does not exist'),
        (step_changed(0, action="tests.off", parameters={}), "is disabled"),
        (
            step_changed(0, parameters={"command": "x"}),
            'steps[0].parameters.command: action "core.local" does not declare this parameter',
        ),
        (step_changed(0, parameters={"cmd": "x", "sudo": True}), "sudo: is immutable"),
        (step_changed(1, parameters={}), "steps[1].parameters.message: is required"),
        (
            step_changed(0, expected_result={"stdout_matches": "(unclosed"}),
            "stdout_matches",
        ),
        (step_changed(0, expected_result={"nonsense": 1}), "nonsense"),
    ],
)
def test_the_engine_refuses_what_it_could_not_run(document: dict[str, Any], message: str) -> None:
    cab = parse_cab(document, source="x.yaml")
    with pytest.raises(CabError) as raised:
        validate_cab(cab, FakeEngine())
    assert message in str(raised.value)


def test_a_good_cab_passes_the_engine_checks() -> None:
    validate_cab(parse_cab(GOOD), FakeEngine())


def test_the_file_form_reads_back_as_the_same_cab() -> None:
    cab = parse_cab(GOOD)
    again = parse_cab(cab.file_document())
    assert again.document() == cab.document()
    assert "step_order" not in cab.file_document()["steps"][0]
