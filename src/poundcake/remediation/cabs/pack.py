"""A CAB in the engine: the files of the ``poundcake_cabs`` pack that make it a rule and a workflow.

Each CAB ``x`` becomes three files in the pack directory:

* ``actions/x.yaml``: the action ``poundcake_cabs.x`` on the ``steps`` runner, with parameters
  ``alert`` (the ``poundcake.alert`` payload) and ``request_id``;
* ``actions/workflows/x.yaml``: its steps, in order, with their templates and expected results;
* ``rules/x.yaml``: the rule ``poundcake_cabs.x`` on ``poundcake.alert`` whose criteria are the
  CAB's match (firing, ``alertname`` by the pattern, severity in the filter) plus its admission
  (``x`` among the payload's ``admitted_cabs``, which the guard step fills) and whose action is
  the workflow, given the whole alert.

The engine registers the pack like any other (``st2ctl reload`` or ``POST /v1/packs/register``),
so ``st2 rule list`` and ``st2 action list`` show every CAB.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from poundcake.remediation.alerts.trigger import ALERT_TRIGGER
from poundcake.remediation.cabs.definition import Cab

PACK = "poundcake_cabs"
# The criterion that makes a CAB's rule run only when the guard step admitted it.
ADMISSION_KEY = "trigger.admitted_cabs"
STEPS_RUNNER = "steps"
PACK_METADATA: dict[str, Any] = {
    "ref": PACK,
    "name": PACK,
    "description": "PoundCake's CABs (Custom Action Buckets), written by `poundcake cabs apply`. "
    "Edit the CAB files, not these.",
    "version": "1.0.0",
    "author": "PoundCake",
    "python_versions": ["3"],
}


def rule_ref(cab_name: str) -> str:
    """The engine ref of a CAB's rule and of its workflow action."""
    return f"{PACK}.{cab_name}"


def action_document(cab: Cab) -> dict[str, Any]:
    """The workflow action's metadata."""
    return {
        "name": cab.name,
        "pack": PACK,
        "description": cab.description or f"CAB {cab.name}: {len(cab.steps)} step(s)",
        "runner_type": STEPS_RUNNER,
        "entry_point": f"workflows/{cab.name}.yaml",
        "enabled": True,
        "parameters": {
            "alert": {
                "type": "object",
                "required": True,
                "description": "The poundcake.alert payload",
            },
            "request_id": {"type": "string", "description": "The request that delivered it"},
        },
    }


def workflow_document(cab: Cab) -> dict[str, Any]:
    """The steps runner's definition of the CAB."""
    steps: list[dict[str, Any]] = []
    for step in cab.steps:
        entry: dict[str, Any] = {"name": step.name, "ref": step.action}
        if step.parameters:
            entry["parameters"] = step.parameters
        if step.expected_result is not None:
            entry["expected_result"] = step.expected_result
        if step.timeout_seconds is not None:
            entry["timeout_seconds"] = step.timeout_seconds
        steps.append(entry)
    return {"stop_on_first_failure": cab.stop_on_first_failure, "steps": steps}


def rule_criteria(cab: Cab) -> dict[str, Any]:
    """The rule's criteria: a firing alert whose name and severity the CAB takes."""
    criteria: dict[str, Any] = {
        "trigger.status": {"type": "equals", "pattern": "firing"},
        "trigger.alertname": {"type": "regex", "pattern": cab.alert_name_pattern},
    }
    if cab.severity_filter:
        criteria["trigger.severity"] = {"type": "inside", "pattern": list(cab.severity_filter)}
    # The guard step (remediation/guards) names the CABs it admitted for this alert.
    criteria[ADMISSION_KEY] = {"type": "contains", "pattern": cab.name}
    return criteria


def without_admission(criteria: dict[str, Any] | None) -> dict[str, Any]:
    """A CAB rule's criteria less its admission: would the rule take the alert, if admitted."""
    return {key: spec for key, spec in (criteria or {}).items() if key != ADMISSION_KEY}


def rule_document(cab: Cab) -> dict[str, Any]:
    """The CAB's rule."""
    return {
        "name": cab.name,
        "pack": PACK,
        "description": cab.description or f"CAB {cab.name}",
        "enabled": cab.enabled,
        "trigger": {"type": ALERT_TRIGGER},
        "criteria": rule_criteria(cab),
        "action": {
            "ref": rule_ref(cab.name),
            "parameters": {"alert": "{{ trigger }}", "request_id": "{{ trigger.request_id }}"},
        },
    }


def _write(path: Path, document: dict[str, Any]) -> bool:
    """Write ``document`` as YAML atomically; return whether the file changed."""
    text = "---\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    Path(temporary).replace(path)
    return True


def write_pack(directory: Path, cabs: list[Cab]) -> tuple[list[str], list[str]]:
    """Make ``directory`` hold exactly ``cabs``; return (changed CAB names, removed CAB names)."""
    _write(directory / "pack.yaml", PACK_METADATA)
    changed: list[str] = []
    wanted = {cab.name for cab in cabs}
    for cab in cabs:
        actions = directory / "actions"
        touched = [
            _write(actions / f"{cab.name}.yaml", action_document(cab)),
            _write(actions / "workflows" / f"{cab.name}.yaml", workflow_document(cab)),
            _write(directory / "rules" / f"{cab.name}.yaml", rule_document(cab)),
        ]
        if any(touched):
            changed.append(cab.name)
    removed: list[str] = []
    rules_dir = directory / "rules"
    existing = {path.stem for path in rules_dir.glob("*.yaml")} if rules_dir.is_dir() else set()
    for name in sorted(existing - wanted):
        for path in (
            directory / "rules" / f"{name}.yaml",
            directory / "actions" / f"{name}.yaml",
            directory / "actions" / "workflows" / f"{name}.yaml",
        ):
            path.unlink(missing_ok=True)
        removed.append(name)
    return changed, removed
