"""The notifier's unit of work: claim finished executions, post their notify triggers, apply
their post-run policies, and clear the marks, all in one transaction.

Rows of ``notifier_pending_db`` are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any
number of notifiers share the work and each finished execution is processed once; a notifier
that dies before it commits leaves its rows to the next one. Notify triggers are StackStorm's
(``st2actions/notifier/notifier.py``): one ``core.st2.generic.notifytrigger`` instance per route
of each section that applies, with ``message`` and ``data`` rendered by Jinja from
``action_parameters``, ``action_context``, ``action_results`` and ``st2kv``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.service import RequestedExecution, utcnow
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.lookup import datastore_context
from poundcake.engine.notifier.models import NotifierPendingDB
from poundcake.engine.notifier.settings import NotifySection, applicable_sections
from poundcake.engine.policies.retry import apply_retry
from poundcake.engine.rendering import RenderError, render_string, render_value
from poundcake.engine.triggers.instances import create_trigger_instance
from poundcake.engine.triggers.models import TriggerInstanceDB

logger = logging.getLogger(__name__)

NOTIFY_TRIGGER = "core.st2.generic.notifytrigger"


@dataclass
class NotifierOutcome:
    """What one batch did: instances to announce and executions to hand over after commit."""

    processed: int = 0
    instances: list[TriggerInstanceDB] = field(default_factory=list)
    requested: list[RequestedExecution] = field(default_factory=list)


def process_batch(
    session: Session, *, limit: int, cipher: DatastoreCipher | None = None
) -> NotifierOutcome:
    """Claim up to ``limit`` finished executions and do what each calls for."""
    outcome = NotifierOutcome()
    ids = list(
        session.scalars(
            sa.select(NotifierPendingDB.liveaction_id)
            .order_by(NotifierPendingDB.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return outcome
    rows = session.execute(
        sa.select(LiveActionDB, ExecutionDB)
        .join(ExecutionDB, ExecutionDB.liveaction_id == LiveActionDB.id)
        .where(LiveActionDB.id.in_(ids))
        .order_by(LiveActionDB.id)
    ).all()
    for liveaction, execution in rows:
        outcome.instances.extend(post_notify_triggers(session, liveaction, execution, cipher))
        outcome.requested.extend(apply_retry(session, liveaction, execution, cipher=cipher))
    session.execute(
        sa.delete(NotifierPendingDB)
        .where(NotifierPendingDB.liveaction_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    outcome.processed = len(ids)
    return outcome


def post_notify_triggers(
    session: Session,
    liveaction: LiveActionDB,
    execution: ExecutionDB,
    cipher: DatastoreCipher | None = None,
) -> list[TriggerInstanceDB]:
    """Store the notify trigger instances of one finished execution."""
    sections = applicable_sections(
        liveaction.notify, status=liveaction.status, action_ref=liveaction.action
    )
    if not sections:
        return []
    context = _render_context(session, liveaction, execution, cipher)
    instances = []
    for section in sections:
        payload = _payload(section, liveaction, execution, context)
        for route in section.routes:
            payload = {**payload, "route": route, "channel": route}
            instances.append(
                create_trigger_instance(
                    session=session, trigger_ref=NOTIFY_TRIGGER, payload=payload
                )
            )
    logger.debug("Posted %d notify triggers for execution %s", len(instances), execution.id)
    return instances


def _render_context(
    session: Session,
    liveaction: LiveActionDB,
    execution: ExecutionDB,
    cipher: DatastoreCipher | None,
) -> dict[str, Any]:
    user = (liveaction.context or {}).get("user")
    return {
        **datastore_context(session, user=str(user) if user else None, cipher=cipher),
        "action_parameters": dict(liveaction.parameters or {}),
        "action_context": dict(liveaction.context or {}),
        "action_results": execution.result,
    }


def _payload(
    section: NotifySection,
    liveaction: LiveActionDB,
    execution: ExecutionDB,
    context: dict[str, Any],
) -> dict[str, Any]:
    message: Any = section.message
    data: Any = section.data
    try:
        message = render_string(section.message, context)
    except RenderError as error:
        logger.warning("Notify %s of execution %s: message: %s", section.name, execution.id, error)
    try:
        data = render_value(section.data, context)
    except RenderError as error:
        logger.warning("Notify %s of execution %s: data: %s", section.name, execution.id, error)
    # StackStorm sends the result as JSON text inside data.
    data = {**(data if isinstance(data, dict) else {}), "result": json.dumps(execution.result)}
    end = execution.end_timestamp or liveaction.end_timestamp or utcnow()
    return {
        "message": str(message),
        "data": data,
        "execution_id": execution.id,
        "status": liveaction.status,
        "start_timestamp": isoformat(liveaction.start_timestamp),
        "end_timestamp": isoformat(end),
        "action_ref": liveaction.action,
        "runner_ref": execution.runner_type,
    }
