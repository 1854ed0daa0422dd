"""Keeps ``webhook_db`` in step with the webhook triggers: one row per URL while a trigger has it.

StackStorm holds its webhooks in memory, keyed by the trigger's ``parameters.url`` with leading
and trailing ``/`` stripped. Here that index is a table, so PoundCake can attach its own data to
a webhook (``poundcake_st2_webhook_extensions`` cascades from it). Trigger bookkeeping calls
:func:`sync_webhook` whenever a webhook trigger is made or dropped; this module reads only the
models, so :mod:`poundcake.engine.triggers.service` can depend on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.triggers.models import TriggerDB
from poundcake.engine.webhooks.models import WebhookDB
from poundcake.ids import new_id

logger = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Return a webhook URL as StackStorm keys it: without leading or trailing ``/``."""
    return url.strip("/")


def trigger_url(parameters: Mapping[str, Any] | None) -> str | None:
    """Return the normalised ``url`` parameter of a webhook trigger, if it has one."""
    url = (parameters or {}).get("url")
    return normalise_url(url) if isinstance(url, str) else None


def triggers_for_url(*, session: Session, type_ref: str, url: str) -> list[TriggerDB]:
    """Return the triggers of type ``type_ref`` whose URL is ``url``, oldest first."""
    wanted = normalise_url(url)
    candidates = session.scalars(
        sa.select(TriggerDB).where(TriggerDB.type == type_ref).order_by(TriggerDB.id)
    )
    return [trigger for trigger in candidates if trigger_url(trigger.parameters) == wanted]


def get_webhook_row(*, session: Session, url: str) -> WebhookDB | None:
    """Return the ``webhook_db`` row of ``url``, if any."""
    return session.scalars(sa.select(WebhookDB).where(WebhookDB.url == normalise_url(url))).first()


def sync_webhook(*, session: Session, trigger: TriggerDB) -> WebhookDB | None:
    """Create, re-point or delete the row of ``trigger``'s URL to match the triggers left.

    Call it after the trigger was added or deleted and flushed. Returns the row, or None when
    no trigger has that URL any more.
    """
    url = trigger_url(trigger.parameters)
    if url is None:
        return None
    remaining = triggers_for_url(session=session, type_ref=trigger.type, url=url)
    row = get_webhook_row(session=session, url=url)
    if not remaining:
        if row is not None:
            session.delete(row)
            session.flush()
            logger.info("Webhook %s unregistered", url)
        return None
    if row is None:
        row = WebhookDB(id=new_id(), name=url, url=url, created_at=utcnow())
        session.add(row)
        logger.info("Webhook %s registered for trigger %s", url, remaining[0].ref)
    if row.trigger not in {candidate.ref for candidate in remaining}:
        row.trigger = remaining[0].ref
    row.type = remaining[0].type
    row.description = remaining[0].description
    session.flush()
    return row
