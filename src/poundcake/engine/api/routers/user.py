"""``GET /v1/user``: who the caller is (``st2 whoami``) and their RBAC roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from poundcake.engine.api.dependencies import CurrentCaller, Db, Runtime
from poundcake.engine.documents import isoformat
from poundcake.engine.rbac.service import user_rbac_document

router = APIRouter(tags=["user"])


@router.get("/user")
def whoami(caller: CurrentCaller, session: Db, runtime: Runtime) -> dict[str, Any]:
    """The caller, how they authenticated, and RBAC as it applies to them."""
    authentication: dict[str, Any] = {"method": caller.method, "location": caller.location}
    if caller.token_expiry is not None:
        authentication["token_expire"] = isoformat(caller.token_expiry)
    return {
        "username": caller.user,
        "authentication": authentication,
        "rbac": user_rbac_document(
            session=session, user=caller.user, enabled=runtime.config.rbac.enable
        ),
    }
