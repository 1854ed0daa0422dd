"""Re-running an execution: the same action again, its old parameters updated by new ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from poundcake.engine.actions.parameters import merge_schemas, secret_names
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.executions.service import (
    RequestedExecution,
    get_execution,
    request_execution,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.exceptions import ValidationError

TASK_RERUN_RUNNERS = frozenset({"orquesta"})


def rerun_context(
    execution_id: str, tasks: Sequence[str] = (), reset: Sequence[str] = ()
) -> dict[str, Any]:
    """The context StackStorm gives a re-run: ``{"re-run": {"ref": <old id>, ...}}``."""
    rerun: dict[str, Any] = {"ref": execution_id}
    if tasks:
        rerun["tasks"] = list(tasks)
    if reset:
        rerun["reset"] = list(reset)
    return {"re-run": rerun}


def check_rerun_request(
    parameters: Mapping[str, Any], tasks: Sequence[str], reset: Sequence[str]
) -> None:
    """Refuse what StackStorm refuses before looking at the old execution."""
    if (tasks or reset) and parameters:
        raise ValidationError(
            "Parameters override is not supported when re-running task(s) for a workflow."
        )
    if set(reset) - set(tasks):
        raise ValidationError("List of tasks to reset does not match the tasks to rerun.")


def rerun_execution(
    session: Session,
    *,
    execution_id: str,
    user: str,
    parameters: Mapping[str, Any] | None = None,
    tasks: Sequence[str] = (),
    reset: Sequence[str] = (),
    delay: int | None = None,
    merge: bool = True,
    cipher: DatastoreCipher | None = None,
) -> RequestedExecution:
    """Request a new execution of ``execution_id``'s action with its parameters updated by
    ``parameters`` (only ``parameters`` when ``merge`` is false). The old execution's secret
    parameters are opened with ``cipher`` and sealed again for the new one."""
    parameters = dict(parameters or {})
    check_rerun_request(parameters, tasks, reset)
    existing = get_execution(session, execution_id)
    if tasks and existing.runner_type not in TASK_RERUN_RUNNERS:
        raise ValidationError("Task option is only supported for Orquesta workflows.")
    if merge:
        action: dict[str, Any] = existing.action_snapshot or {}
        runner: dict[str, Any] = existing.runner or {}
        schema = merge_schemas(
            runner.get("runner_parameters") or {}, action.get("parameters") or {}
        )
        old = open_parameters(existing.parameters or {}, secret_names(schema), cipher)
        # The old values were stored as rendered: taken as text, so a value that holds a
        # template's braces (an alert's label, say) is never rendered on a re-run.
        kept = frozenset(old) - frozenset(parameters)
        parameters = {**old, **parameters}
    else:
        kept = frozenset()
    return request_execution(
        session,
        action_ref=existing.action,
        parameters=parameters,
        user=user,
        context=rerun_context(existing.id, tasks, reset),
        delay=delay,
        cipher=cipher,
        rendered=kept,
    )
