"""``/v1/runnertypes``: list (``?name=``), get by name or id, enable or disable."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import Db, Rbac
from poundcake.engine.api.documents import runner_document
from poundcake.engine.rbac.resources import runner_type_resource
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.exceptions import NotFoundError

router = APIRouter(tags=["runnertypes"])


def _find(session: Db, name_or_id: str) -> RunnerTypeDB:
    runner = session.scalar(sa.select(RunnerTypeDB).where(RunnerTypeDB.name == name_or_id))
    runner = runner or session.get(RunnerTypeDB, name_or_id)
    if runner is None:
        raise NotFoundError(f'RunnerType "{name_or_id}" is not found.')
    return runner


@router.get("/runnertypes")
def list_runner_types(
    rbac: Rbac,
    session: Db,
    response: Response,
    name: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Every runner type, or the one called ``name``."""
    rbac.require("runner_type_list")
    query = sa.select(RunnerTypeDB).order_by(RunnerTypeDB.name)
    if name:
        query = query.where(RunnerTypeDB.name == name)
    rows = [runner_document(row) for row in session.scalars(query)]
    response.headers["X-Total-Count"] = str(len(rows))
    return rows


@router.get("/runnertypes/{name_or_id}")
def get_runner_type(name_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One runner type."""
    runner = _find(session, name_or_id)
    rbac.require_on(runner_type_resource(runner.name), "runner_type_view")
    return runner_document(runner)


@router.put("/runnertypes/{name_or_id}")
def update_runner_type(
    name_or_id: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Enable or disable a runner type (the only change StackStorm allows)."""
    runner = _find(session, name_or_id)
    rbac.require_on(runner_type_resource(runner.name), "runner_type_modify")
    if "enabled" in body:
        runner.enabled = bool(body["enabled"])
    session.commit()
    return runner_document(runner)
