"""Stream event bodies besides executions: the LiveAction API document and output chunks.

Executions use the Execution API document of ``GET /v1/executions/{id}``
(:mod:`poundcake.engine.executions.documents`), so both read the same. Secret parameters are
masked (``[api] mask_secrets``), as StackStorm's stream masks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poundcake.engine.actions.parameters import mask_secrets, merge_schemas
from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionOutputDB, LiveActionDB


def parameter_schema(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The merged parameter schema of an execution's runner and action snapshots."""
    runner = (values.get("runner") or {}).get("runner_parameters") or {}
    action = (values.get("action_snapshot") or {}).get("parameters") or {}
    return merge_schemas(runner, action)


def liveaction_document(
    liveaction: LiveActionDB, schema: Mapping[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """The LiveAction API document; secret parameters masked when ``schema`` is given."""
    parameters = liveaction.parameters or {}
    document: dict[str, Any] = {
        "id": liveaction.id,
        "action": liveaction.action,
        "action_is_workflow": liveaction.action_is_workflow,
        "status": liveaction.status,
        "start_timestamp": isoformat(liveaction.start_timestamp),
        "end_timestamp": isoformat(liveaction.end_timestamp),
        "parameters": mask_secrets(parameters, dict(schema)) if schema else parameters,
        "result": liveaction.result,
        "context": liveaction.context,
        "callback": liveaction.callback,
        "runner_info": liveaction.runner_info,
        "notify": liveaction.notify,
        "delay": liveaction.delay,
        "workflow_execution": liveaction.workflow_execution,
        "task_execution": liveaction.task_execution,
    }
    return {key: value for key, value in document.items() if value or key == "id"}


def output_document(row: ExecutionOutputDB) -> dict[str, Any]:
    """One output chunk, as ``st2.execution.output__create`` carries it."""
    return {
        "id": row.id,
        "execution_id": row.execution_id,
        "action_ref": row.action_ref,
        "runner_ref": row.runner_ref,
        "timestamp": isoformat(row.timestamp),
        "output_type": row.output_type,
        "data": row.data,
    }
