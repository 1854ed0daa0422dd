"""``/v1/aliasexecution``: run an action through an alias, by name and format (``POST``) or by
matching the command against every enabled alias (``POST .../match_and_execute``, what
``st2 action-alias execute`` calls). Executions are committed first, then handed to the
scheduler, as ``POST /v1/executions`` does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from poundcake.engine.aliases.documents import alias_document
from poundcake.engine.aliases.execution import AliasCommand, acknowledgement, execute_alias
from poundcake.engine.aliases.matching import match_command
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.engine.aliases.service import find_alias_by_name
from poundcake.engine.api.dependencies import Db, Rbac, Runtime, truthy
from poundcake.engine.executions.documents import Projection, execution_document
from poundcake.engine.executions.queries import fetch_execution
from poundcake.engine.executions.service import RequestedExecution
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import hand_over
from poundcake.engine.rbac.enforcement import Authorizer
from poundcake.engine.rbac.resources import action_resource
from poundcake.engine.runtime import EngineRuntime
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["aliasexecution"])
JsonBody = Annotated[dict[str, Any], Body()]
_EXECUTE_FIELDS = frozenset(
    {
        "name",
        "format",
        "command",
        "user",
        "source_channel",
        "source_context",
        "notification_channel",
        "notification_route",
    }
)
# What StackStorm turns into the execution's notify for chat adapters (hubot); not here.
_CHAT_DELIVERY = frozenset({"source_context", "notification_channel", "notification_route"})
_MATCH_AND_EXECUTE_FIELDS = frozenset(
    {"command", "user", "source_channel", "notification_channel", "notification_route"}
)


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationError(f"'{name}' is a required property")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{value!r} is not of type 'string'")
    return value


def _only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(name for name in body if name not in allowed)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ValidationError(f"Additional properties are not allowed ({names} were unexpected)")
    for name in sorted(_CHAT_DELIVERY & body.keys()):
        if body[name] not in (None, "", {}):
            raise ValidationError(
                f"{name}: this engine does not deliver alias results to chat, so it cannot "
                "notify a channel or route; leave it out"
            )


def _request(
    body: dict[str, Any],
    user: str,
    name: str,
    text: str,
    command: str,
    *,
    match_multiple: bool = False,
) -> AliasCommand:
    """What runs: the caller is the execution's user, ``user`` in the body its ``api_user``."""
    return AliasCommand(
        name=name,
        format=text,
        command=command,
        user=user,
        api_user=_text(body, "user", required=False),
        source_channel=_text(body, "source_channel", required=True),
        match_multiple=match_multiple,
    )


def _run(
    session: Db,
    runtime: EngineRuntime,
    rbac: Authorizer,
    alias: ActionAliasDB,
    request: AliasCommand,
    show_secrets: str | None,
) -> list[dict[str, Any]]:
    rbac.require_on(action_resource(alias.action_ref), "action_execute")
    cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)
    requested = execute_alias(session=session, alias=alias, request=request, cipher=cipher)
    session.commit()
    for one in requested:
        hand_over(runtime.publisher, one.liveaction_id, one.execution_id)
    mask = runtime.config.api.mask_secrets and not (truthy(show_secrets) and rbac.is_admin)
    return [_answer(session, alias, one, mask) for one in requested]


def _answer(
    session: Db, alias: ActionAliasDB, requested: RequestedExecution, mask: bool
) -> dict[str, Any]:
    projection = Projection.everything()
    row = fetch_execution(session, requested.execution_id, projection.columns())
    execution = execution_document(row._mapping, projection, mask=mask) if row else {}
    answer = {"execution": execution, "actionalias": alias_document(alias)}
    return {**answer, **acknowledgement(alias, answer)}


@router.post("/aliasexecution", status_code=201)
def execute(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: JsonBody,
    show_secrets: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Run the alias ``name`` with the ``format`` the ``command`` is written in."""
    _only(body, _EXECUTE_FIELDS)
    name = _text(body, "name", required=True) or ""
    text = _text(body, "format", required=True) or ""
    request = _request(body, rbac.user, name, text, _text(body, "command", required=True) or "")
    alias = find_alias_by_name(session=session, name=name)
    results = _run(session, runtime, rbac, alias, request, show_secrets)
    return JSONResponse(results[0], status_code=201)


@router.post("/aliasexecution/match_and_execute", status_code=201)
def match_and_execute(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: JsonBody,
    show_secrets: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Find the alias ``command`` matches and run it: ``{"results": [...]}``."""
    _only(body, _MATCH_AND_EXECUTE_FIELDS)
    command = _text(body, "command", required=True) or ""
    found = match_command(session=session, command=command)
    request = _request(
        body,
        rbac.user,
        found.alias.name,
        found.choice.representation,
        command,
        match_multiple=found.choice.match_multiple,
    )
    results = _run(session, runtime, rbac, found.alias, request, show_secrets)
    return JSONResponse({"results": results}, status_code=201)
