"""The trail of a request, and alert episodes as operators read them.

``request_trail`` answers "what ran, why, and did it work" for one ``request_id``: the API call,
each alert it delivered (and whether this delivery started the remediation or repeated a known
episode), the trigger instance the alert became, the rule enforcements, the executions (the CAB
workflow and each step, with results) and the extension rows. It reads PoundCake's and the
engine's tables in one session: they are on one server, which is what the extension tables'
foreign keys are for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import (
    ExecutionDB,
    RuleEnforcementDB,
    TriggerInstanceDB,
    isoformat,
    mask_secrets,
    merge_schemas,
)
from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.guards.decisions import decisions_of
from poundcake.remediation.intake.models import ApiCall
from poundcake.remediation.tracking.models import ExecutionExtension

MAX_PAGE = 500


def call_document(call: ApiCall) -> dict[str, Any]:
    """An API call as the trail shows it (it never held secrets)."""
    return {
        "request_id": call.request_id,
        "method": call.method,
        "path": call.path,
        "status_code": call.status_code,
        "duration_ms": call.duration_ms,
        "client_ip": call.client_ip,
        "user_agent": call.user_agent,
        "body_size": call.body_size,
        "error": call.error,
        "received_at": isoformat(call.received_at),
    }


def alert_document(alert: Alert) -> dict[str, Any]:
    """An alert episode."""
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "alert_name": alert.alert_name,
        "severity": alert.severity,
        "status": alert.alertmanager_status,
        "state": alert.state,
        "state_reason": alert.state_reason,
        "labels": alert.labels or {},
        "annotations": alert.annotations or {},
        "starts_at": isoformat(alert.starts_at),
        "ends_at": isoformat(alert.ends_at),
        "resolved_at": isoformat(alert.resolved_at),
        "generator_url": alert.generator_url,
        "request_id": alert.request_id,
        "last_request_id": alert.last_request_id,
        "delivery_count": alert.delivery_count,
        "cab_name": alert.cab_name,
        "trigger_instance_id": alert.trigger_instance_id,
        "workflow_execution_id": alert.workflow_execution_id,
        "created_at": isoformat(alert.created_at),
        "updated_at": isoformat(alert.updated_at),
        # Run safety (issue 21).
        "verification": alert.verification,
        "verify_by": isoformat(alert.verify_by),
        "verification_reason": alert.verification_reason,
        "abandoned_retries": alert.abandoned_retries or 0,
    }


def silence_document(silence: Silence | None) -> dict[str, Any] | None:
    """The Alertmanager silence that covered an episode's run, if its CAB asked for one."""
    if silence is None:
        return None
    return {
        "id": silence.id,
        "silence_id": silence.silence_id,
        "state": silence.state,
        "cab_name": silence.cab_name,
        "matchers": silence.matchers,
        "ends_at": isoformat(silence.ends_at),
        "error": silence.error,
        "created_at": isoformat(silence.created_at),
        "expired_at": isoformat(silence.expired_at),
    }


def _silences(session: Session, alert_ids: list[str]) -> dict[str, Silence]:
    rows = session.scalars(sa.select(Silence).where(Silence.alert_id.in_(alert_ids)))
    return {row.alert_id: row for row in rows}


def silence_of(session: Session, alert_id: str) -> dict[str, Any] | None:
    """The silence of one episode's run, as the trail shows it."""
    return silence_document(_silences(session, [alert_id]).get(alert_id))


def delivery_document(delivery: AlertDelivery) -> dict[str, Any]:
    """One delivery of an episode."""
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "request_id": delivery.request_id,
        "status": delivery.alertmanager_status,
        "notification_reason": delivery.notification_reason,
        "receiver": delivery.receiver,
        "received_at": isoformat(delivery.received_at),
        "processed_at": isoformat(delivery.processed_at),
        "outcome": delivery.outcome,
        "attempts": delivery.attempts,
    }


def extension_document(extension: ExecutionExtension) -> dict[str, Any]:
    """A ``poundcake_st2_execution_extensions`` row."""
    return {
        "id": extension.id,
        "st2_execution_id": extension.st2_execution_id,
        "request_id": extension.request_id,
        "alert_id": extension.alert_id,
        "cab_name": extension.cab_name,
        "step_order": extension.step_order,
        "action_ref": extension.action_ref,
        "expected_result": extension.expected_result,
        "result_matched": extension.result_matched,
        "status": extension.status,
        "created_at": isoformat(extension.created_at),
        "updated_at": isoformat(extension.updated_at),
    }


def execution_document(execution: ExecutionDB) -> dict[str, Any]:
    """An engine execution as the trail shows it: parameters with secrets masked."""
    action: dict[str, Any] = execution.action_snapshot or {}
    runner: dict[str, Any] = execution.runner or {}
    schema = merge_schemas(runner.get("runner_parameters") or {}, action.get("parameters") or {})
    context = execution.context or {}
    return {
        "id": execution.id,
        "action": execution.action,
        "runner_type": execution.runner_type,
        "status": execution.status,
        "parameters": mask_secrets(execution.parameters or {}, schema),
        "result": execution.result,
        "start_timestamp": isoformat(execution.start_timestamp),
        "end_timestamp": isoformat(execution.end_timestamp),
        "parent": execution.parent,
        "rule": execution.rule_ref,
        "request_id": context.get("request_id"),
        "step_order": context.get("step_order"),
    }


@dataclass(frozen=True)
class _EngineRecords:
    instances: dict[str, TriggerInstanceDB]
    enforcements: dict[str, list[RuleEnforcementDB]]
    executions: dict[str, ExecutionDB]
    children: dict[str, list[ExecutionDB]]


def _engine_records(session: Session, alerts: Iterable[Alert]) -> _EngineRecords:
    instance_ids = [a.trigger_instance_id for a in alerts if a.trigger_instance_id]
    instances = {
        instance.id: instance
        for instance in session.scalars(
            sa.select(TriggerInstanceDB).where(TriggerInstanceDB.id.in_(instance_ids))
        )
    }
    enforcements: dict[str, list[RuleEnforcementDB]] = {}
    for enforcement in session.scalars(
        sa.select(RuleEnforcementDB)
        .where(RuleEnforcementDB.trigger_instance_id.in_(instance_ids))
        .order_by(RuleEnforcementDB.enforced_at)
    ):
        enforcements.setdefault(enforcement.trigger_instance_id, []).append(enforcement)
    top_ids = [e.execution_id for rows in enforcements.values() for e in rows if e.execution_id]
    # A run resumed after an abandoned one is the alert's workflow, not an enforcement's.
    top_ids += [a.workflow_execution_id for a in alerts if a.workflow_execution_id]
    executions = {
        row.id: row
        for row in session.scalars(sa.select(ExecutionDB).where(ExecutionDB.id.in_(top_ids)))
    }
    children: dict[str, list[ExecutionDB]] = {}
    for row in session.scalars(
        sa.select(ExecutionDB)
        .where(ExecutionDB.parent.in_(top_ids))
        .order_by(ExecutionDB.start_timestamp, ExecutionDB.id)
    ):
        children.setdefault(str(row.parent), []).append(row)
    return _EngineRecords(instances, enforcements, executions, children)


def _remediation(
    alert: Alert, records: _EngineRecords, extensions: dict[str, ExecutionExtension]
) -> dict[str, Any]:
    instance = records.instances.get(alert.trigger_instance_id or "")
    enforcements = records.enforcements.get(alert.trigger_instance_id or "", [])
    executions = []
    shown = [enforcement.execution_id for enforcement in enforcements]
    if alert.workflow_execution_id and alert.workflow_execution_id not in shown:
        shown.append(alert.workflow_execution_id)
    for execution_id in shown:
        execution = records.executions.get(execution_id or "")
        if execution is None:
            continue
        document = execution_document(execution)
        document["extension"] = _extension(extensions, execution.id)
        document["steps"] = [
            {**execution_document(child), "extension": _extension(extensions, child.id)}
            for child in records.children.get(execution.id, [])
        ]
        executions.append(document)
    return {
        "trigger_instance": {
            "id": instance.id,
            "trigger": instance.trigger,
            "status": instance.status,
            "occurrence_time": isoformat(instance.occurrence_time),
        }
        if instance is not None
        else None,
        "rule_enforcements": [
            {
                "id": e.id,
                "rule": e.rule_ref,
                "status": e.status,
                "execution_id": e.execution_id,
                "failure_reason": e.failure_reason,
                "enforced_at": isoformat(e.enforced_at),
            }
            for e in enforcements
        ],
        "executions": executions,
    }


def _extension(extensions: dict[str, ExecutionExtension], execution_id: str) -> Any:
    found = extensions.get(execution_id)
    return extension_document(found) if found is not None else None


def request_trail(session: Session, request_id: str) -> dict[str, Any]:
    """The whole trail of one request; NotFoundError when nothing carries ``request_id``."""
    call = session.scalars(sa.select(ApiCall).where(ApiCall.request_id == request_id)).first()
    deliveries = list(
        session.scalars(
            sa.select(AlertDelivery)
            .where(AlertDelivery.request_id == request_id)
            .order_by(AlertDelivery.id)
        )
    )
    alert_ids = list(dict.fromkeys(d.alert_id for d in deliveries))
    alerts = {a.id: a for a in session.scalars(sa.select(Alert).where(Alert.id.in_(alert_ids)))}
    extension_rows = list(
        session.scalars(
            sa.select(ExecutionExtension)
            .where(
                sa.or_(
                    ExecutionExtension.request_id == request_id,
                    ExecutionExtension.alert_id.in_(alert_ids),
                )
            )
            .order_by(ExecutionExtension.step_order)
        )
    )
    if call is None and not deliveries and not extension_rows:
        raise NotFoundError(f'No request with id "{request_id}"')
    records = _engine_records(session, alerts.values())
    by_execution = {row.st2_execution_id: row for row in extension_rows if row.st2_execution_id}
    silences = _silences(session, alert_ids)
    decisions = decisions_of(session, alert_ids)
    trail_alerts = []
    for delivery in deliveries:
        alert = alerts.get(delivery.alert_id)
        if alert is None:
            continue
        trail_alerts.append(
            {
                **alert_document(alert),
                "delivery": delivery_document(delivery),
                "started_remediation": alert.request_id == request_id,
                "remediation": _remediation(alert, records, by_execution),
                "silence": silence_document(silences.get(alert.id)),
                "decisions": decisions.get(alert.id, []),
            }
        )
    return {
        "request_id": request_id,
        "call": call_document(call) if call is not None else None,
        "alerts": trail_alerts,
        "execution_extensions": [extension_document(row) for row in extension_rows],
    }


@dataclass(frozen=True)
class AlertFilters:
    """What ``GET /api/v1/alerts`` filters on (its query parameter ``status`` is
    ``alertmanager_status``)."""

    state: str | None = None
    alertmanager_status: str | None = None
    severity: str | None = None
    name: str | None = None


def list_alerts(
    session: Session, filters: AlertFilters, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[Alert]]:
    """How many episodes match and one page of them, most recently updated first."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValidationError("offset must not be negative")
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.state:
        conditions.append(Alert.state == filters.state)
    if filters.alertmanager_status:
        conditions.append(Alert.alertmanager_status == filters.alertmanager_status)
    if filters.severity:
        conditions.append(Alert.severity == filters.severity)
    if filters.name:
        conditions.append(Alert.alert_name.contains(filters.name, autoescape=True))
    total = session.scalar(sa.select(sa.func.count()).select_from(Alert).where(*conditions))
    rows = session.scalars(
        sa.select(Alert)
        .where(*conditions)
        .order_by(Alert.updated_at.desc(), Alert.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return int(total or 0), list(rows)


def alert_detail(session: Session, alert_id: str) -> dict[str, Any]:
    """One episode with its deliveries, the requests that carried it and its remediation."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f'No alert with id "{alert_id}"')
    deliveries = list(
        session.scalars(
            sa.select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert_id)
            .order_by(AlertDelivery.id)
        )
    )
    extensions = list(
        session.scalars(
            sa.select(ExecutionExtension)
            .where(ExecutionExtension.alert_id == alert_id)
            .order_by(ExecutionExtension.step_order)
        )
    )
    records = _engine_records(session, [alert])
    by_execution = {row.st2_execution_id: row for row in extensions if row.st2_execution_id}
    return {
        **alert_document(alert),
        "deliveries": [delivery_document(d) for d in deliveries],
        "requests": list(dict.fromkeys(d.request_id for d in deliveries)),
        "remediation": _remediation(alert, records, by_execution),
        "silence": silence_of(session, alert_id),
        "execution_extensions": [extension_document(row) for row in extensions],
        "decisions": decisions_of(session, [alert_id])[alert_id],
    }
