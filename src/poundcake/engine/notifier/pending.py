"""Marking finished executions for the notifier, in the transaction that ends them.

Only executions with something for the notifier to do are marked: those carrying ``notify``
settings and those whose action has an enabled post-run policy (``action.retry``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.executions.models import LiveActionDB
from poundcake.engine.notifier.models import NotifierPendingDB
from poundcake.engine.notifier.settings import has_notify
from poundcake.engine.policies.models import PolicyDB

# Policy types the notifier applies once an execution has finished.
POST_RUN_POLICY_TYPES = ("action.retry",)


def mark_pending(session: Session, liveaction_ids: Sequence[str]) -> int:
    """Mark the just finished live actions the notifier must process; return how many."""
    if not liveaction_ids:
        return 0
    rows = session.execute(
        sa.select(LiveActionDB.id, LiveActionDB.action, LiveActionDB.notify).where(
            LiveActionDB.id.in_(liveaction_ids)
        )
    ).all()
    with_policy = set(
        session.scalars(
            sa.select(PolicyDB.resource_ref).where(
                PolicyDB.resource_ref.in_({row.action for row in rows}),
                PolicyDB.policy_type.in_(POST_RUN_POLICY_TYPES),
                PolicyDB.enabled.is_(True),
            )
        )
    )
    marked = [row.id for row in rows if has_notify(row.notify) or row.action in with_policy]
    if marked:
        now = utcnow()
        session.execute(
            sa.insert(NotifierPendingDB),
            [{"liveaction_id": liveaction_id, "created_at": now} for liveaction_id in marked],
        )
    return len(marked)
