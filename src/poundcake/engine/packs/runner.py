"""The ``pack-management`` runner of the bundled ``packs.install`` and ``packs.uninstall``.

In StackStorm these actions are orquesta workflows, and ``st2 pack install`` and
``st2 pack remove`` read the workflow output from the finished execution
(``result.output.packs_list`` and ``result.output.warning_list``). Here the action is a Python
action run exactly as ``python-script`` runs one, in its own process; this runner only reports
what ``run()`` returned as that output, with ``errors`` when it failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poundcake.engine.runners.base import RunnerOutcome
from poundcake.engine.runners.python.runner import PythonRunner


def workflow_result(python_result: Mapping[str, Any]) -> dict[str, Any]:
    """Reshape a ``python-script`` result into ``{"output": ..., "errors": [...], ...}``."""
    document = dict(python_result)
    returned = document.pop("result", None)
    output = dict(returned) if isinstance(returned, Mapping) else {}
    messages = []
    if output.get("error"):
        messages.append(str(output.pop("error")))
    if document.get("error"):
        messages.append(str(document["error"]))
    if not messages and document.get("exit_code") not in (0, None):
        lines = [line for line in str(document.get("stderr") or "").splitlines() if line.strip()]
        messages.append(lines[-1] if lines else f"exited with code {document['exit_code']}")
    shaped: dict[str, Any] = {"output": output}
    if messages:
        shaped["errors"] = [{"type": "error", "message": message} for message in messages]
    shaped.update(document)
    return shaped


class PackManagementRunner(PythonRunner):
    """Runs a Python action and reports its return value as a workflow's output."""

    runner_type = "pack-management"

    def run(self) -> RunnerOutcome:
        outcome = super().run()
        if not isinstance(outcome.result, Mapping):
            return outcome
        return RunnerOutcome(outcome.status, workflow_result(outcome.result))
