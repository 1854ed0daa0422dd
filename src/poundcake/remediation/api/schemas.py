"""The shapes of PoundCake's own API (``/api/v1/alerts``, ``/requests``, ``/cabs``, the webhook).

A request body is read into one of these models before a route sees it: a field of the wrong
type, or one the model does not declare, is a 400 naming it. Alertmanager's webhook body is the
exception: it is read alert by alert (``remediation/intake/payload.py``), so one malformed alert
does not refuse the others.

Every answer is built through one of these models, so a field added, renamed or left out by a
service fails here rather than reaching a client; the OpenAPI document
(``/api/v1/openapi.json``) shows them. Engine documents inside an answer (an execution's
parameters and result) keep the shapes StackStorm gives them. Fields a service leaves out stay
out of the answer (:func:`body`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError


class Schema(BaseModel):
    """A document of PoundCake's API: no field it does not declare."""

    model_config = ConfigDict(extra="forbid")


def body(document: Schema) -> dict[str, Any]:
    """The JSON body of ``document``, with the fields its service left out still left out."""
    return document.model_dump(mode="json", exclude_unset=True)


# --- alerts and their trail ---------------------------------------------------------------------


class CallDocument(Schema):
    """One API call (``poundcake_api_calls``); it never held secrets."""

    request_id: str
    method: str
    path: str
    status_code: int | None
    duration_ms: float | None
    client_ip: str | None
    user_agent: str | None
    body_size: int | None
    error: str | None
    received_at: str | None


class AlertDocument(Schema):
    """An alert episode (``poundcake_alerts``)."""

    id: str
    fingerprint: str
    alert_name: str
    severity: str | None
    status: str
    state: str
    state_reason: str | None
    labels: dict[str, Any]
    annotations: dict[str, Any]
    starts_at: str | None
    ends_at: str | None
    resolved_at: str | None
    generator_url: str | None
    request_id: str
    last_request_id: str
    delivery_count: int
    cab_name: str | None
    trigger_instance_id: str | None
    workflow_execution_id: str | None
    created_at: str | None
    updated_at: str | None
    # Run safety (issue 21): verified | unverified | pending (null: not verified).
    verification: str | None = None
    verify_by: str | None = None
    verification_reason: str | None = None
    abandoned_retries: int = 0


class DeliveryDocument(Schema):
    """One delivery of an episode by one request."""

    id: int
    alert_id: str
    request_id: str
    status: str
    notification_reason: str | None
    receiver: str | None
    received_at: str | None
    processed_at: str | None
    outcome: str | None
    attempts: int


class ExtensionDocument(Schema):
    """A ``poundcake_st2_execution_extensions`` row."""

    id: str
    st2_execution_id: str | None
    request_id: str
    alert_id: str | None
    cab_name: str | None
    step_order: int
    action_ref: str | None
    expected_result: Any
    result_matched: bool | None
    status: str | None
    created_at: str | None
    updated_at: str | None


class ExecutionDocument(Schema):
    """An engine execution as the trail shows it (parameters with secrets masked)."""

    id: str
    action: str | None
    runner_type: str | None
    status: str | None
    parameters: dict[str, Any]
    result: Any
    start_timestamp: str | None
    end_timestamp: str | None
    parent: str | None
    rule: str | None
    request_id: Any
    step_order: Any
    extension: ExtensionDocument | None


class WorkflowExecution(ExecutionDocument):
    """An execution a rule started, with the step executions under it."""

    steps: list[ExecutionDocument]


class TriggerInstanceSummary(Schema):
    """The trigger instance an episode became."""

    id: str
    trigger: str
    status: str | None
    occurrence_time: str | None


class EnforcementSummary(Schema):
    """One rule enforcement of that trigger instance."""

    id: str
    rule: str | None
    status: str | None
    execution_id: str | None
    failure_reason: str | None
    enforced_at: str | None


class Remediation(Schema):
    """What the engine did with an episode."""

    trigger_instance: TriggerInstanceSummary | None
    rule_enforcements: list[EnforcementSummary]
    executions: list[WorkflowExecution]


class SilenceDocument(Schema):
    """The Alertmanager silence that covered an episode's run (``poundcake_silences``)."""

    id: str
    silence_id: str | None
    state: str
    cab_name: str
    matchers: list[dict[str, Any]]
    ends_at: str | None
    error: str | None
    created_at: str | None
    expired_at: str | None


class DecisionDocument(Schema):
    """One row of the decision log: a guard's decision for an alert and a CAB."""

    id: int
    alert_id: str
    request_id: str | None
    cab: str
    decision: str
    reason: str
    detail: str | None
    group: str
    target: str | None
    blast_group: str | None
    rendered: Any = None
    decided_at: str | None


class ApprovalDocument(Schema):
    """One approval of a CAB's run for an alert episode (``/api/v1/approvals``)."""

    id: int
    alert_id: str
    request_id: str | None
    cab: str
    state: str
    reason: str
    inquiry_id: str | None
    requested_at: str | None
    expires_at: str | None
    answered_at: str | None
    answered_by: str | None
    answered_via: str | None
    comment: str | None
    alert: dict[str, Any] | None = None


class ApprovalsAnswer(Schema):
    """``GET /api/v1/approvals``."""

    request_id: str
    approvals: list[ApprovalDocument]


class ApprovalAnswer(Schema):
    """``GET /api/v1/approvals/{id}`` and an answer to it."""

    request_id: str
    approval: ApprovalDocument


class ApprovalBody(Schema):
    """The body of an approve or deny: who answers, and why."""

    by: StrictStr | None = Field(default=None, max_length=255)
    comment: StrictStr | None = Field(default=None, max_length=2000)


class AlertDetail(AlertDocument):
    """One episode with its deliveries, requests and remediation."""

    deliveries: list[DeliveryDocument]
    requests: list[str]
    remediation: Remediation
    silence: SilenceDocument | None = None
    execution_extensions: list[ExtensionDocument]
    decisions: list[DecisionDocument]


class TrailAlert(AlertDocument):
    """An episode as one request's trail shows it."""

    delivery: DeliveryDocument
    started_remediation: bool
    remediation: Remediation
    silence: SilenceDocument | None = None
    decisions: list[DecisionDocument]


class Trail(Schema):
    """Everything one request caused."""

    request_id: str
    call: CallDocument | None
    alerts: list[TrailAlert]
    execution_extensions: list[ExtensionDocument]


class AlertsPage(Schema):
    """``GET /api/v1/alerts``."""

    request_id: str
    total: int
    alerts: list[AlertDocument]


class AlertAnswer(Schema):
    """``GET /api/v1/alerts/{id}``."""

    request_id: str
    alert: AlertDetail


class TrailAnswer(Schema):
    """``GET /api/v1/requests/{request_id}``: ``request_id`` is the lookup's own id."""

    request_id: str
    trail: Trail


# --- CABs -----------------------------------------------------------------------------------


class CabStepDocument(Schema):
    """One step of a CAB; ``expected_result``, ``timeout_seconds`` only when its file has them."""

    step_order: int
    name: str
    action: str
    parameters: dict[str, Any]
    expected_result: Any = None
    timeout_seconds: int | None = None


class CabRetryDocument(Schema):
    """A CAB's ``retry``: how many times an abandoned run is resumed."""

    on_abandoned: int = 0


class CabDocument(Schema):
    """A CAB as its file defines it."""

    name: str
    description: str
    alert_name_pattern: str
    severity_filter: list[str]
    stop_on_first_failure: bool
    enabled: bool
    steps: list[CabStepDocument]
    # Run safety (issue 21).
    silence: bool = False
    verify_within: int | None = None
    on_unverified: str | None = None
    idempotent: bool = False
    retry: CabRetryDocument = CabRetryDocument()
    # The admission guards (remediation/cabs/guard_fields.py); durations as the file gives them.
    mode: str
    max_runs: int
    budget_window: str | int
    group: str
    cooldown: str | int
    flap: dict[str, Any]
    target: str
    target_wait: str | int
    storm: dict[str, Any]
    blast_radius: dict[str, Any] | None
    approval: str | dict[str, Any] = "none"
    approval_ttl: str | int = "1h"


class AppliedCab(CabDocument):
    """A CAB file and whether the engine holds it."""

    rule: str
    applied: bool
    st2_rule_id: str | None


class CabsAnswer(Schema):
    """``GET /api/v1/cabs``."""

    request_id: str
    cabs: list[AppliedCab]


class CabAnswer(Schema):
    """``GET /api/v1/cabs/{name}``."""

    request_id: str
    cab: AppliedCab


class CabStepBody(Schema):
    """One step of a CAB in a request body, as its file would hold it (no ``step_order``)."""

    name: StrictStr | None = None
    action: StrictStr
    parameters: dict[str, Any] | None = None
    expected_result: dict[str, Any] | None = None
    timeout_seconds: StrictInt | None = None


class CabBody(Schema):
    """The body of ``PUT /api/v1/cabs/{name}`` and ``POST /api/v1/cabs/validate``: a CAB file's
    fields. Its shape is checked here; what a CAB file must also satisfy (a valid regex, step
    names, templates naming earlier steps) is checked by ``parse_cab``, as for the files."""

    name: StrictStr | None = None
    description: StrictStr | None = None
    alert_name_pattern: StrictStr
    severity_filter: list[StrictStr] | StrictStr | None = None
    stop_on_first_failure: StrictBool = True
    enabled: StrictBool = True
    steps: list[CabStepBody] = Field(min_length=1)
    # The admission guards and run safety: their values are checked by ``parse_cab``
    # (cabs/guard_fields.py, cabs/run_safety.py), which names the field and what is wrong.
    mode: Any = None
    max_runs: Any = None
    budget_window: Any = None
    group: Any = None
    cooldown: Any = None
    flap: Any = None
    target: Any = None
    target_wait: Any = None
    storm: Any = None
    blast_radius: Any = None
    approval: Any = None
    approval_ttl: Any = None
    silence: Any = None
    verify_within: Any = None
    on_unverified: Any = None
    idempotent: Any = None
    retry: Any = None

    def document(self) -> dict[str, Any]:
        """The fields the caller sent, as ``parse_cab`` reads a CAB file."""
        return self.model_dump(exclude_unset=True)


class ErrorAnswer(Schema):
    """Any refused request: ``{"request_id", "error"}`` (see ``responses.error_response``)."""

    request_id: str
    error: str


class ValidationAnswer(Schema):
    """``POST /api/v1/cabs/validate`` (200 when valid, else 400)."""

    request_id: str
    valid: bool
    cabs: list[str]
    problems: list[str]


class ApplyAnswer(Schema):
    """``POST /api/v1/cabs/apply``, ``DELETE /api/v1/cabs/{name}``; ``PUT`` adds ``cab``."""

    request_id: str
    cab: CabDocument | None = None
    applied: list[str]
    changed: list[str]
    removed: list[str]


# --- the webhook ----------------------------------------------------------------------------


class RejectedAlert(Schema):
    """An alert of the notification that was not stored, and why."""

    index: int
    error: str


class WebhookAccepted(Schema):
    """The 202 answer to Alertmanager."""

    request_id: str
    status: str
    accepted: int
    deliveries: int
    rejected: list[RejectedAlert]
    truncated_alerts: int


# --- the web UI's request bodies ----------------------------------------------------------------


class EnabledBody(Schema):
    """The body of ``PUT /ui/api/rules/{ref}/enabled``."""

    enabled: StrictBool


class LoginBody(Schema):
    """The body of ``POST /ui/session``. The password stays out of the model's repr, so a
    traceback or a debugger showing the model does not show it."""

    username: StrictStr
    password: StrictStr = Field(repr=False)


def refusal(error: PydanticValidationError, shape: str, wrong: str) -> str:
    """What a UI body refused by its model is told: ``shape`` when it is not an object, the shape
    naming the fields the model does not declare (refused, never dropped), else ``wrong``."""
    problems = error.errors()
    if any(problem["type"] == "model_type" for problem in problems):
        return shape
    unknown = [
        '"' + ".".join(str(part) for part in problem["loc"]) + '"'
        for problem in problems
        if problem["type"] == "extra_forbidden"
    ]
    if unknown:
        return f"{shape}, without {', '.join(unknown)}"
    return wrong
