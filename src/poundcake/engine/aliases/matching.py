"""Finding the one enabled alias format a command matches, as StackStorm's ``match`` does.

Formats without ``match_multiple`` are tried first; only when none of them matches are the
``match_multiple`` ones tried. More than one match, or none, is refused (HTTP 400) with
StackStorm's message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.aliases.formats import (
    AliasFormatError,
    FormatChoice,
    extract_parameters,
    format_choices,
)
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)


class AliasAmbiguityError(ValidationError):
    """A command matched no alias format, or more than one."""


@dataclass(frozen=True)
class AliasMatch:
    """The alias and the format of it that a command matched."""

    alias: ActionAliasDB
    choice: FormatChoice


def _matches(command: str, aliases: Iterable[ActionAliasDB], *, multiple: bool) -> list[AliasMatch]:
    found = []
    for alias in aliases:
        for entry in alias.formats or []:
            for choice in format_choices(entry):
                if choice.match_multiple != multiple or not choice.representation:
                    continue
                try:
                    extract_parameters(choice.representation, command)
                except AliasFormatError:
                    continue
                found.append(AliasMatch(alias, choice))
    return found


def match_command(*, session: Session, command: str) -> AliasMatch:
    """Return the one enabled alias format ``command`` matches; AliasAmbiguityError otherwise."""
    query = sa.select(ActionAliasDB).where(ActionAliasDB.enabled.is_(True))
    aliases = list(session.scalars(query.order_by(ActionAliasDB.pack, ActionAliasDB.name)))
    found = _matches(command, aliases, multiple=False)
    if len(found) > 1:
        raise AliasAmbiguityError(f"Command '{command}' matched more than 1 pattern")
    if not found:
        found = _matches(command, aliases, multiple=True)
        if len(found) > 1:
            raise AliasAmbiguityError(f"Command '{command}' matched more than 1 (multi) pattern")
        if not found:
            raise AliasAmbiguityError(f"Command '{command}' matched no patterns")
    logger.debug("Command %r matched %s", command, found[0].alias.ref)
    return found[0]


def help_strings(
    *, session: Session, search: str, pack: str, limit: int, offset: int
) -> dict[str, object]:
    """What ``GET /v1/actionalias/help`` answers: the display strings of enabled aliases that
    contain ``search`` (a case-insensitive expression), ``offset`` and ``limit`` (0: all) of
    them, and how many there are."""
    query = sa.select(ActionAliasDB).where(ActionAliasDB.enabled.is_(True))
    if pack:
        query = query.where(ActionAliasDB.pack == pack)
    try:
        wanted = re.compile(search or "", re.IGNORECASE)
    except re.error as error:
        raise ValidationError(f"filter: {error}") from None
    found = [
        {"pack": alias.pack, "display": choice.display, "description": alias.description}
        for alias in session.scalars(query.order_by(ActionAliasDB.pack, ActionAliasDB.name))
        for entry in alias.formats or []
        for choice in format_choices(entry)[:1]
        if choice.display and wanted.search(choice.display)
    ]
    end = offset + limit if limit > 0 else None
    return {"available": len(found), "helpstrings": found[offset:end]}
