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

from poundcake.engine.public import (
    SHELL_COMMAND_RUNNERS,
    ActionDB,
    CriteriaError,
    RenderError,
    RuleDB,
    RunnerTypeDB,
    compile_criteria,
    mask_secrets,
    merge_schemas,
    render_shell_command,
    render_value,
)
from poundcake.remediation.alerts.trigger import ALERT_TRIGGER, Delivery, alert_payload
from poundcake.remediation.cabs.definition import Cab, CabStep
from poundcake.remediation.cabs.pack import PACK
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


class _Actions:
    """Runner types and parameter schemas of the actions steps name, read once."""

    def __init__(self, session: Session, cabs: list[Cab]) -> None:
        refs = {step.action for cab in cabs for step in cab.steps}
        actions = list(session.scalars(sa.select(ActionDB).where(ActionDB.ref.in_(refs))))
        runner_names = {action.runner_type for action in actions}
        runners = {
            runner.name: runner.runner_parameters or {}
            for runner in session.scalars(
                sa.select(RunnerTypeDB).where(RunnerTypeDB.name.in_(runner_names))
            )
        }
        self.found = {
            action.ref: (
                action.runner_type,
                merge_schemas(runners.get(action.runner_type, {}), action.parameters or {}),
            )
            for action in actions
        }


def render_step(
    step: CabStep, names: dict[str, Any], actions: _Actions
) -> tuple[dict[str, Any], str | None]:
    """A step's rendered parameters (secrets masked) and the error that stopped it, if any."""
    known = actions.found.get(step.action)
    if known is None:
        return dict(step.parameters), f'step {step.order} ({step.name}): no action "{step.action}"'
    runner_type, schema = known
    rendered: dict[str, Any] = {}
    for name, value in step.parameters.items():
        shell = name == "cmd" and runner_type in SHELL_COMMAND_RUNNERS
        try:
            rendered[name] = (
                render_shell_command(value, names) if shell else render_value(value, names)
            )
        except RenderError as error:
            return mask_secrets(
                step.parameters, schema
            ), f'step {step.order} ({step.name}): parameter "{name}": {error}'
    if step.timeout_seconds is not None and "timeout" not in rendered and "timeout" in schema:
        rendered["timeout"] = step.timeout_seconds
    return mask_secrets(rendered, schema), None


def _match(cab: Cab, rule: RuleDB, alert: dict[str, Any], actions: _Actions) -> dict[str, Any]:
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
    actions = _Actions(session, cabs)
    results = []
    for parsed in payload.alerts:
        alert = trigger_payload(parsed, payload)
        matches = []
        for rule in rules:
            try:
                matched = compile_criteria(rule.criteria or {}).matches(alert)
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
