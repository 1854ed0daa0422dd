"""``/v1/actions``: list (``pack``, ``name``), get by ref or id, create, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.db.queries import counted_page, find_by_ref_or_id
from poundcake.engine.actions.models import ActionDB
from poundcake.engine.api.dependencies import Db, Page, Rbac, attribute_filter, paging
from poundcake.engine.api.documents import action_document
from poundcake.engine.rbac.resources import body_content_resource, content_resource_of
from poundcake.engine.rbac.uids import content_uid
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.exceptions import ConflictError, ValidationError
from poundcake.ids import new_id

router = APIRouter(tags=["actions"])
EDITABLE = (
    "description",
    "enabled",
    "entry_point",
    "parameters",
    "output_schema",
    "tags",
    "notify",
    "metadata_file",
)


def find_action(session: Db, ref_or_id: str) -> ActionDB:
    """An action by ref, else by id; StackStorm's 404 message otherwise."""
    return find_by_ref_or_id(session, ActionDB, ref_or_id)


@router.get("/actions")
def list_actions(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Actions sorted by pack and name, with ``X-Total-Count``."""
    rbac.require("action_list")
    conditions = []
    if pack:
        conditions.append(ActionDB.pack == pack)
    if name:
        conditions.append(ActionDB.name == name)
    order = (ActionDB.pack, ActionDB.name)
    total, rows = counted_page(session, ActionDB, conditions, order, page.offset, page.limit)
    page.headers(response, total)
    return [
        attribute_filter(action_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/actions/{ref_or_id}")
def get_action(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One action."""
    action = find_action(session, ref_or_id)
    rbac.require_on(content_resource_of("action", action), "action_view")
    return action_document(action)


def _check_runner(session: Db, runner_type: Any) -> str:
    name = runner_type.get("name") if isinstance(runner_type, dict) else runner_type
    if not isinstance(name, str) or not name:
        raise ValidationError("'runner_type' is a required property")
    if session.scalar(sa.select(RunnerTypeDB.id).where(RunnerTypeDB.name == name)) is None:
        raise ValidationError(f'RunnerType "{name}" is not found.')
    return name


def _editable(body: dict[str, Any]) -> dict[str, Any]:
    values = {key: body[key] for key in EDITABLE if key in body}
    if "parameters" in values and not isinstance(values["parameters"], dict):
        raise ValidationError("'parameters' must be an object")
    return values


@router.post("/actions", status_code=201)
def create_action(
    rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Create an action from its metadata document; a taken ref is a 409."""
    rbac.require_create(body_content_resource("action", body), "action_create")
    name, pack = body.get("name"), body.get("pack") or "default"
    if not isinstance(name, str) or not name:
        raise ValidationError("'name' is a required property")
    ref = f"{pack}.{name}"
    if session.scalar(sa.select(ActionDB.id).where(ActionDB.ref == ref)):
        raise ConflictError(f'Tried to save duplicate unique keys. Action "{ref}" exists already.')
    values: dict[str, Any] = {
        "enabled": True,
        "entry_point": "",
        "parameters": {},
        "output_schema": {},
        "tags": [],
        "notify": {},
    }
    values.update({key: value for key, value in _editable(body).items() if value is not None})
    action = ActionDB(
        id=new_id(),
        uid=content_uid("action", pack, name),
        ref=ref,
        name=name,
        pack=pack,
        runner_type=_check_runner(session, body.get("runner_type")),
        **values,
    )
    session.add(action)
    session.commit()
    return action_document(action)


@router.put("/actions/{ref_or_id}")
def update_action(
    ref_or_id: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Replace an action's editable fields (``st2 action update|enable|disable``)."""
    action = find_action(session, ref_or_id)
    rbac.require_on(content_resource_of("action", action), "action_modify")
    if "runner_type" in body:
        action.runner_type = _check_runner(session, body["runner_type"])
    for key, value in _editable(body).items():
        setattr(action, key, value)
    session.commit()
    return action_document(action)


@router.delete("/actions/{ref_or_id}", status_code=204)
def delete_action(ref_or_id: str, rbac: Rbac, session: Db) -> Response:
    """Delete an action (its files stay on disk)."""
    action = find_action(session, ref_or_id)
    rbac.require_on(content_resource_of("action", action), "action_delete")
    session.delete(action)
    session.commit()
    return Response(status_code=204)
