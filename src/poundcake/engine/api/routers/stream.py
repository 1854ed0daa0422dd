"""``GET /v1/stream``: StackStorm's server-sent event stream (``st2stream``, port 9102).

Credentials come as query parameters (``x-auth-token`` or ``st2-api-key``); the caller is
checked with a session of its own, so no database connection is held while the stream is open.
The process's event fan-out starts with the first client and stops with the application.

With ``[rbac] enable`` the stream does not yet filter events by what the reader may view, so it
serves administrators only and refuses everyone else with a 403 saying so (docs/rbac.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from poundcake.engine.api.dependencies import Caller, get_caller, get_runtime
from poundcake.engine.api.errors import fault
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.rbac.enforcement import AccessDeniedError, load_user_permissions
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.stream.events import EndCondition, EventFilter, StreamQuery, split_list
from poundcake.engine.stream.fanout import EventFanout
from poundcake.engine.stream.feed import EventFeed
from poundcake.engine.stream.service import StreamReader

LISTENER = "stream"

READY_TIMEOUT_SECONDS = 10.0
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MEDIA_TYPE = "text/event-stream; charset=UTF-8"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    fanout: EventFanout | None = getattr(app.state, "stream_fanout", None)
    if fanout is not None:
        await asyncio.to_thread(fanout.stop)


router = APIRouter(tags=["stream"], lifespan=_lifespan)


STREAM_ADMINS_ONLY = (
    'User "{user}" may not read the event stream: with RBAC enabled this engine serves the '
    "stream to administrators only (system_admin or admin), because it does not filter events by "
    "the reader's permissions yet"
)


def authenticate(request: Request) -> Caller:
    """The caller, checked with a short-lived session; with RBAC on, an administrator."""
    runtime = get_runtime(request)
    with runtime.sessions() as session:
        caller = get_caller(request, session)
        if runtime.config.rbac.enable and not load_user_permissions(session, caller.user).is_admin:
            raise AccessDeniedError(STREAM_ADMINS_ONLY.format(user=caller.user))
        return caller


def _reader(runtime: EngineRuntime) -> StreamReader:
    """A reader that masks secrets as configured (and opens sealed ones when not masking)."""
    mask = runtime.config.api.mask_secrets
    path = runtime.config.datastore_key_path
    cipher = None
    if not mask and path.exists():
        cipher = DatastoreCipher.from_key_file(path, create=False)
    return StreamReader(runtime.sessions, mask_secrets=mask, cipher=cipher)


def _fanout(app: FastAPI, runtime: EngineRuntime) -> EventFanout:
    fanout: EventFanout | None = getattr(app.state, "stream_fanout", None)
    if fanout is None:
        reader = _reader(runtime)
        fanout = EventFanout(runtime.config.messaging_url, reader)
        fanout.start()
        app.state.stream_fanout = fanout
    return fanout


@router.get("/stream", response_model=None)
async def stream(
    request: Request,
    _caller: Annotated[Caller, Depends(authenticate)],
    events: Annotated[str | None, Query()] = None,
    action_refs: Annotated[str | None, Query()] = None,
    execution_ids: Annotated[str | None, Query()] = None,
    end_event: Annotated[str | None, Query()] = None,
    end_execution_id: Annotated[str | None, Query()] = None,
) -> StreamingResponse | JSONResponse:
    """Stream engine events as ``event: <name>\\ndata: <json>\\n\\n`` frames."""
    runtime = get_runtime(request)
    fanout = _fanout(request.app, runtime)
    if not await asyncio.to_thread(fanout.wait_ready, READY_TIMEOUT_SECONDS):
        return fault(503, "The event stream is not connected to the message broker.")
    query = StreamQuery(
        EventFilter.from_query(
            split_list(events), split_list(action_refs), split_list(execution_ids)
        ),
        EndCondition(end_event or None, end_execution_id or None),
    )
    reader = _reader(runtime)
    feed = EventFeed(fanout, reader, query, heartbeat=runtime.config.stream.heartbeat)
    return StreamingResponse(feed.frames(), media_type=MEDIA_TYPE, headers=STREAM_HEADERS)
