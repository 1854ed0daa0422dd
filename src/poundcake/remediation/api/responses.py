"""JSON responses of poundcake-api: every body carries the ``request_id``; errors add ``error``.

Bodies are encoded with orjson when it is installed, else with the standard library.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection
from starlette.responses import Response

from poundcake.remediation.api.calls import request_info


def _standard_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _dumps() -> Callable[[Any], bytes]:
    if importlib.util.find_spec("orjson") is not None:
        dumps: Callable[[Any], bytes] = importlib.import_module("orjson").dumps
        return dumps
    return _standard_dumps


dumps_json = _dumps()


def json_response(
    status: int,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    """A JSON response with ``body`` as it is."""
    return Response(
        dumps_json(body),
        status_code=status,
        headers=headers,
        media_type="application/json",
        background=background,
    )


def error_response(
    connection: HTTPConnection,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``{"request_id", "error"}``; the message is also what the API call record keeps."""
    info = request_info(connection)
    info.error = message
    return json_response(status, {"request_id": info.request_id, "error": message}, headers=headers)
