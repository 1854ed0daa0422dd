"""``GET /v1/user``: who the caller is (``st2 whoami``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from poundcake.engine.api.dependencies import CurrentCaller
from poundcake.engine.documents import isoformat

router = APIRouter(tags=["user"])


@router.get("/user")
def whoami(caller: CurrentCaller) -> dict[str, Any]:
    """The caller, how they authenticated, and their (empty) RBAC roles."""
    authentication: dict[str, Any] = {"method": caller.method, "location": caller.location}
    if caller.token_expiry is not None:
        authentication["token_expire"] = isoformat(caller.token_expiry)
    return {
        "username": caller.user,
        "authentication": authentication,
        "rbac": {"enabled": False, "roles": [], "is_admin": True},
    }
