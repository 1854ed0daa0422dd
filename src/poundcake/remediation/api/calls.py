"""Request ids and the record of every API call (``poundcake_api_calls``).

:class:`RequestContextMiddleware` (plain ASGI: no per-request task, no body buffering) gives
each request its ``request_id``: the client's ``X-Request-ID`` when it is 8 to 64 characters of
``[A-Za-z0-9._:-]``, else a new uuid4 hex. A client's id that is already recorded is replaced by
a fresh one and logged: the webhook finds out in its own transaction (unique ``request_id``),
other paths ask the database before answering (only when the client sent an id). The id is sent
back in the ``X-Request-ID`` header, put in the JSON bodies the application produces, and stamped
on log records.

Where a call is recorded:

* the webhook writes its own row (status 202) in the transaction that stores the alerts, and
  marks the request :attr:`RequestInfo.recorded`;
* every other request (including a webhook answered 4xx or 5xx) goes to the
  :class:`ApiCallRecorder` after its response: a background thread writes the records in
  batches (every 50 ms) from a bounded queue, adding no latency. A crash loses the records still
  queued, and a full queue (the database slower than the traffic, or down) drops them with a
  warning: they are a trail, not the intake's durable state. Two such requests racing with the
  same new client id are told apart when written: the later one is recorded under a fresh id.

Only the method, the path (never the query string), status, duration, client address, user agent,
body size and an error message are kept: never headers, tokens or cookies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.logging import request_id_var
from poundcake.remediation.api.background import BackgroundQueue
from poundcake.remediation.intake.service import (
    MAX_ERROR,
    CallRecord,
    insert_api_calls,
    is_taken_request_id,
    is_valid_request_id,
    new_request_id,
    request_id_taken,
)

logger = logging.getLogger(__name__)

SCOPE_KEY = "poundcake.request"
MAX_METHOD = 16
MAX_PATH = 2048
MAX_CLIENT_IP = 64
MAX_USER_AGENT = 512
INTERNAL_ERROR = b'{"request_id":"%s","error":"internal server error"}'


@dataclass(slots=True)
class RequestInfo:
    """What the application knows about the request being answered."""

    request_id: str
    received_at: datetime
    started: float
    client_chose_id: bool = False
    recorded: bool = False
    error: str | None = None

    def use_request_id(self, request_id: str) -> None:
        """Answer and log under another id (the client's one was already taken)."""
        self.request_id = request_id
        request_id_var.set(request_id)


def request_info(connection: HTTPConnection) -> RequestInfo:
    """The :class:`RequestInfo` the middleware attached to this request."""
    info: RequestInfo = connection.scope[SCOPE_KEY]
    return info


def call_record(
    scope: Scope,
    info: RequestInfo,
    *,
    status_code: int | None = None,
    duration_ms: float | None = None,
    body_size: int | None = None,
    error: str | None = None,
) -> CallRecord:
    """A :class:`CallRecord` of this request: no header but the user agent, no query string."""
    client = scope.get("client")
    user_agent = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:MAX_USER_AGENT]
            break
    return CallRecord(
        request_id=info.request_id,
        method=scope["method"][:MAX_METHOD],
        path=scope["path"][:MAX_PATH],
        received_at=info.received_at,
        client_ip=client[0][:MAX_CLIENT_IP] if client else None,
        user_agent=user_agent,
        body_size=body_size,
        status_code=status_code,
        duration_ms=duration_ms,
        error=error[:MAX_ERROR] if error else None,
    )


class ApiCallRecorder:
    """Writes API call records after their responses, in batches, from one daemon thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
    ) -> None:
        self._sessions = sessions
        self._queue: BackgroundQueue[CallRecord] = BackgroundQueue(
            "poundcake-api-calls", self._write, capacity=capacity, batch_size=batch_size
        )
        self.dropped = 0

    def record(self, call: CallRecord) -> None:
        """Queue a record; never blocks (a full queue drops it)."""
        if not self._queue.put(call):
            self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.warning("API call records dropped (%d so far)", self.dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued so far is written (or given up); True if done."""
        return self._queue.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.close(timeout)

    def is_taken(self, request_id: str) -> bool:
        """Tell whether a call is already recorded under ``request_id`` (False if unsure)."""
        try:
            return in_transaction(self._sessions, lambda s: request_id_taken(s, request_id))
        except sa.exc.SQLAlchemyError:
            return False

    def _write(self, batch: list[CallRecord]) -> None:
        try:
            in_transaction(self._sessions, lambda s: insert_api_calls(s, batch))
        except sa.exc.IntegrityError:
            for call in batch:
                self._write_one(call)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("Could not record %d API calls (%s)", len(batch), type(error).__name__)

    def _write_one(self, call: CallRecord) -> None:
        try:
            in_transaction(self._sessions, lambda s: insert_api_calls(s, [call]))
            return
        except sa.exc.IntegrityError as error:
            if not is_taken_request_id(error):
                logger.warning("Could not record API call %s (integrity error)", call.request_id)
                return
        except sa.exc.SQLAlchemyError as error:
            logger.warning(
                "Could not record API call %s (%s)", call.request_id, type(error).__name__
            )
            return
        fresh = replace(call, request_id=new_request_id())
        logger.info(
            "X-Request-ID %s was already recorded; this call is recorded as %s",
            call.request_id,
            fresh.request_id,
        )
        try:
            in_transaction(self._sessions, lambda s: insert_api_calls(s, [fresh]))
        except sa.exc.SQLAlchemyError as error:
            logger.warning(
                "Could not record API call %s (%s)", fresh.request_id, type(error).__name__
            )


class RequestContextMiddleware:
    """Request ids, the ``X-Request-ID`` header, and the API call record of each request.

    ``self_recorded`` paths record their own calls on success (the webhook), so a client's id is
    not checked beforehand; ``unrecorded`` paths (``/health``) are never recorded.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: ApiCallRecorder,
        self_recorded: frozenset[str] = frozenset(),
        unrecorded: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.self_recorded = self_recorded
        self.unrecorded = unrecorded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = await self._request_info(scope)
        scope[SCOPE_KEY] = info
        token = request_id_var.set(info.request_id)
        status = 500
        body_size = 0
        finished: float | None = None
        response_started = False

        async def counting_receive() -> Message:
            nonlocal body_size
            message = await receive()
            if message["type"] == "http.request":
                body_size += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, finished, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", info.request_id.encode("ascii")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        except Exception:
            logger.exception("Unhandled error on %s %s", scope["method"], scope["path"])
            info.error = "internal server error"
            if not response_started:
                await _internal_error(send_with_id, info.request_id)
        finally:
            request_id_var.reset(token)
        if info.recorded or scope["path"] in self.unrecorded:
            return
        ended = finished if finished is not None else time.perf_counter()
        if body_size == 0:
            body_size = _declared_length(scope)
        self.recorder.record(
            call_record(
                scope,
                info,
                status_code=status,
                duration_ms=(ended - info.started) * 1000,
                body_size=body_size,
                error=info.error,
            )
        )

    async def _request_info(self, scope: Scope) -> RequestInfo:
        info = RequestInfo(request_id="", received_at=utcnow(), started=time.perf_counter())
        offered = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        if offered is None or not is_valid_request_id(offered):
            info.request_id = new_request_id()
            return info
        info.request_id = offered
        info.client_chose_id = True
        path = scope["path"]
        if path in self.self_recorded or path in self.unrecorded:
            return info
        if await anyio.to_thread.run_sync(self.recorder.is_taken, offered):
            info.request_id = new_request_id()
            info.client_chose_id = False
            logger.info(
                "X-Request-ID %s is already recorded; answering as %s", offered, info.request_id
            )
        return info


def _declared_length(scope: Scope) -> int:
    """The body's ``Content-Length`` (for a body refused before it was read), else 0."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _internal_error(send: Send, request_id: str) -> None:
    body = INTERNAL_ERROR % request_id.encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
