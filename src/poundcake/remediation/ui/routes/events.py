"""``GET /ui/api/events``: the UI's live updates as server-sent events.

``execution`` events are relayed from the engine's stream, ``alert`` events come from polling
the alerts, and a ``: keepalive`` comment goes out every 15 seconds. Everything runs in the
response's own task group, which ends when the browser disconnects or its session ends.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from poundcake.remediation.api.dependencies import Api, ApiState, Db
from poundcake.remediation.ui.events import frame, relay_alert_changes, relay_executions
from poundcake.remediation.ui.routes.support import UiLogin, UiRoute
from poundcake.remediation.ui.sessions import COOKIE_NAME, token_hash

KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keepalive\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]

router = APIRouter(tags=["ui"], route_class=UiRoute)


class EventStreamResponse(Response):
    """Streams the UI's events until the client goes away."""

    def __init__(self, api: ApiState, token_hash: str) -> None:
        super().__init__(status_code=200)
        self.api = api
        self.token_hash = token_hash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
        sender, events = anyio.create_memory_object_stream[bytes](math.inf)

        async def emit(event: str, data: dict[str, Any]) -> None:
            await sender.send(frame(event, data))

        async with anyio.create_task_group() as group:

            async def until_disconnected() -> None:
                while (await receive())["type"] != "http.disconnect":
                    continue
                group.cancel_scope.cancel()

            group.start_soon(until_disconnected)
            group.start_soon(relay_executions, self.api.settings, emit)

            async def while_logged_in() -> None:
                await relay_alert_changes(self.api.sessions, emit, token_hash=self.token_hash)
                group.cancel_scope.cancel()

            group.start_soon(while_logged_in)
            await _forward(events, send)
            group.cancel_scope.cancel()


async def _forward(events: MemoryObjectReceiveStream[bytes], send: Send) -> None:
    while True:
        chunk = KEEPALIVE
        with anyio.move_on_after(KEEPALIVE_SECONDS):
            chunk = await events.receive()
        try:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:
            return


@router.get("/events")
def events(request: Request, _login: UiLogin, api: Api, session: Db) -> Response:
    """Server-sent ``execution`` and ``alert`` events while the session lasts."""
    # The login check's connection goes back to the pool; the stream may last for hours.
    session.rollback()
    return EventStreamResponse(api, token_hash(request.cookies.get(COOKIE_NAME, "")))
