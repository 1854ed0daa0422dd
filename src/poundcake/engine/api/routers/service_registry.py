"""``/v1/service_registry``: the service registry, as ``st2 service-registry`` reads it.

``groups`` lists the groups (one per service: ``api``, ``actionrunner`` ...) and
``groups/<id>/members`` their live members with their capabilities, in StackStorm's shapes.
Processes join only with ``[coordination] service_registry = True``; without a ``url`` the
registry is this API process's own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from poundcake.engine.api.dependencies import Rbac, Runtime
from poundcake.engine.coordination.service import registry_groups, registry_members

router = APIRouter(tags=["service_registries"])


@router.get("/service_registry/groups")
def list_groups(rbac: Rbac, runtime: Runtime) -> dict[str, Any]:
    """Every group of the service registry."""
    rbac.require_admin()
    return {"groups": registry_groups(runtime.coordinator())}


@router.get("/service_registry/groups/{group_id}/members")
def list_members(group_id: str, rbac: Rbac, runtime: Runtime) -> dict[str, Any]:
    """The live members of one group; 404 when there is no such group."""
    rbac.require_admin()
    return {"members": registry_members(runtime.coordinator(), group_id)}
