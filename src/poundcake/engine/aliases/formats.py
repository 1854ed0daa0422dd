"""Matching a command against an alias format and extracting the action's parameters.

A format is a regular expression in which ``{{ name }}`` is a required parameter and
``{{ name = default }}`` an optional one, read the way StackStorm's alias parser reads them:

- ``key=value`` pairs at the end of the command are taken off first and set those parameters
  (values may be quoted, or a ``{...}`` object);
- each parameter matches a quoted string, a ``{...}`` object, or the shortest text that lets
  the rest of the format match;
- the format is anchored at both ends unless it has an anchor of its own (``^``, ``\\A``,
  ``$``, ``\\Z``) where StackStorm finds one;
- an optional parameter left empty takes its default; a format with parameters refuses an
  empty command that leaves them all empty.

Pure functions: no database, no I/O.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from poundcake.exceptions import ValidationError

_KEY = r"\s*(\S+?)\s*"
_QUOTED_OR_OBJECT = r"\"\"|''|\"(.+?)\"|'(.+?)'|({.+?})"
_PAIR = rf"(?:^|\s+){_KEY}=({_QUOTED_OR_OBJECT}|(\S+))"
_PAIRS = re.compile(_PAIR, re.DOTALL)
_TRAILING_PAIRS = re.compile(rf".*?(({_PAIR}\s*)*)$", re.DOTALL)
_OPTIONAL = "{{" + _KEY + rf"\s*=\s*(?:{_QUOTED_OR_OBJECT}|(.+?))\s*" + "}}"
_REQUIRED = "{{" + _KEY + "}}"
# What replaces a parameter: the whitespace before it, an optional quote, the named value.
_CAPTURE = r"""\1["']?(?P<\2>(?:(?<=').+?(?=')|(?<=").+?(?=")|{.+?}|.+?))["']?"""
# The regular expression parser, to find anchors as StackStorm does (``re._parser`` is what
# StackStorm itself uses on Python 3.11).
_sre: Any = importlib.import_module("re._parser")
_START_ANCHORS = frozenset({(_sre.AT, _sre.AT_BEGINNING), (_sre.AT, _sre.AT_BEGINNING_STRING)})
_END_ANCHORS = frozenset({(_sre.AT, _sre.AT_END), (_sre.AT, _sre.AT_END_STRING)})


class AliasFormatError(ValidationError):
    """A command does not match a format, or a format is not a valid expression."""


@dataclass(frozen=True)
class FormatChoice:
    """One way to write a command: what help shows, and the expression it is matched with."""

    display: str | None
    representation: str
    match_multiple: bool = False


def format_choices(entry: Any) -> list[FormatChoice]:
    """The representations of one ``formats`` entry (a string, or display/representation)."""
    if isinstance(entry, str):
        return [FormatChoice(entry, entry)]
    if not isinstance(entry, Mapping):
        raise AliasFormatError(f"{entry!r} is neither a string nor a mapping")
    display = entry.get("display")
    representations = entry.get("representation") or []
    if isinstance(representations, str):
        representations = [representations]
    multiple = bool(entry.get("match_multiple", False))
    if display and not representations:
        return [FormatChoice(display, "", multiple)]
    return [FormatChoice(display, str(text), multiple) for text in representations]


def _has_anchor(tokens: Any, wanted: frozenset[Any]) -> bool:
    """Tell whether parsed ``tokens`` hold one of the ``wanted`` anchors where StackStorm looks:
    at the top, inside groups, and in the second alternative of a branch (not in lookarounds
    or repeats)."""
    for kind, value in tokens:
        if kind == _sre.SUBPATTERN:
            if _has_anchor(value[3], wanted):
                return True
        elif kind == _sre.BRANCH:
            alternatives = value[1]
            if len(alternatives) > 1 and _has_anchor(alternatives[1], wanted):
                return True
        elif kind == _sre.AT and (kind, value) in wanted:
            return True
    return False


@dataclass(frozen=True)
class CompiledFormat:
    """A format turned into one expression, with the defaults of its optional parameters."""

    format: str
    expression: re.Pattern[str]
    defaults: dict[str, str]


@lru_cache(maxsize=1024)
def compile_format(text: str) -> CompiledFormat:
    """Turn a format into its expression; AliasFormatError if it is not a valid one."""
    defaults = {
        match.group(1): "".join(group or "" for group in match.groups()[1:])
        for match in re.finditer(_OPTIONAL, text, re.DOTALL)
    }
    pattern = re.sub(r"(\s*)" + _OPTIONAL, "(?:" + _CAPTURE + ")?", text)
    pattern = re.sub(r"(\s*)" + _REQUIRED, _CAPTURE, pattern)
    try:
        tokens = _sre.parse(pattern, flags=re.DOTALL)
        if not _has_anchor(tokens, _START_ANCHORS):
            pattern = r"^\s*" + pattern
        if not _has_anchor(tokens, _END_ANCHORS):
            pattern += r"\s*$"
        expression = re.compile(pattern, re.DOTALL)
    except re.error as error:
        raise AliasFormatError(f'format "{text}" is not a valid expression ({error})') from None
    return CompiledFormat(text, expression, defaults)


def _split_trailing_pairs(command: str) -> tuple[str, dict[str, str]]:
    """Take the ``key=value`` pairs off the end of ``command``."""
    ending = _TRAILING_PAIRS.match(command)
    if ending is None or not ending.group(1):
        return command, {}
    pairs = {pair[0]: "".join(pair[2:]) for pair in _PAIRS.findall(ending.group(1))}
    # StackStorm removes every occurrence of the trailing text, not only the trailing one.
    return command.replace(ending.group(1), ""), pairs


def extract_parameters(
    text: str, command: str, *, match_multiple: bool = False
) -> list[dict[str, Any]]:
    """The parameters ``command`` gives through format ``text``: one set, or one per match
    with ``match_multiple``. AliasFormatError when it does not match."""
    compiled = compile_format(text)
    stream, pairs = _split_trailing_pairs(command)
    padded = f" {stream} "
    if match_multiple:
        matches = list(compiled.expression.finditer(padded))
    else:
        found = compiled.expression.search(padded)
        matches = [found] if found else []
    if not matches:
        raise AliasFormatError(f'Command "{command}" doesn\'t match format string "{text}"')
    results = []
    for match in matches:
        values: dict[str, Any] = dict(match.groupdict())
        for name, default in compiled.defaults.items():
            values[name] = values.get(name) or default
        values.update(pairs)
        if text and not (stream.strip() or any(values.values())):
            raise AliasFormatError("No value supplied and no default value found.")
        results.append(values)
    return results
