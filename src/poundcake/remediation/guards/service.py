"""The guard step: for a new alert episode, decide once per CAB whether it runs, and record why.

:func:`admit` runs inside the dispatch stage's transaction, the episode's alert row locked. For
each applied CAB, in name order, it asks the guards in a fixed order and stops at the first that
holds:

1. **match**: the CAB's rule criteria (the engine's matcher); a miss names the failed criterion;
2. **flap**: the fingerprint opened more than ``flap.max_episodes`` episodes in ``flap.window``;
3. **budget**: ``max_runs`` runs of the CAB in its group within ``budget_window`` already;
4. **cooldown**: the group's last run was admitted less than ``cooldown`` ago;
5. **breaker**: more new episodes than ``POUNDCAKE_STORM_MAX_ALERTS`` in the storm window
   (global), or more alerts matched to the CAB than ``storm.max_alerts`` in ``storm.window``;
6. **blast_radius**: one more run would touch more than ``max_share`` of the group's targets;
7. **shadow**: ``mode: shadow`` records the steps with rendered parameters and runs nothing (it
   holds no target lock, and counts against budgets as the real run would);
8. **approval**: ``approval`` asks a person once per episode (:mod:`poundcake.remediation.
   approvals`); the alert *waits*, holding nothing, until the approval is answered (then it is
   decided again: approved goes on, denied is held) or expires (held);
9. **lock**: the ``target`` is leased by another run; the alert *waits* (the dispatch stage
   tries again) up to ``target_wait``, then is held. While one CAB waits, the leases the others
   took in the same pass are given back, and only the waits are recorded.

Each CAB's decision is made under the row lock of its guard row, so counting runs and recording
the new one are one step for every worker: a budget is never overrun. Every decision is one row
of ``poundcake_decisions``; budgets, cooldowns and blast radius are counted from those rows.

A blast radius group's size is the CAB's ``blast_radius.size`` when given, else the number of
distinct targets (the rendered ``target``, else the ``instance`` label, else the fingerprint)
PoundCake has seen alerts for in that group within ``blast_radius.lookback``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.base import table_of
from poundcake.db.types import utcnow
from poundcake.engine.public import RenderError, render_value
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.approvals import service as approvals
from poundcake.remediation.cabs.guard_fields import CabGuards
from poundcake.remediation.cabs.rendering import StepActions, render_step
from poundcake.remediation.guards import breaker, counts
from poundcake.remediation.guards.catalog import GuardedCab, active_cabs
from poundcake.remediation.guards.counts import CabCounts
from poundcake.remediation.guards.locks import (
    Lease,
    claim_free,
    holder,
    release_targets,
    take_lock,
)
from poundcake.remediation.guards.models import Decision
from poundcake.remediation.guards.rows import lock_scope

RUN = "run"
SHADOW = "shadow"
HELD = "held"
WAITING = "waiting"
NOT_MATCHED = "not_matched"


@dataclass(frozen=True)
class GuardLimits:
    """The guards' settings that are not per CAB (``POUNDCAKE_STORM_*``, breaker, locks)."""

    storm_max_alerts: int = 1000
    storm_window_seconds: float = 60.0
    breaker_quiet_seconds: float = 300.0
    lock_lease_seconds: float = 120.0
    lock_retry_seconds: float = 2.0


@dataclass(frozen=True)
class CabDecision:
    """One CAB's decision for the alert, before it is stored."""

    cab_name: str
    decision: str
    reason: str
    detail: str | None = None
    group_key: str = ""
    target: str | None = None
    blast_group: str | None = None
    rendered: Any = None
    trip: tuple[str, str] | None = None
    # A wait that is recorded once only (an approval asked), and until when it may last.
    record: bool = True
    hold_until: datetime | None = None

    def text(self) -> str:
        """One line for the delivery's outcome and the episode's reason."""
        what = f"{self.cab_name}: {self.decision}"
        if self.decision != RUN:
            what += f" ({self.reason})"
        return f"{what}: {self.detail}" if self.detail else what


@dataclass(frozen=True)
class Admission:
    """The guard step's answer for one alert."""

    decisions: tuple[CabDecision, ...] = ()
    retry_after: float | None = None
    # Waiting for approvals only: the delivery waits for an answer, at most until then.
    hold_until: datetime | None = None

    @property
    def admitted(self) -> list[str]:
        """The CABs that run."""
        return [d.cab_name for d in self.decisions if d.decision == RUN]

    @property
    def matched(self) -> list[CabDecision]:
        """The decisions of the CABs whose match took the alert."""
        return [d for d in self.decisions if d.decision != NOT_MATCHED]

    def summary(self) -> str:
        """What was decided, in one line (the matched CABs only)."""
        return "; ".join(d.text() for d in self.matched) or "no CAB matched"


@dataclass
class _Pass:
    """What one call of :func:`admit` knows: the alert, its payload, the time, the limits."""

    session: Session
    alert: Alert
    payload: dict[str, Any]
    request_id: str | None
    limits: GuardLimits
    now: datetime = field(default_factory=utcnow)

    def names(self) -> dict[str, Any]:
        return {"alert": self.payload, "request_id": self.request_id}


# --- the guards, one CAB ------------------------------------------------------------------


def _render(template: str, names: dict[str, Any]) -> str:
    return str(render_value(template, names)) if template else ""


def _global_storm(step: _Pass, opened: int) -> str | None:
    """Why the global storm breaker holds this alert (None when it does not)."""
    limit = step.limits.storm_max_alerts
    if not limit or opened <= limit:
        return None
    return f"{opened} new alerts in {step.limits.storm_window_seconds:g} s (limit {limit})"


def _flap(guards: CabGuards, found: CabCounts) -> str | None:
    flap = guards.flap
    if found.episodes <= flap.max_episodes:
        return None
    return f"flapping: {found.episodes} episodes in {flap.window:g} s (limit {flap.max_episodes})"


def _budget(guards: CabGuards, found: CabCounts, group: str) -> str | None:
    runs = found.runs_in_budget
    if runs < guards.max_runs:
        return None
    window = guards.budget_window
    return f"{runs} runs in {window:g} s for group {group!r} (max_runs {guards.max_runs})"


def _cooldown(guards: CabGuards, found: CabCounts, group: str, now: datetime) -> str | None:
    last, seconds = found.last_run, guards.cooldown
    if not seconds or last is None or last <= now - timedelta(seconds=seconds):
        return None
    return f"group {group!r} ran at {last.isoformat()}; cooldown {seconds:g} s"


def _cab_storm(guards: CabGuards, found: CabCounts) -> str | None:
    storm = guards.storm
    matched = found.storm_alerts + 1
    if not storm.max_alerts or matched <= storm.max_alerts:
        return None
    return f"{matched} alerts for the CAB in {storm.window:g} s (limit {storm.max_alerts})"


def _blast_radius(guards: CabGuards, found: CabCounts, group: str | None) -> str | None:
    radius = guards.blast_radius
    if radius is None or group is None:
        return None
    allowed = math.floor(radius.max_share * found.blast_size + 1e-9)
    if found.blast_runs + 1 <= allowed:
        return None
    return (
        f"{found.blast_runs} runs in group {group!r} of {found.blast_size} targets; "
        f"max_share {radius.max_share:g} allows {allowed}"
    )


def _member(step: _Pass, target: str | None) -> str:
    labels = step.payload.get("labels") or {}
    return (target or str(labels.get("instance") or "") or step.alert.fingerprint)[:255]


@dataclass(frozen=True)
class _Rendered:
    """A matched CAB's rendered guard templates, or why they did not render."""

    cab: GuardedCab
    group: str = ""
    target: str | None = None
    blast: str | None = None
    error: str | None = None

    @property
    def scopes(self) -> list[str]:
        found = [breaker.cab_scope(self.cab.name)]
        if self.blast is not None:
            found.append(breaker.blast_scope(self.cab.name, self.blast))
        return found


def _rendered(step: _Pass, cab: GuardedCab) -> _Rendered:
    guards = cab.guards
    try:
        radius = guards.blast_radius
        return _Rendered(
            cab,
            group=_render(guards.group, step.names())[:255],
            target=_render(guards.target, step.names())[:255] or None,
            blast=_render(radius.group, step.names())[:255] if radius else None,
        )
    except RenderError as error:
        return _Rendered(cab, error=f"a guard template failed: {error}")


def _shadow(step: _Pass, cab: GuardedCab) -> list[dict[str, Any]]:
    actions = StepActions(step.session, [cab.cab])
    steps = []
    for cab_step in cab.cab.steps:
        parameters, error = render_step(cab_step, step.names(), actions)
        steps.append(
            {
                "order": cab_step.order,
                "name": cab_step.name,
                "action": cab_step.action,
                "parameters": parameters,
                "error": error,
            }
        )
    return steps


def _before_lock(
    step: _Pass, rendered: _Rendered, global_hold: str | None, resets: dict[str, datetime]
) -> CabDecision:
    """Every guard up to the target lock, for one matched CAB (its guard row is locked)."""
    cab, guards = rendered.cab, rendered.cab.guards
    if rendered.error is not None:
        return CabDecision(cab.name, HELD, "template", rendered.error)
    group, blast = rendered.group, rendered.blast
    blast_scope = breaker.blast_scope(cab.name, blast) if blast is not None else None
    if blast_scope is not None:
        counts.see_member(step.session, blast_scope, _member(step, rendered.target), step.now)
    scope = counts.Scope(cab.name, group, blast, blast_scope, breaker.cab_scope(cab.name), resets)
    found = counts.count_for_cab(
        step.session, alert=step.alert, guards=guards, scope=scope, now=step.now
    )
    checks: tuple[tuple[str, str | None, str | None], ...] = (
        ("flap", _flap(guards, found), None),
        ("budget", _budget(guards, found, group), None),
        ("cooldown", _cooldown(guards, found, group, step.now), None),
        ("breaker", global_hold, breaker.GLOBAL),
        ("breaker", _cab_storm(guards, found), breaker.cab_scope(cab.name)),
        ("blast_radius", _blast_radius(guards, found, blast), blast_scope),
    )
    decided = CabDecision(cab.name, RUN, "admitted", None, group, rendered.target, blast)
    for reason, detail, trips in checks:
        if detail is not None:
            trip = (trips, detail) if trips is not None else None
            return replace(decided, decision=HELD, reason=reason, detail=detail, trip=trip)
    if guards.mode == SHADOW:
        return replace(
            decided,
            decision=SHADOW,
            reason="shadow",
            detail="mode: shadow; nothing run",
            rendered=_shadow(step, cab),
        )
    if guards.approval.needed(step.payload):
        return _approval(step, cab, decided)
    return decided


def _approval(step: _Pass, cab: GuardedCab, decided: CabDecision) -> CabDecision:
    """Ask for (or read) the approval of a CAB that passed every guard but the lock."""
    found = approvals.gate(
        step.session,
        alert_id=step.alert.id,
        request_id=step.request_id,
        cab_name=cab.name,
        approval=cab.guards.approval,
        ttl=cab.guards.approval_ttl,
        now=step.now,
    )
    if found.decision == RUN:
        return replace(decided, detail=found.detail)
    return replace(
        decided,
        decision=found.decision,
        reason="approval",
        detail=found.detail,
        record=found.decision != WAITING or found.asked,
        hold_until=found.expires_at,
    )


# --- target locks -------------------------------------------------------------------------


def _first_wait(session: Session, alert_id: str, cab_name: str) -> datetime | None:
    return session.scalar(
        sa.select(sa.func.min(Decision.created_at)).where(
            Decision.alert_id == alert_id,
            Decision.cab_name == cab_name,
            Decision.decision == WAITING,
            Decision.reason == "lock",
        )
    )


def _lock_decision(
    step: _Pass, cab: GuardedCab, decided: CabDecision, taken: dict[str, str]
) -> CabDecision:
    """Take the target's lease for a CAB that passed every other guard, or say who holds it."""
    target = decided.target
    assert target is not None
    if target in taken:
        detail = f"target {target!r} is remediated by CAB {taken[target]} for this episode"
        return replace(decided, decision=HELD, reason="lock", detail=detail)
    lease = Lease(target, step.alert.id, cab.name, step.now, step.limits.lock_lease_seconds)
    if claim_free(step.session, lease):
        return decided
    found = holder(step.session, target)
    if found is None or (found.alert_id == step.alert.id and found.cab_name == cab.name):
        take_lock(step.session, lease)
        return decided
    detail = (
        f"target {target!r} is locked by CAB {found.cab_name} for alert {found.alert_id} "
        f"until {found.expires_at.isoformat()}"
    )
    first = _first_wait(step.session, step.alert.id, cab.name) or step.now
    waited = (step.now - first).total_seconds()
    if waited < cab.guards.target_wait:
        return replace(decided, decision=WAITING, reason="lock", detail=detail)
    detail += f"; gave up after waiting {waited:.0f} s (target_wait {cab.guards.target_wait:g} s)"
    return replace(decided, decision=HELD, reason="lock", detail=detail)


def _locks(step: _Pass, pending: list[tuple[GuardedCab, CabDecision]]) -> list[CabDecision]:
    """Take each target's lease; if any CAB has to wait, give back what this pass took."""
    taken: dict[str, str] = {}
    checked = []
    for cab, decided in pending:
        if decided.decision == RUN and decided.target:
            decided = _lock_decision(step, cab, decided, taken)
            if decided.decision == RUN:
                taken[decided.target or ""] = cab.name
        checked.append(decided)
    if taken and any(decided.decision == WAITING for decided in checked):
        release_targets(step.session, step.alert.id, list(taken))
    return checked


# --- recording ----------------------------------------------------------------------------


def _record(step: _Pass, decisions: list[CabDecision]) -> None:
    """Store the decisions (one multi-row insert) and trip the breakers that held."""
    rows = [
        {
            "alert_id": step.alert.id,
            "request_id": step.request_id,
            "cab_name": decided.cab_name,
            "decision": decided.decision,
            "reason": decided.reason,
            "detail": decided.detail,
            "group_key": decided.group_key,
            "target": decided.target,
            "blast_group": decided.blast_group,
            "rendered": decided.rendered,
            "created_at": step.now,
        }
        for decided in decisions
    ]
    if rows:
        step.session.execute(sa.insert(table_of(Decision)), rows)
    for decided in decisions:
        if decided.trip is not None:
            scope, reason = decided.trip
            breaker.trip(
                step.session, scope, reason, quiet_seconds=step.limits.breaker_quiet_seconds
            )


def admit(
    session: Session,
    alert: Alert,
    payload: dict[str, Any],
    *,
    request_id: str | None,
    limits: GuardLimits,
) -> Admission:
    """Decide every CAB for a new episode and record the decisions (see the module docstring).

    When a CAB has to wait for its target, only the waits are recorded and nothing is taken: the
    whole alert is decided again after ``retry_after`` seconds. Flushes, never commits.
    """
    step = _Pass(session, alert, payload, request_id, limits)
    unmatched: list[CabDecision] = []
    matched: list[GuardedCab] = []
    for cab in active_cabs(session):
        failure = cab.explain(payload)
        if failure is None:
            matched.append(cab)
        else:
            unmatched.append(CabDecision(cab.name, NOT_MATCHED, "match", failure))
    rendered = [_rendered(step, cab) for cab in matched]
    resets: dict[str, datetime] = {}
    global_hold = None
    if matched:
        window = limits.storm_window_seconds if limits.storm_max_alerts else None
        resets, opened = counts.breakers_and_storm(
            session,
            [scope for each in rendered for scope in each.scopes],
            alert=alert,
            storm_scope=breaker.GLOBAL,
            storm_window=window,
        )
        global_hold = _global_storm(step, opened)
    pending = []
    for each in rendered:
        lock_scope(session, breaker.cab_scope(each.cab.name))
        pending.append((each.cab, _before_lock(step, each, global_hold, resets)))
    decided = _locks(step, pending)
    waiting = [d for d in decided if d.decision == WAITING]
    if waiting:
        _record(step, [d for d in waiting if d.record])
        if any(d.hold_until is None for d in waiting):
            return Admission(tuple(waiting), retry_after=limits.lock_retry_seconds)
        until = min(d.hold_until for d in waiting if d.hold_until is not None)
        return Admission(tuple(waiting), hold_until=until)
    _record(step, [*unmatched, *decided])
    return Admission((*unmatched, *decided))


def admitted_cabs(session: Session, alert_id: str) -> list[str]:
    """The CABs the guard step admitted for an episode (for a dispatch sent again)."""
    return list(
        session.scalars(
            sa.select(Decision.cab_name)
            .where(Decision.alert_id == alert_id, Decision.decision == RUN)
            .order_by(Decision.cab_name)
        )
    )
