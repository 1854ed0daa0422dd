"""The rules engine's work on a batch of pending trigger instances, in one transaction.

The oldest pending instances are claimed (``FOR UPDATE SKIP LOCKED`` on MariaDB, so several
rules engines share the work; a compare-and-set on the status guards SQLite). For each one the
enabled rules on its trigger are evaluated; every rule that matches leaves a rule enforcement
with the execution it requested or the reason it could not (an action that does not exist, a
parameter that does not render or validate). The instance ends ``processed``, or
``processing_failed`` when evaluating it raised unexpectedly. Executions, enforcements and
statuses commit together, so a crash repeats the whole batch and nothing is enforced twice
(``rule_enforcement_db`` is unique per instance and rule).

A payload's ``__context`` mapping (a sender's ``request_id``, say) is added to the context of the
executions it starts. Rule action parameters are rendered once, here, against ``trigger`` (the
payload) and ``st2kv``; the execution takes them as text. Expressions in the command of a
shell-command runner are shell-quoted, so a payload value cannot add commands.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.base import table_of
from poundcake.db.types import utcnow
from poundcake.engine.actions.models import ActionDB
from poundcake.engine.executions.service import (
    LoadedAction,
    PreparedExecution,
    RequestedExecution,
    insert_executions,
    load_action,
    prepare_execution,
    scheduled_at_once,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.lookup import datastore_context
from poundcake.engine.rendering import render_shell_command, render_string, render_value
from poundcake.engine.rules.documents import rule_document
from poundcake.engine.rules.matching import CriteriaCache, matching_rules
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.scheduler.service import unrestricted
from poundcake.engine.triggers.documents import (
    trigger_document,
    trigger_instance_document,
    trigger_type_document,
)
from poundcake.engine.triggers.instances import TriggerInstanceStatus
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB, TriggerTypeDB
from poundcake.exceptions import ValidationError
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

# Runners whose ``cmd`` parameter is a shell command line.
SHELL_COMMAND_RUNNERS = frozenset({"local-shell-cmd", "remote-shell-cmd"})
SHELL_COMMAND_PARAMETER = "cmd"


class EnforcementStatus:
    """StackStorm's rule enforcement statuses."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class BatchOutcome:
    """What a batch did; ``requested`` are handed over after commit: to the runners those
    written ``scheduled``, the others to the scheduler."""

    instances: int = 0
    enforcements: int = 0
    failed_instances: int = 0
    requested: list[RequestedExecution] = field(default_factory=list)


def claim_pending(session: Session, limit: int) -> list[TriggerInstanceDB]:
    """Lock and return up to ``limit`` of the oldest pending instances nobody else holds."""
    pending = TriggerInstanceStatus.PENDING.value
    query = (
        sa.select(TriggerInstanceDB)
        .where(TriggerInstanceDB.status == pending)
        .order_by(TriggerInstanceDB.occurrence_time, TriggerInstanceDB.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        # The row locks are the claim: other engines skip these rows until the batch commits
        # with their final status, so no intermediate ``processing`` write is needed.
        return list(session.scalars(query.with_for_update(skip_locked=True)))
    found = list(session.scalars(query))
    if not found:
        return []
    ids = [instance.id for instance in found]
    session.execute(
        sa.update(TriggerInstanceDB)
        .where(TriggerInstanceDB.id.in_(ids), TriggerInstanceDB.status == pending)
        .values(status=TriggerInstanceStatus.PROCESSING.value)
        .execution_options(synchronize_session=False)
    )
    # Writers are serialised: rows another engine finished first are no longer ours.
    ours = set(
        session.scalars(
            sa.select(TriggerInstanceDB.id).where(
                TriggerInstanceDB.id.in_(ids),
                TriggerInstanceDB.status == TriggerInstanceStatus.PROCESSING.value,
            )
        )
    )
    found = [instance for instance in found if instance.id in ours]
    return found


class Enforcer:
    """Evaluates and enforces rules for batches of trigger instances."""

    def __init__(self, *, system_user: str, cipher: DatastoreCipher | None = None) -> None:
        self.system_user = system_user
        self.cipher = cipher
        self.criteria = CriteriaCache()

    def process_batch(self, session: Session, *, limit: int) -> BatchOutcome:
        """Claim, evaluate and enforce up to ``limit`` pending instances; flushes, never commits."""
        outcome = BatchOutcome()
        instances = claim_pending(session, limit)
        if not instances:
            return outcome
        refs = {instance.trigger for instance in instances}
        rules = session.scalars(
            sa.select(RuleDB)
            .where(RuleDB.enabled.is_(True), RuleDB.trigger.in_(refs))
            .order_by(RuleDB.ref)
        ).all()
        candidates = defaultdict(list)
        for rule in rules:
            candidates[rule.trigger].append(self.criteria.candidate(rule))
        context = datastore_context(session, user=self.system_user, cipher=self.cipher)

        def render(template: str) -> Any:
            return render_string(template, context)

        snapshots = _Snapshots(session)
        writes = _Writes()
        statuses: dict[str, list[str]] = defaultdict(list)
        for instance in instances:
            outcome.instances += 1
            status = TriggerInstanceStatus.PROCESSED.value
            try:
                on_trigger = candidates.get(instance.trigger, [])
                for rule in matching_rules(on_trigger, instance.payload, render):
                    requested = self._enforce(session, instance, rule, context, snapshots, writes)
                    outcome.enforcements += 1
                    if requested is not None:
                        outcome.requested.append(requested)
            except sa.exc.SQLAlchemyError:
                raise
            except Exception:
                logger.exception("Processing trigger instance %s failed", instance.id)
                status = TriggerInstanceStatus.PROCESSING_FAILED.value
                outcome.failed_instances += 1
            statuses[status].append(instance.id)
        writes.schedule_unrestricted(session)
        outcome.requested = [prepared.requested for prepared in writes.executions]
        writes.flush(session)
        _log_matches(writes)
        for status, ids in statuses.items():
            session.execute(
                sa.update(TriggerInstanceDB)
                .where(TriggerInstanceDB.id.in_(ids))
                .values(status=status)
                .execution_options(synchronize_session=False)
            )
        return outcome

    def _enforce(
        self,
        session: Session,
        instance: TriggerInstanceDB,
        rule: RuleDB,
        context: Mapping[str, Any],
        snapshots: _Snapshots,
        writes: _Writes,
    ) -> RequestedExecution | None:
        """Request the rule's action for ``instance`` and record the enforcement (both written
        with the rest of the batch's)."""
        requested: RequestedExecution | None = None
        failure: str | None = None
        action = rule.action or {}
        action_ref = str(action.get("ref") or rule.action_ref)
        try:
            parameters = render_rule_parameters(
                action.get("parameters") or {},
                {**context, "trigger": instance.payload or {}},
                shell_command=snapshots.runner_type(action_ref) in SHELL_COMMAND_RUNNERS,
            )
            # prepare_execution validates everything and writes nothing, so a refusal leaves
            # nothing behind in this transaction.
            prepared = prepare_execution(
                session,
                action_ref=action_ref,
                parameters=parameters,
                user=self.system_user,
                context={
                    **_payload_context(instance.payload),
                    "trigger_instance": {"id": instance.id, "name": None},
                    "rule": {"id": rule.id, "name": rule.name, "ref": rule.ref},
                },
                extra={
                    "rule": rule_document(rule, snapshots.trigger(rule.trigger)),
                    "trigger": snapshots.trigger_document(instance.trigger),
                    "trigger_type": snapshots.trigger_type_document(instance.trigger),
                    "trigger_instance": trigger_instance_document(instance),
                },
                cipher=self.cipher,
                rendered=True,
                loaded=snapshots.action(action_ref),
            )
            writes.executions.append(prepared)
            requested = prepared.requested
        except ValidationError as error:
            failure = f'Failed to request action "{action_ref}" for rule "{rule.ref}": {error}'
            logger.warning("%s (trigger instance %s)", failure, instance.id)
        writes.enforcements.append(
            {
                "id": new_id(),
                "trigger_instance_id": instance.id,
                "execution_id": requested.execution_id if requested else None,
                "rule": {"ref": rule.ref, "id": rule.id, "uid": rule.uid},
                "rule_ref": rule.ref,
                "enforced_at": utcnow(),
                "status": EnforcementStatus.FAILED if failure else EnforcementStatus.SUCCEEDED,
                "failure_reason": failure,
            }
        )
        if requested is not None:
            # One line per execution at debug level; a batch's summary is logged at info.
            logger.debug(
                "Rule %s matched trigger instance %s: execution %s of %s",
                rule.ref,
                instance.id,
                requested.execution_id,
                action_ref,
            )
        return requested


def _log_matches(writes: _Writes) -> None:
    """One line per rule that requested executions in the batch, with how many."""
    requested = Counter(
        enforcement["rule_ref"]
        for enforcement in writes.enforcements
        if enforcement["execution_id"] is not None
    )
    for rule_ref, count in sorted(requested.items()):
        logger.info("Rule %s matched: %d executions requested", rule_ref, count)


# Keys of an execution's context the engine owns; a payload's ``__context`` cannot set them.
_OWNED_CONTEXT = frozenset({"user", "pack", "rule", "trigger_instance", "parent", "chain"})


def _payload_context(payload: Any) -> dict[str, Any]:
    """What the payload's ``__context`` adds to the execution's context (``request_id`` ...)."""
    extra = payload.get("__context") if isinstance(payload, dict) else None
    if not isinstance(extra, dict):
        return {}
    return {key: value for key, value in extra.items() if key not in _OWNED_CONTEXT}


def render_rule_parameters(
    parameters: Mapping[str, Any], context: Mapping[str, Any], *, shell_command: bool
) -> dict[str, Any]:
    """Render a rule's action parameters once; a shell command's expressions are quoted."""
    rendered: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            if shell_command and name == SHELL_COMMAND_PARAMETER and isinstance(value, str):
                rendered[name] = render_shell_command(value, context)
            else:
                rendered[name] = render_value(value, context)
        except ValidationError as error:
            raise ValidationError(f'Failed to render parameter "{name}": {error}') from None
    return rendered


@dataclass
class _Writes:
    """What a batch writes, in one multi-row insert per table at its end."""

    executions: list[PreparedExecution] = field(default_factory=list)
    enforcements: list[dict[str, Any]] = field(default_factory=list)

    def schedule_unrestricted(self, session: Session) -> None:
        """Write ``scheduled`` the executions no concurrency policy holds back: they go
        straight to the runners after commit, the others to the scheduler."""
        free = unrestricted(session, {item.requested.action_ref for item in self.executions})
        self.executions = [
            scheduled_at_once(item) if item.requested.action_ref in free else item
            for item in self.executions
        ]

    def flush(self, session: Session) -> None:
        insert_executions(session, self.executions)
        if self.enforcements:
            session.execute(sa.insert(table_of(RuleEnforcementDB)), self.enforcements)


class _Snapshots:
    """Documents the executions of one batch record, and the actions they run, each read
    once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._triggers: dict[str, TriggerDB | None] = {}
        self._types: dict[str, TriggerTypeDB | None] = {}
        self._runners: dict[str, str | None] = {}
        self._actions: dict[str, LoadedAction] = {}

    def action(self, action_ref: str) -> LoadedAction:
        """The action, its runner and its pack config (ValidationError as load_action)."""
        if action_ref not in self._actions:
            self._actions[action_ref] = load_action(self.session, action_ref)
        return self._actions[action_ref]

    def trigger(self, ref: str) -> TriggerDB | None:
        if ref not in self._triggers:
            self._triggers[ref] = self.session.scalars(
                sa.select(TriggerDB).where(TriggerDB.ref == ref)
            ).first()
        return self._triggers[ref]

    def trigger_document(self, ref: str) -> dict[str, Any]:
        trigger = self.trigger(ref)
        return trigger_document(trigger) if trigger is not None else {"ref": ref}

    def trigger_type_document(self, trigger_ref: str) -> dict[str, Any]:
        trigger = self.trigger(trigger_ref)
        if trigger is None:
            return {}
        if trigger.type not in self._types:
            self._types[trigger.type] = self.session.scalars(
                sa.select(TriggerTypeDB).where(TriggerTypeDB.ref == trigger.type)
            ).first()
        found = self._types[trigger.type]
        return trigger_type_document(found) if found is not None else {"ref": trigger.type}

    def runner_type(self, action_ref: str) -> str | None:
        if action_ref not in self._runners:
            self._runners[action_ref] = self.session.scalar(
                sa.select(ActionDB.runner_type).where(ActionDB.ref == action_ref)
            )
        return self._runners[action_ref]
