"""Running an action through an alias: ``/v1/aliasexecution``.

The command's parameters are extracted with the alias format it names, the alias's
``immutable_parameters`` are rendered (they may read ``st2kv`` and the alias context) and added,
and one execution is requested per match (several only with ``match_multiple``). The extracted
values come from a chat line: they are taken as text and never rendered as templates. The
execution's context carries ``action_alias_ref``, ``api_user``, ``user`` and
``source_channel``, as StackStorm's does. The alias's ``ack`` is rendered into the answer's
``message`` and ``extra``; delivering messages to chat is left to a chat adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from poundcake.engine.aliases.formats import AliasFormatError, extract_parameters, format_choices
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.engine.executions.service import (
    RequestedExecution,
    load_action,
    render_context,
    request_execution,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.rendering import RenderError, render_string, render_value
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AliasCommand:
    """What asks for an alias execution: which alias and format, the text, and who."""

    name: str
    format: str
    command: str
    user: str
    api_user: str | None = None
    source_channel: str | None = None
    match_multiple: bool = False


def _format_strings(alias: ActionAliasDB) -> list[str]:
    return [
        choice.representation
        for entry in alias.formats or []
        for choice in format_choices(entry)
        if choice.representation
    ]


def extracted_parameters(alias: ActionAliasDB, request: AliasCommand) -> list[dict[str, Any]]:
    """The parameter sets ``request.command`` gives through ``request.format``."""
    if request.format not in _format_strings(alias):
        raise ValidationError(
            f'Format string "{request.format}" is not available on the alias "{alias.name}"'
        )
    try:
        return extract_parameters(
            request.format, request.command, match_multiple=request.match_multiple
        )
    except AliasFormatError as error:
        raise ValidationError(str(error)) from None


def _with_immutable(
    session: Session,
    alias: ActionAliasDB,
    sets: list[dict[str, Any]],
    context: Mapping[str, Any],
    cipher: DatastoreCipher | None,
) -> list[dict[str, Any]]:
    immutable = alias.immutable_parameters or {}
    if not immutable:
        return sets
    for parameters in sets:
        overridden = sorted(name for name in immutable if name in parameters)
        if overridden:
            raise ValidationError(
                f"Immutable arguments cannot be overriden: {','.join(overridden)}"
            )
    render = render_context(session, config={}, action_context=context, cipher=cipher)
    rendered = render_value(immutable, {**render, **context})
    return [{**parameters, **rendered} for parameters in sets]


def execute_alias(
    *, session: Session, alias: ActionAliasDB, request: AliasCommand, cipher: DatastoreCipher
) -> list[RequestedExecution]:
    """Request the executions ``request`` asks for through ``alias``; the caller commits."""
    if not alias.enabled:
        raise ValidationError(f'Action alias with name "{alias.name}" is disabled.')
    sets = extracted_parameters(alias, request)
    context = {
        "action_alias_ref": alias.ref,
        "api_user": request.api_user,
        "user": request.user,
        "source_channel": request.source_channel,
    }
    sets = _with_immutable(session, alias, sets, context, cipher)
    loaded = load_action(session, alias.action_ref)
    requested = [
        request_execution(
            session,
            action_ref=alias.action_ref,
            parameters=parameters,
            user=request.user,
            context=context,
            cipher=cipher,
            rendered=True,
            loaded=loaded,
        )
        for parameters in sets
    ]
    logger.info(
        "Action alias %s requested %d execution(s) of %s for %s",
        alias.ref,
        len(requested),
        alias.action_ref,
        request.user,
    )
    return requested


def acknowledgement(alias: ActionAliasDB, answer: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` and ``extra`` rendered from the alias's ``ack`` with ``execution`` and
    ``actionalias``; a template that fails gives StackStorm's explanation instead."""
    ack = alias.ack or {}
    rendered: dict[str, Any] = {}
    if "format" in ack:
        try:
            rendered["message"] = render_string(str(ack["format"]), answer)
        except RenderError as error:
            rendered["message"] = f'Cannot render "format" in field "ack" for alias. {error}'
    if "extra" in ack:
        try:
            rendered["extra"] = render_value(ack["extra"], answer)
        except RenderError as error:
            rendered["extra"] = f'Cannot render "extra" in field "ack" for alias. {error}'
    return rendered
