"""What the transaction that ends an execution also writes.

Every finished execution stores a ``core.st2.generic.actiontrigger``, and one with ``notify``
settings or a post-run policy is marked for ``st2notifier``
(:mod:`poundcake.engine.notifier.pending`).

The instance is written in the transaction that ends the execution, so a rule on it can never
miss a result (nothing is lost between the runner and the rules engine). The rules engine picks
it up on its next poll. When no enabled rule listens to the trigger (read in the same
transaction), the instance is written ``processed`` at once, as the rules engine would leave it:
it is kept for the record (``st2 trigger-instance list``) and costs the rules engine nothing.
``[action_sensor] enable = False`` turns this off and ``emit_when``
names the statuses that emit it (the session factory carries the statuses in ``session.info``;
without it, every finished status emits). The payload is StackStorm's: ``execution_id``,
``status``, ``start_timestamp``, ``action_name``, ``action_ref``, ``runner_ref``, ``parameters``
(secrets masked) and ``result`` (cut to :data:`RESULT_LIMIT` bytes, like any large result).
A stored result longer than that is never read whole: the preview is the start of its stored
JSON text and ``original_size`` its length in bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.actions.parameters import mask_secrets, merge_schemas
from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.states import COMPLETED
from poundcake.engine.notifier.pending import mark_pending
from poundcake.engine.rules.models import RuleDB
from poundcake.engine.triggers.instances import TriggerInstanceStatus
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

ACTION_TRIGGER = "core.st2.generic.actiontrigger"
# The session.info key holding the statuses whose executions emit the action trigger.
EMIT_ACTION_TRIGGERS = "emit_action_triggers"
RESULT_LIMIT = 64 * 1024
ALL_FINISHED = frozenset(status.value for status in COMPLETED)


def _result(result: Any) -> Any:
    text = json.dumps(result, default=str)
    if len(text) <= RESULT_LIMIT:
        return result
    preview = text.encode("utf-8")[:RESULT_LIMIT].decode("utf-8", "ignore")
    return {"truncated": True, "original_size": len(text), "preview": preview}


def _stored_preview(size: int, start: str) -> dict[str, Any]:
    preview = start.encode("utf-8")[:RESULT_LIMIT].decode("utf-8", "ignore")
    return {"truncated": True, "original_size": size, "preview": preview}


def action_trigger_payload(execution: Any) -> dict[str, Any]:
    """The actiontrigger payload of a finished execution row (with ``result_preview`` and
    ``result_length`` when its result was too long to be read)."""
    preview = getattr(execution, "result_preview", None)
    if preview is not None:
        result = _stored_preview(execution.result_length, preview)
    else:
        result = _result(execution.result)
    action: dict[str, Any] = execution.action_snapshot or {}
    runner: dict[str, Any] = execution.runner or {}
    schema = merge_schemas(runner.get("runner_parameters") or {}, action.get("parameters") or {})
    return {
        "execution_id": execution.id,
        "status": execution.status,
        "start_timestamp": isoformat(execution.start_timestamp),
        "action_name": action.get("name"),
        "action_ref": execution.action,
        "runner_ref": execution.runner_type,
        "parameters": mask_secrets(execution.parameters or {}, schema),
        "result": result,
    }


def has_listener(session: Session) -> bool:
    """Tell whether an enabled rule is on the action trigger (the rules engine matches an
    instance to the rules whose trigger is the instance's)."""
    found = session.scalar(
        sa.select(RuleDB.id)
        .where(RuleDB.trigger == ACTION_TRIGGER, RuleDB.enabled.is_(True))
        .limit(1)
    )
    return found is not None


def finish_executions(session: Session, liveaction_ids: Iterable[str]) -> None:
    """Write what finishing these (just finished) live actions calls for."""
    ids = list(liveaction_ids)
    emit_action_triggers(session, ids)
    mark_pending(session, ids)


def emit_action_triggers(session: Session, liveaction_ids: Iterable[str]) -> int:
    """Store an actiontrigger instance for each (just finished) execution; return how many."""
    ids = list(liveaction_ids)
    statuses = session.info.get(EMIT_ACTION_TRIGGERS, ALL_FINISHED)
    if not ids or not statuses:
        return 0
    # A long result is not loaded (and decoded) whole for a preview of its start.
    text = sa.cast(ExecutionDB.result, sa.Text)
    length = sa.func.length(text)
    rows = session.execute(
        sa.select(
            ExecutionDB.id,
            ExecutionDB.status,
            ExecutionDB.start_timestamp,
            ExecutionDB.action,
            ExecutionDB.action_snapshot,
            ExecutionDB.runner,
            ExecutionDB.runner_type,
            ExecutionDB.parameters,
            sa.case((length <= RESULT_LIMIT, ExecutionDB.result)).label("result"),
            length.label("result_length"),
            sa.case((length > RESULT_LIMIT, sa.func.substr(text, 1, RESULT_LIMIT))).label(
                "result_preview"
            ),
        ).where(ExecutionDB.liveaction_id.in_(ids), ExecutionDB.status.in_(statuses))
    ).all()
    if not rows:
        return 0
    now = utcnow()
    status = (
        TriggerInstanceStatus.PENDING if has_listener(session) else TriggerInstanceStatus.PROCESSED
    )
    session.execute(
        sa.insert(TriggerInstanceDB),
        [
            {
                "id": new_id(),
                "trigger": ACTION_TRIGGER,
                "payload": action_trigger_payload(row),
                "occurrence_time": now,
                "status": status.value,
            }
            for row in rows
        ],
    )
    return len(rows)
