"""The remediation lifecycle of an alert episode: its states and the one table of legal moves.

``received`` is where intake leaves a new episode. The engine then takes it (``matched``, a CAB or
a rule of the user's started work; ``unmatched``, nothing did), the work runs (``remediating``)
and ends (``remediated`` or ``failed``). Alertmanager's resolved notification closes the episode
from any state (``resolved``); the remediation outcome then stays in ``state_reason`` and in the
execution extension rows.

Every change goes through :func:`transition`, a compare-and-set on the current state, so two
workers that race on one alert cannot both move it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.exceptions import ValidationError
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.guards.locks import release_locks


class AlertState(StrEnum):
    """Where an alert episode is in its remediation."""

    RECEIVED = "received"
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    REMEDIATING = "remediating"
    REMEDIATED = "remediated"
    FAILED = "failed"
    RESOLVED = "resolved"
    # The guards held every CAB that matched (budget, flap, breaker, lock, ...) or ran them in
    # shadow mode: nothing was dispatched; the decision log says why.
    HELD = "held"


S = AlertState

TRANSITIONS: dict[AlertState, frozenset[AlertState]] = {
    # received -> failed: the engine refused the alert outright (it never ran anything).
    S.RECEIVED: frozenset({S.MATCHED, S.UNMATCHED, S.FAILED, S.RESOLVED, S.HELD}),
    # matched -> remediated | failed: the work ended before we saw it running.
    S.MATCHED: frozenset({S.REMEDIATING, S.REMEDIATED, S.FAILED, S.RESOLVED}),
    S.REMEDIATING: frozenset({S.REMEDIATED, S.FAILED, S.RESOLVED}),
    S.UNMATCHED: frozenset({S.RESOLVED}),
    S.REMEDIATED: frozenset({S.RESOLVED}),
    S.FAILED: frozenset({S.RESOLVED}),
    S.HELD: frozenset({S.RESOLVED}),
    S.RESOLVED: frozenset(),
}

# The engine still owes an answer for episodes in these states.
IN_PROGRESS: frozenset[AlertState] = frozenset({S.RECEIVED, S.MATCHED, S.REMEDIATING})
# Remediation is over (resolved may still be followed: see the tracking service).
REMEDIATION_OVER: frozenset[AlertState] = frozenset({S.UNMATCHED, S.REMEDIATED, S.FAILED, S.HELD})

# Reasons with a meaning of their own. An episode resolved while the engine still works on it
# keeps this reason until its remediation has been followed to the end (it marks it as followed).
RESOLVED_BEFORE_REMEDIATION = "resolved before remediation started"
RESOLVED_WHILE_REMEDIATING = "resolved while remediating; following the remediation to its end"


class IllegalTransitionError(ValidationError):
    """A state change the lifecycle does not allow."""


def sources_of(target: AlertState) -> frozenset[AlertState]:
    """Every state from which ``target`` may be reached."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


def check_transition(current: AlertState | str, new: AlertState) -> None:
    """Raise :class:`IllegalTransitionError` unless ``current -> new`` is allowed."""
    if new not in TRANSITIONS[AlertState(current)]:
        raise IllegalTransitionError(f"an alert cannot go from {current} to {new}")


def transition(
    session: Session,
    alert_id: str,
    to: AlertState,
    allowed_from: Iterable[AlertState] | None = None,
    **values: Any,
) -> bool:
    """Move the alert to ``to`` if it is in one of ``allowed_from``; tell whether it moved.

    ``allowed_from`` defaults to every state that may lead to ``to``; naming a state that may not
    raises :class:`IllegalTransitionError`. ``values`` are other columns set in the same update.
    Flushes, never commits.
    """
    sources = sources_of(to) if allowed_from is None else frozenset(allowed_from)
    for source in sources:
        check_transition(source, to)
    if not sources:
        return False
    result = session.execute(
        sa.update(Alert)
        .where(Alert.id == alert_id, Alert.state.in_([state.value for state in sources]))
        .values(state=to.value, updated_at=utcnow(), **values)
        .execution_options(synchronize_session="fetch")
    )
    moved = bool(getattr(result, "rowcount", 0) == 1)
    if moved and _run_over(to, values.get("state_reason")):
        release_locks(session, alert_id)
    return moved


def _run_over(to: AlertState, reason: Any) -> bool:
    """Whether the episode's run can no longer touch its target (its leases may go).

    An episode resolved while its workflow still runs keeps its leases (renewed while it is
    followed, else they expire): the canceled workflow may still be on its target.
    """
    if to is S.RESOLVED:
        return bool(reason != RESOLVED_WHILE_REMEDIATING)
    return to in REMEDIATION_OVER


def lock_alert(session: Session, alert_id: str) -> Alert | None:
    """Load the alert for a change, holding its row lock until the transaction ends.

    MariaDB takes ``SELECT ... FOR UPDATE``. SQLite has no row locks and its driver starts a
    transaction only at the first write, so a no-op update comes first: it takes the database's
    write lock, which serialises this transaction with every other writer. Never hold the lock
    across a call to the engine (in the embedded default the engine writes to the same file).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            sa.update(Alert)
            .where(Alert.id == alert_id)
            .values(id=Alert.id)
            .execution_options(synchronize_session=False)
        )
        return session.get(Alert, alert_id, populate_existing=True)
    return session.get(Alert, alert_id, with_for_update=True, populate_existing=True)


def live_runs() -> sa.Select[Any]:
    """The episodes whose remediation may still be running on its target (their leases live)."""
    return sa.select(Alert.id).where(
        sa.or_(
            Alert.state.in_([state.value for state in IN_PROGRESS]),
            sa.and_(
                Alert.state == S.RESOLVED.value, Alert.state_reason == RESOLVED_WHILE_REMEDIATING
            ),
        )
    )
