"""``/ui/api/*``: what the web UI reads and changes, for a logged-in operator.

Every route needs the session cookie; writes also need the session's ``X-CSRF-Token``. The
engine is called server side with PoundCake's key (see ``support.EngineApiClient``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.api.dependencies import Api, Db
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.routers.webhook import read_body
from poundcake.remediation.api.schemas import EnabledBody, refusal
from poundcake.remediation.approvals import service as approvals
from poundcake.remediation.approvals.inquiries import answer
from poundcake.remediation.cabs.service import cabs_directory, load_cabs
from poundcake.remediation.tracking.trail import request_trail
from poundcake.remediation.ui import catalog, dashboard, executions, match, task_tree
from poundcake.remediation.ui.routes.support import EngineApiClient, UiLogin, UiRoute, UiWriter

router = APIRouter(tags=["ui"], route_class=UiRoute)
Text = Annotated[str | None, Query()]


def _ok(body: dict[str, Any], status: int = 200) -> Response:
    return json_response(status, body, headers={"Cache-Control": "no-store"})


@router.get("/dashboard")
def get_dashboard(_login: UiLogin, api: Api, session: Db) -> Response:
    """Alerts by state, remediation outcomes, executions per day, recent activity, guards."""
    quiet = api.config.settings.breaker_quiet_seconds
    return _ok(dashboard.dashboard(session, breaker_quiet_seconds=quiet))


@router.get("/alerts")
def list_alerts(
    _login: UiLogin,
    session: Db,
    state: Text = None,
    severity: Text = None,
    name: Text = None,
    limit: Annotated[int, Query()] = 100,
) -> Response:
    """Episodes filtered by state, severity and (part of) name, newest change first."""
    items = dashboard.alerts_page(session, state=state, severity=severity, name=name, limit=limit)
    return _ok({"items": items})


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: str, _login: UiLogin, session: Db) -> Response:
    """One episode with its deliveries."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f'No alert with id "{alert_id}"')
    return _ok(dashboard.alert_with_deliveries(session, alert))


@router.get("/requests/{trail_id}")
def get_request(trail_id: str, _login: UiLogin, session: Db) -> Response:
    """The trail of one request (as ``GET /api/v1/requests/<id>`` gives it)."""
    return _ok(request_trail(session, trail_id))


@router.get("/executions")
def list_executions(
    _login: UiLogin,
    session: Db,
    action: Text = None,
    status: Text = None,
    user: Text = None,
    trigger_instance: Text = None,
    parent: Text = None,
    rule: Text = None,
    timestamp_gt: Text = None,
    timestamp_lt: Text = None,
    task_execution: Text = None,
    limit: Annotated[int, Query()] = 50,
    offset: Annotated[int, Query()] = 0,
) -> Response:
    """Executions with ``st2 execution list``'s filters (and an Orquesta task's), newest first."""
    query = executions.ExecutionQuery(
        action=action,
        status=status,
        user=user,
        trigger_instance=trigger_instance,
        parent=parent,
        rule=rule,
        timestamp_gt=timestamp_gt,
        timestamp_lt=timestamp_lt,
        task_execution=task_execution,
        limit=limit,
        offset=offset,
    )
    return _ok(executions.list_executions(session, query))


@router.get("/executions/{execution_id}")
def get_execution(execution_id: str, _login: UiLogin, engine_api: EngineApiClient) -> Response:
    """One execution: parameters (secrets masked), result, context, children, log."""
    return _ok(executions.execution_detail(engine_api, execution_id))


@router.get("/executions/{execution_id}/tasks")
def get_tasks(
    execution_id: str,
    _login: UiLogin,
    session: Db,
    items: Annotated[int, Query()] = task_tree.DEFAULT_ITEMS,
) -> Response:
    """A workflow's task tree: sub-workflows nested, with-items tasks' items grouped."""
    return _ok(dict(task_tree.task_tree(session, execution_id, items=items)))


@router.get("/executions/{execution_id}/output")
def get_output(execution_id: str, _login: UiLogin, session: Db) -> Response:
    """An execution's stdout and stderr so far."""
    return _ok(executions.execution_output(session, execution_id))


@router.post("/executions/{execution_id}/rerun")
def rerun(execution_id: str, login: UiWriter, engine_api: EngineApiClient) -> Response:
    """Run the execution's action again with the same parameters."""
    return _ok(executions.rerun_execution(engine_api, execution_id, user=login.username), 201)


@router.post("/executions/{execution_id}/cancel")
def cancel(execution_id: str, login: UiWriter, engine_api: EngineApiClient) -> Response:
    """Cancel a running execution (409 when it has finished)."""
    return _ok(executions.cancel_execution(engine_api, execution_id, user=login.username))


@router.post("/executions/{execution_id}/pause")
def pause(execution_id: str, login: UiWriter, engine_api: EngineApiClient) -> Response:
    """Pause a running workflow (409 when the engine refuses)."""
    return _ok(executions.change_pause(engine_api, execution_id, pause=True, user=login.username))


@router.post("/executions/{execution_id}/resume")
def resume(execution_id: str, login: UiWriter, engine_api: EngineApiClient) -> Response:
    """Resume a paused workflow (409 when the engine refuses)."""
    return _ok(executions.change_pause(engine_api, execution_id, pause=False, user=login.username))


@router.get("/packs")
def list_packs(_login: UiLogin, session: Db) -> Response:
    """Registered packs."""
    return _ok({"items": catalog.list_packs(session)})


@router.get("/actions")
def list_actions(_login: UiLogin, session: Db, pack: Text = None) -> Response:
    """Actions of a pack (or all), with their parameters."""
    return _ok({"items": catalog.list_actions(session, pack=pack)})


@router.get("/rules")
def list_rules(_login: UiLogin, session: Db, pack: Text = None) -> Response:
    """Rules of a pack (or all); a CAB's rule names its CAB."""
    return _ok({"items": catalog.list_rules(session, pack=pack)})


def _enabled(body: Any) -> bool:
    """The ``enabled`` of a ``{"enabled": bool}`` body, in our own words when it is not one."""
    try:
        return EnabledBody.model_validate(body).enabled
    except PydanticValidationError as error:
        shape = 'the body must be {"enabled": true} or {"enabled": false}'
        raise ValidationError(refusal(error, shape, shape)) from None


@router.put("/rules/{ref}/enabled")
def set_rule_enabled(
    ref: str,
    login: UiWriter,
    engine_api: EngineApiClient,
    body: Annotated[Any, Body()] = None,
) -> Response:
    """Enable or disable a rule (a CAB through its rule) in the engine."""
    enabled = _enabled(body)
    return _ok(catalog.set_rule_enabled(engine_api, ref, enabled=enabled, user=login.username))


@router.get("/cabs")
def list_cabs(_login: UiLogin, api: Api, session: Db) -> Response:
    """Every CAB with its rule and steps."""
    cabs = load_cabs(cabs_directory(api.config))
    return _ok({"items": catalog.cab_documents(session, cabs)})


@router.post("/cabs/match")
async def match_test(request: Request, _login: UiWriter, api: Api, session: Db) -> Response:
    """Which CABs an Alertmanager payload would start, each step's parameters rendered.

    Nothing is stored, dispatched or run.
    """
    settings = api.settings
    body = await read_body(request, settings.max_body_bytes)
    payload = match.parse_match_payload(body, max_alerts=settings.max_alerts_per_request)

    def test() -> dict[str, Any]:
        cabs = load_cabs(cabs_directory(api.config))
        try:
            return match.match_test(session, payload, cabs)
        finally:
            session.rollback()

    return _ok(await run_in_threadpool(test))


@router.get("/approvals")
def list_approvals(
    _login: UiLogin, session: Db, state: Text = None, limit: Annotated[int, Query()] = 100
) -> Response:
    """Approvals, newest first (``state`` filters)."""
    return _ok({"items": approvals.list_approvals(session, state=state, limit=limit)})


@router.post("/approvals/{approval_id}/{verb}")
def answer_approval(
    approval_id: int,
    verb: Literal["approve", "deny"],
    login: UiWriter,
    api: Api,
    engine_api: EngineApiClient,
) -> Response:
    """Approve or deny as the logged-in user (409 when answered already)."""
    document, released = answer(
        api.sessions,
        engine_api,
        approval_id,
        approved=verb == "approve",
        by=login.username,
        via="ui",
    )
    api.handoff.submit(released)
    return _ok(document)
