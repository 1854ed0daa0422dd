"""Path normalisation, as StackStorm's router does it, before routing.

One trailing slash is stripped (never answered with a redirect), and the single-port layout's
prefixes map onto the direct ones: ``/api/v1/x`` -> ``/v1/x``, ``/auth/v1/tokens`` ->
``/tokens``, ``/stream/v1/stream`` -> ``/v1/stream``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = (("/api/v1", "/v1"), ("/auth/v1", ""), ("/stream/v1", "/v1"))


def normalise(path: str) -> str:
    """Return the path routes are declared under."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for prefix, replacement in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            path = replacement + path[len(prefix) :]
            break
    if path == "/v1/tokens":
        path = "/tokens"
    if path.startswith("/v1/tokens/"):
        path = path[len("/v1") :]
    return path or "/"


class NormalisePaths:
    """ASGI middleware applying :func:`normalise`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = normalise(scope["path"])
            if path != scope["path"]:
                scope = dict(scope)
                scope["path"] = path
                scope["raw_path"] = path.encode("utf-8")
        await self.app(scope, receive, send)
