"""``/v1/executions``: list, get, children, output, run, re-run, cancel and update.

What ``st2 run``, ``st2 execution list|get|cancel|re-run|tail`` and ``pause|resume`` call,
answered the way StackStorm answers them (``X-Total-Count``, ``faultstring`` messages, 201 on
create, 200 with a faultstring when a cancel is refused). New executions are committed first
and then handed to the scheduler; a lost hand-over only delays them (the scheduler's sweep
finds requested work whose message never came).

With RBAC on, StackStorm's checks apply: ``execution_list`` to list (the list is not filtered,
as in StackStorm without permission isolation), ``execution_view`` on one execution (and its
children and output), ``action_execute`` on the action to run it, ``execution_view`` and
``action_execute`` to re-run, ``execution_stop`` to cancel, pause or resume; only administrators
run actions as another ``user`` or see secrets with ``show_secrets``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from kombu.exceptions import KombuError

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.api.dependencies import Db, Page, Rbac, Runtime, check_limit, truthy
from poundcake.engine.executions.documents import (
    Projection,
    encode_document,
    encode_documents,
    execution_document,
    new_row_values,
)
from poundcake.engine.executions.pausing import Resumed, hand_over_resumed
from poundcake.engine.executions.queries import (
    CountCache,
    ExecutionFilters,
    count_executions,
    descendants,
    encoded_execution_output,
    existing_ids,
    fetch_execution,
    latest_id,
    list_executions,
    newest_first,
    parse_ids,
    parse_timestamp,
)
from poundcake.engine.executions.rerun import rerun_execution
from poundcake.engine.executions.service import (
    RequestedExecution,
    cancel_execution,
    record_execution,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.executions.updates import UNSET, update_execution
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import hand_over
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.resources import check_notify
from poundcake.engine.rbac.enforcement import Authorizer
from poundcake.engine.rbac.resources import (
    action_of_execution,
    action_resource,
    find_execution_resource,
)
from poundcake.engine.runtime import EngineRuntime
from poundcake.exceptions import NotFoundError, ValidationError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["executions"])
DEFAULT_LIMIT = 100
OptionalText = Annotated[str | None, Query()]
JsonBody = Annotated[dict[str, Any] | None, Body()]


def _not_found(execution_id: str) -> NotFoundError:
    return NotFoundError(f'Unable to identify resource with id "{execution_id}".')


def _page(runtime: EngineRuntime, rbac: Authorizer, limit: str | None, offset: str | None) -> Page:
    """``limit`` and ``offset`` as StackStorm reads them; -1 means everything."""
    try:
        wanted = DEFAULT_LIMIT if limit in (None, "") else int(str(limit))
        start = 0 if offset in (None, "") else int(str(offset))
    except ValueError:
        raise ValidationError("limit and offset must be integers") from None
    if limit not in (None, ""):
        check_limit(rbac, wanted, runtime.config.api.max_page_size)
    if wanted == 0:
        raise ValidationError(
            'Limit, "0" specified, must be a positive number or -1 for full result set.'
        )
    if wanted <= -2:
        raise ValidationError(f'Limit, "{wanted}" specified, must be a positive number.')
    if wanted == -1:
        return Page(None, start)
    return Page(min(wanted, runtime.config.api.max_page_size), start)


def _mask(runtime: EngineRuntime, show_secrets: str | None, rbac: Authorizer) -> bool:
    """Secrets are masked unless an administrator asks (StackStorm's ``_get_mask_secrets``)."""
    return runtime.config.api.mask_secrets and not (truthy(show_secrets) and rbac.is_admin)


def _require(session: Db, rbac: Authorizer, execution_id: str, permission_type: str) -> None:
    """StackStorm's check on one execution (``last``: the newest); 404 if it does not exist."""
    if not rbac.enabled:
        return
    if execution_id == "last":
        execution_id = latest_id(session) or execution_id
    rbac.require_on(find_execution_resource(session, execution_id), permission_type)


def _count_cache(request: Request) -> CountCache:
    cache: CountCache | None = getattr(request.app.state, "execution_count_cache", None)
    if cache is None:
        cache = CountCache()
        request.app.state.execution_count_cache = cache
    return cache


def _counter(runtime: EngineRuntime, filters: ExecutionFilters) -> Callable[[], int]:
    """Count in a session of its own, so the count may also run in the background."""

    def count() -> int:
        with runtime.sessions() as session:
            return count_executions(session, filters)

    return count


def _cipher(runtime: EngineRuntime) -> DatastoreCipher:
    """The datastore cipher (the key is created on first use): templates may decrypt datastore
    secrets, and secret parameters are stored sealed with it."""
    return DatastoreCipher.from_key_file(runtime.config.datastore_key_path)


def _reveal(runtime: EngineRuntime, mask: bool) -> DatastoreCipher | None:
    """The cipher that opens sealed parameters for an unmasked answer (none when masking)."""
    path = runtime.config.datastore_key_path
    if mask or not path.exists():
        return None
    return DatastoreCipher.from_key_file(path, create=False)


def _json(content: Any, status_code: int = 200) -> Response:
    # Documents are plain JSON already: skip FastAPI's per-value encoder.
    return JSONResponse(content, status_code=status_code)


def _document(
    session: Db,
    execution_id: str,
    projection: Projection,
    runtime: EngineRuntime,
    mask: bool,
) -> dict[str, Any]:
    row = fetch_execution(session, execution_id, projection.columns())
    if row is None:
        raise _not_found(execution_id)
    return execution_document(row._mapping, projection, mask=mask, cipher=_reveal(runtime, mask))


def _announce_update(runtime: EngineRuntime, execution_id: str, liveaction_id: str | None) -> None:
    body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
    try:
        runtime.publisher.event("st2.execution__update", body)
    except (OSError, KombuError, AMQPError):
        logger.exception("Could not announce the update of execution %s", execution_id)


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{value!r} is not of type 'object'")
    return value


def _delay(body: dict[str, Any]) -> int | None:
    delay = body.get("delay")
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ValidationError(f"{delay!r} is not valid under any of the given schemas")
    return delay


def _header_context(request: Request) -> dict[str, Any]:
    """StackStorm's ``st2-context`` header: JSON merged into the execution context."""
    raw = request.headers.get("st2-context")
    if not raw:
        return {}
    try:
        context = json.loads(raw)
    except ValueError:
        context = None
    if not isinstance(context, dict):
        raise ValidationError("Unable to convert st2-context from the headers into JSON.")
    return context


def list_filters(
    action: OptionalText = None,
    status: OptionalText = None,
    parent: OptionalText = None,
    user: OptionalText = None,
    trigger_instance: OptionalText = None,
    rule: OptionalText = None,
    runner: OptionalText = None,
    trigger: OptionalText = None,
    trigger_type: OptionalText = None,
    liveaction: OptionalText = None,
    timestamp_gt: OptionalText = None,
    timestamp_lt: OptionalText = None,
    id: OptionalText = None,
) -> ExecutionFilters:
    """The list filters from the query string."""
    return ExecutionFilters(
        action=action or None,
        status=status or None,
        parent=parent or None,
        user=user or None,
        trigger_instance=trigger_instance or None,
        rule=rule or None,
        runner=runner or None,
        trigger=trigger or None,
        trigger_type=trigger_type or None,
        liveaction=liveaction or None,
        timestamp_gt=parse_timestamp(timestamp_gt, "timestamp_gt") if timestamp_gt else None,
        timestamp_lt=parse_timestamp(timestamp_lt, "timestamp_lt") if timestamp_lt else None,
        ids=parse_ids(id),
    )


Filters = Annotated[ExecutionFilters, Depends(list_filters)]


@router.get("/executions")
def list_all(
    request: Request,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    filters: Filters,
    limit: OptionalText = None,
    offset: OptionalText = None,
    sort_desc: OptionalText = None,
    sort_asc: OptionalText = None,
    include_attributes: OptionalText = None,
    exclude_attributes: OptionalText = None,
    show_secrets: OptionalText = None,
) -> Response:
    """Executions newest first (``sort_asc`` or ``timestamp_gt`` alone: oldest first)."""
    rbac.require("execution_list")
    page = _page(runtime, rbac, limit, offset)
    projection = Projection.parse(include_attributes, exclude_attributes)
    newest = newest_first(
        sort_desc=sort_desc is not None,
        sort_asc=sort_asc is not None,
        timestamp_gt=filters.timestamp_gt is not None,
        timestamp_lt=filters.timestamp_lt is not None,
    )
    found = list_executions(
        session,
        filters=filters,
        columns=projection.columns(raw=True),
        newest=newest,
        limit=page.limit,
        offset=page.offset,
        total=lambda: _count_cache(request).total(filters.key(), _counter(runtime, filters)),
    )
    mask = _mask(runtime, show_secrets, rbac)
    body = encode_documents(
        (row._mapping for row in found.rows), projection, mask=mask, cipher=_reveal(runtime, mask)
    )
    headers = {"X-Total-Count": str(found.total)}
    if page.limit is not None:
        headers["X-Limit"] = str(page.limit)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/executions/{execution_id}")
def get_one(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    include_attributes: OptionalText = None,
    exclude_attributes: OptionalText = None,
    show_secrets: OptionalText = None,
) -> Response:
    """One execution (``last``: the newest)."""
    if execution_id == "last" and latest_id(session) is None:
        raise ValidationError("No executions found in the database")
    _require(session, rbac, execution_id, "execution_view")
    projection = Projection.parse(include_attributes, exclude_attributes)
    row = fetch_execution(session, execution_id, projection.columns(raw=True))
    if row is None:
        raise _not_found(execution_id)
    mask = _mask(runtime, show_secrets, rbac)
    body = encode_document(row._mapping, projection, mask=mask, cipher=_reveal(runtime, mask))
    return Response(body, media_type="application/json")


@router.get("/executions/{execution_id}/children")
def get_children(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    depth: Annotated[int, Query()] = -1,
    show_secrets: OptionalText = None,
) -> Response:
    """Descendants, depth first (``depth`` levels; -1 for all)."""
    _require(session, rbac, execution_id, "execution_view")
    if not existing_ids(session, [execution_id]):
        raise _not_found(execution_id)
    projection = Projection.everything()
    mask = _mask(runtime, show_secrets, rbac)
    rows = descendants(session, execution_id, projection.columns(raw=True), depth=depth)
    body = encode_documents(
        (row._mapping for row in rows), projection, mask=mask, cipher=_reveal(runtime, mask)
    )
    return Response(body, media_type="application/json")


@router.get("/executions/{execution_id}/output", response_class=PlainTextResponse)
def get_output(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    output_type: OptionalText = None,
) -> Response:
    """Everything the execution wrote so far, as text (``output_type``: one stream)."""
    if execution_id == "last":
        newest = latest_id(session)
        if newest is None:
            raise ValidationError("No executions found in the database")
        execution_id = newest
    _require(session, rbac, execution_id, "execution_view")
    if not existing_ids(session, [execution_id]):
        raise _not_found(execution_id)
    return PlainTextResponse(encoded_execution_output(session, execution_id, output_type))


@router.post("/executions", status_code=201)
def create(
    request: Request,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: JsonBody = None,
    show_secrets: OptionalText = None,
) -> Response:
    """Run an action: ``{"action", "parameters", "user", "delay", "context", "notify"}``.

    PoundCake's own extension ``"render_parameters": false`` says the given parameters are
    final (an alert's labels, say): nothing in them is rendered as a template.
    """
    body = body or {}
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ValidationError("'action' is a required property")
    if rbac.enabled and session.scalar(sa.select(ActionDB.id).where(ActionDB.ref == action)):
        rbac.require_on(action_resource(action), "action_execute")
    rbac.require_admin_for_other_user(str(body["user"]) if body.get("user") else None)
    render = body.get("render_parameters", True)
    if not isinstance(render, bool):
        raise ValidationError("'render_parameters' must be true or false")
    context = {**_object(body, "context"), **_header_context(request)}
    prepared = record_execution(
        session,
        action_ref=action,
        parameters=_object(body, "parameters"),
        user=str(body.get("user") or rbac.user),
        context=context,
        delay=_delay(body),
        cipher=_cipher(runtime),
        notify=check_notify(Fields(_object(body, "notify"), "notify")),
        rendered=not render,
    )
    session.commit()
    requested = prepared.requested
    hand_over(runtime.publisher, requested.liveaction_id, requested.execution_id)
    # The document is built from the row just written: reading it back would cost a pool
    # checkout, a query and a rollback per request.
    mask = _mask(runtime, show_secrets, rbac)
    document = execution_document(
        new_row_values(prepared.execution),
        Projection.everything(),
        mask=mask,
        cipher=_reveal(runtime, mask),
    )
    return _json(document, status_code=201)


def _created(session: Db, runtime: Runtime, requested: RequestedExecution, mask: bool) -> Response:
    """Commit a new execution, hand it to the scheduler, and answer 201 with its document."""
    session.commit()
    hand_over(runtime.publisher, requested.liveaction_id, requested.execution_id)
    document = _document(session, requested.execution_id, Projection.everything(), runtime, mask)
    return _json(document, status_code=201)


@router.post("/executions/{execution_id}/re_run", status_code=201)
def re_run(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: JsonBody = None,
    no_merge: OptionalText = None,
    show_secrets: OptionalText = None,
) -> Response:
    """Run the execution's action again with its parameters updated by ``parameters``."""
    body = body or {}
    if rbac.enabled:
        existing = find_execution_resource(session, execution_id)
        rbac.require_on(existing, "execution_view")
        rbac.require_on(action_of_execution(existing), "action_execute")
    if not existing_ids(session, [execution_id]):
        raise _not_found(execution_id)
    tasks, reset = body.get("tasks") or [], body.get("reset") or []
    if not isinstance(tasks, list) or not isinstance(reset, list):
        raise ValidationError("'tasks' and 'reset' must be lists of task names")
    requested = rerun_execution(
        session,
        execution_id=execution_id,
        user=rbac.user,
        parameters=_object(body, "parameters"),
        tasks=[str(task) for task in tasks],
        reset=[str(task) for task in reset],
        delay=_delay(body),
        merge=not truthy(no_merge),
        cipher=_cipher(runtime),
    )
    return _created(session, runtime, requested, _mask(runtime, show_secrets, rbac))


@router.delete("/executions/{execution_id}")
def cancel(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    show_secrets: OptionalText = None,
) -> Response:
    """Cancel; a completed execution gets 200 with StackStorm's refusal as ``faultstring``."""
    _require(session, rbac, execution_id, "execution_stop")
    if not existing_ids(session, [execution_id]):
        raise _not_found(execution_id)
    outcome = cancel_execution(session, execution_id, user=rbac.user)
    session.commit()
    if outcome.refused:
        return _json({"faultstring": outcome.refused})
    _announce_update(runtime, execution_id, outcome.execution.liveaction_id)
    mask = _mask(runtime, show_secrets, rbac)
    document = _document(session, execution_id, Projection.everything(), runtime, mask)
    return _json(document)


@router.put("/executions/{execution_id}")
def update(
    execution_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: JsonBody = None,
    show_secrets: OptionalText = None,
) -> Response:
    """Change the status (cancel, pause, resume, or a workflow engine's update)."""
    body = body or {}
    _require(session, rbac, execution_id, "execution_stop")
    if not existing_ids(session, [execution_id]):
        raise _not_found(execution_id)
    if "status" not in body:
        raise ValidationError("'status' is a required property")
    execution = update_execution(
        session,
        execution_id,
        status=body["status"],
        user=rbac.user,
        result=body.get("result", UNSET),
        max_result_bytes=runtime.config.actionrunner.max_result_bytes,
    )
    session.commit()
    if execution.status == ExecutionStatus.RESUMING:
        resumed = Resumed(execution.id, execution.liveaction_id or "", execution.runner_type)
        hand_over_resumed(runtime.publisher, resumed)
    _announce_update(runtime, execution_id, execution.liveaction_id)
    mask = _mask(runtime, show_secrets, rbac)
    document = _document(session, execution_id, Projection.everything(), runtime, mask)
    return _json(document)
