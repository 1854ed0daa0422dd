"""The CAB match test: which CABs an Alertmanager payload would start, and what each step would get.

Nothing is stored, dispatched or run. Each alert of the payload becomes the ``poundcake.alert``
payload intake would send (its real episode id, a placeholder request id); the engine's own
criteria matcher checks it against each CAB's rule as the engine holds it, and each step's
parameters are rendered as the ``steps`` runner renders them (shell commands quoted word by
word, so label values stay data). Secret parameters are masked; templates that need an earlier
step's result cannot be known before it runs and are reported as a step error.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import CriteriaError, RuleDB, compile_criteria
from poundcake.remediation.alerts.trigger import ALERT_TRIGGER, Delivery, alert_payload
from poundcake.remediation.cabs.definition import Cab
from poundcake.remediation.cabs.pack import PACK, without_admission
from poundcake.remediation.cabs.rendering import StepActions, render_step
from poundcake.remediation.intake.payload import (
    ParsedAlert,
    PayloadError,
    WebhookPayload,
    parse_webhook,
)

MATCH_TEST_REQUEST_ID = "match-test"
WEBHOOK_VERSION = "4"


def parse_match_payload(body: bytes, *, max_alerts: int) -> WebhookPayload:
    """Read the pasted payload; PayloadError naming the first problem."""
    payload = parse_webhook(body, max_alerts=max_alerts)
    if payload.version is not None and payload.version != WEBHOOK_VERSION:
        raise PayloadError(f'version must be "{WEBHOOK_VERSION}" (Alertmanager\'s webhook)')
    if payload.rejected:
        first = payload.rejected[0]
        raise PayloadError(f"alerts[{first.index}]: {first.error}")
    return payload


def trigger_payload(alert: ParsedAlert, payload: WebhookPayload) -> dict[str, Any]:
    """The ``poundcake.alert`` payload intake would send for ``alert``."""
    by = Delivery(MATCH_TEST_REQUEST_ID, alert.alert_id, payload.receiver, payload.group_key)
    return alert_payload(alert, by)


def _match(cab: Cab, rule: RuleDB, alert: dict[str, Any], actions: StepActions) -> dict[str, Any]:
    names = {"alert": alert, "request_id": alert["request_id"]}
    steps, error = [], None if rule.enabled else f'the rule "{rule.ref}" is disabled'
    for step in cab.steps:
        parameters, problem = render_step(step, names, actions)
        steps.append(
            {
                "order": step.order,
                "name": step.name,
                "action": step.action,
                "parameters": parameters,
                "error": problem,
            }
        )
        error = error or problem
    return {"cab": cab.name, "rule_ref": rule.ref, "steps": steps, "error": error}


def match_test(session: Session, payload: WebhookPayload, cabs: list[Cab]) -> dict[str, Any]:
    """Each alert of ``payload`` with the CABs whose rules match it and their rendered steps."""
    by_name = {cab.name: cab for cab in cabs}
    rules = list(
        session.scalars(
            sa.select(RuleDB)
            .where(RuleDB.pack == PACK, RuleDB.trigger == ALERT_TRIGGER)
            .order_by(RuleDB.name)
        )
    )
    actions = StepActions(session, cabs)
    results = []
    for parsed in payload.alerts:
        alert = trigger_payload(parsed, payload)
        matches = []
        for rule in rules:
            try:
                matched = compile_criteria(without_admission(rule.criteria)).matches(alert)
            except CriteriaError as error:
                matches.append(
                    {"cab": rule.name, "rule_ref": rule.ref, "steps": [], "error": str(error)}
                )
                continue
            if not matched:
                continue
            cab = by_name.get(rule.name)
            if cab is None:
                missing = f'the engine holds "{rule.ref}" but there is no CAB file "{rule.name}"'
                matches.append(
                    {"cab": rule.name, "rule_ref": rule.ref, "steps": [], "error": missing}
                )
                continue
            matches.append(_match(cab, rule, alert, actions))
        results.append(
            {"labels": alert["labels"], "status": parsed.alertmanager_status, "matches": matches}
        )
    return {"alerts": results}
