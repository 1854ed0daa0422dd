"""Build a runner's request from the recorded execution: final parameters, paths, pack config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.actions.parameters import (
    merge_schemas,
    resolve_parameters,
    secret_names,
    split_parameters,
)
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.executions.service import render_context
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.packs.schema import config_with_defaults
from poundcake.engine.runners.base import RunnerRequest
from poundcake.exceptions import ValidationError


def _timeout(runner_parameters: dict[str, Any]) -> float | None:
    value = runner_parameters.get("timeout")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


@dataclass(frozen=True)
class ClaimedWork:
    """A claimed execution with what its request needs from other tables."""

    execution: ExecutionDB
    pack_path: str | None
    config: dict[str, Any]


def load_claimed(session: Session, liveaction_ids: list[str]) -> dict[str, ClaimedWork]:
    """Load claimed executions with their pack's path and config (with its schema's
    defaults), in one query."""
    if not liveaction_ids:
        return {}
    rows = session.execute(
        sa.select(ExecutionDB, PackDB.path, ConfigDB.values, ConfigSchemaDB.attributes)
        .outerjoin(ActionDB, ActionDB.ref == ExecutionDB.action)
        .outerjoin(PackDB, PackDB.ref == ActionDB.pack)
        .outerjoin(ConfigDB, ConfigDB.pack == ActionDB.pack)
        .outerjoin(ConfigSchemaDB, ConfigSchemaDB.pack == ActionDB.pack)
        .where(ExecutionDB.liveaction_id.in_(liveaction_ids))
    ).all()
    return {
        str(execution.liveaction_id): ClaimedWork(
            execution, path, config_with_defaults(values, attributes)
        )
        for execution, path, values, attributes in rows
    }


def build_request(
    session: Session, work: ClaimedWork, cipher: DatastoreCipher | None = None
) -> RunnerRequest:
    """Resolve the execution's parameters into a request.

    The live parameters were rendered when the execution was requested and are used as stored
    (secret ones opened with ``cipher``); defaults are rendered now, as StackStorm does at run
    time.
    """
    execution = work.execution
    action: dict[str, Any] = execution.action_snapshot or {}
    runner: dict[str, Any] = execution.runner or {}
    runner_schema = runner.get("runner_parameters") or {}
    schema = merge_schemas(runner_schema, action.get("parameters") or {})
    pack = str(action.get("pack", ""))
    context = execution.context or {}
    live = open_parameters(execution.parameters or {}, secret_names(schema), cipher)
    final = resolve_parameters(
        schema,
        live,
        render_context(session, config=work.config, action_context=context, cipher=cipher),
        literal=live.keys(),
    )
    runner_parameters, action_parameters = split_parameters(runner_schema, final)
    pack_path = Path(work.pack_path) if work.pack_path else None
    entry_point = str(action.get("entry_point") or "")
    entry_point_path = None
    if entry_point:
        if pack_path is None:
            raise ValidationError(
                f'Pack "{pack}" of action "{execution.action}" is not registered.'
            )
        entry_point_path = pack_path / "actions" / entry_point
    return RunnerRequest(
        execution_id=execution.id,
        action_ref=execution.action,
        pack=pack,
        runner_type=execution.runner_type,
        entry_point=entry_point,
        entry_point_path=entry_point_path,
        pack_path=pack_path,
        runner_parameters=runner_parameters,
        action_parameters=action_parameters,
        parameter_schema=schema,
        pack_config=work.config,
        user=str(context.get("user", "stanley")),
        context=context,
        timeout=_timeout(runner_parameters),
        result=execution.result,
        notify=dict((execution.liveaction or {}).get("notify") or {}),
    )
