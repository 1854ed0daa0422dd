"""Path normalisation, as StackStorm's router does it, before routing.

One trailing slash is stripped (never answered with a redirect), and the single-port layout's
prefixes map onto the direct ones: ``/api/v1/x`` -> ``/v1/x``, ``/auth/v1/tokens`` ->
``/tokens``, ``/stream/v1/stream`` -> ``/v1/stream``. As StackStorm's routers also serve every
versioned path without its version, ``/actions`` is ``/v1/actions`` and ``/stream`` is
``/v1/stream``: what the ``st2`` CLI calls with ``api_url = https://host/api`` and
``stream_url = https://host/stream`` behind nginx (``deploy/nginx/``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = (("/api/v1", "/v1"), ("/auth/v1", ""), ("/stream/v1", "/v1"))
# Paths served as they are; any other path is a versioned one given without its version.
UNVERSIONED_ROOTS = ("/v1", "/tokens", "/health")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def normalise(path: str) -> str:
    """Return the path routes are declared under."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for prefix, replacement in PREFIXES:
        if _under(path, prefix):
            path = replacement + path[len(prefix) :]
            break
    if _under(path, "/v1/tokens"):
        path = path[len("/v1") :]
    if path and path != "/" and not any(_under(path, root) for root in UNVERSIONED_ROOTS):
        path = "/v1" + path
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
