"""Payload paths in rule criteria keys: parse once, look values up fast.

The dialect is jsonpath-rw 1.4's child, field, index and slice forms, as StackStorm pins it:
``trigger.a.b[0].c``, ``trigger.items[*].name``, ``trigger.labels['app.kubernetes.io/name']``.
The first value a path finds is the one tested; ``None`` when it finds none. The expression
function ``jsonpath_query`` uses the same dialect from the root ``$`` and takes every value found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

TRIGGER_PREFIX: Final = "trigger"


@dataclass(frozen=True, slots=True)
class _Fields:
    """Several fields, or every field (``*``), of a mapping."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Slice:
    """``[*]`` or ``[start:end]`` of a list; a mapping, number or string counts as a 1-list."""

    start: int | None
    end: int | None


_MISSING: Final = object()

# A field name (str), a list index (int), or a step that can find several values.
Step = str | int | _Fields | _Slice

_TOKEN = re.compile(
    r"""(?P<space>[ \t\n]+)
      | (?P<name>[A-Za-z_@][A-Za-z0-9_@\-]*)
      | (?P<number>-?\d+)
      | '(?P<single>(?:[^'\\]|\\.)*)'
      | "(?P<double>(?:[^"\\]|\\.)*)"
      | (?P<punct>\.\.|[.\[\]*,:])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _tokens(path: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(path):
        token = _TOKEN.match(path, position)
        if token is None:
            raise ValueError(f"unexpected {path[position]!r} at {position}")
        position = token.end()
        kind = token.lastgroup or ""
        if kind == "name":
            if token.group() == "where":
                raise ValueError("'where' filters are not supported")
            tokens.append(("name", token.group()))
        elif kind in ("single", "double"):
            tokens.append(("name", _ESCAPE.sub(r"\1", token.group(kind))))
        elif kind == "number":
            tokens.append(("number", int(token.group())))
        elif kind == "punct":
            if token.group() == "..":
                raise ValueError("'..' (descendants) is not supported")
            tokens.append((token.group(), None))
    return tokens


class _PathParser:
    """jsonpath-rw's child, field, index and slice forms: ``a.b[0].c``, ``a[*]``, ``a['x.y']``."""

    def __init__(self, path: str) -> None:
        self.tokens = _tokens(path)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            found = self.peek() or "the end"
            raise ValueError(f"expected {kind} at token {self.position + 1}, found {found}")
        value = self.tokens[self.position][1]
        self.position += 1
        return value

    def names(self) -> tuple[str, ...]:
        names = [self.take("name")]
        while self.peek() == ",":
            self.position += 1
            names.append(self.take("name"))
        return tuple(names)

    def bracket(self) -> Step:
        self.take("[")
        step: Step
        if self.peek() == "*":
            self.position += 1
            step = _Slice(None, None)
        elif self.peek() == "name":
            step = _field_step(self.names())
        else:
            start = self.take("number") if self.peek() == "number" else None
            if self.peek() == ":":
                self.position += 1
                end = self.take("number") if self.peek() == "number" else None
                step = _Slice(start, end)
            elif start is None:
                raise ValueError(f"expected an index, * or a field at token {self.position + 1}")
            else:
                step = start
        self.take("]")
        return step

    def steps(self, prefix: str) -> tuple[Step, ...]:
        if self.names() != (prefix,):
            raise ValueError(f"must start with {prefix!r}")
        return self.rest()

    def rest(self) -> tuple[Step, ...]:
        steps: list[Step] = []
        while self.peek() is not None:
            if self.peek() == "[":
                steps.append(self.bracket())
                continue
            self.take(".")
            if self.peek() == "*":
                self.position += 1
                steps.append(_Fields(("*",)))
            elif self.peek() != "[":
                steps.append(_field_step(self.names()))
        return tuple(steps)


def _field_step(names: tuple[str, ...]) -> Step:
    return names[0] if len(names) == 1 and names[0] != "*" else _Fields(names)


def parse_key(key: str, prefix: str = TRIGGER_PREFIX) -> tuple[Step, ...]:
    """Parse a criteria key into lookup steps below ``prefix``; ValueError if it is not a path."""
    return _PathParser(key.split("#", 1)[0]).steps(prefix)


def parse_query(path: str) -> tuple[Step, ...]:
    """Parse a ``jsonpath_query`` path: ``$.a.b[0]``, ``$.items[*].name``; ``$`` may be left out."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    elif text and not text.startswith("["):
        text = "." + text
    return _PathParser(text).rest()


def _field(value: Any, name: str) -> Any:
    """``value[name]``, or _MISSING if ``value`` has no such field (as jsonpath-rw decides)."""
    try:
        return value[name]
    except (TypeError, KeyError, AttributeError):
        return _MISSING


def _lookup_fields(steps: tuple[Any, ...], value: Any) -> Any:
    """Follow field names; ``None`` if one is missing or its parent is not a mapping."""
    for step in steps:
        # A payload is dicts and lists: get() spares the cost of a KeyError for a missing key.
        value = value.get(step, _MISSING) if type(value) is dict else _field(value, step)
        if value is _MISSING:
            return None
    return value


def _lookup_one(steps: tuple[Any, ...], value: Any) -> Any:
    """Follow field names and list indexes; ``None`` if the path finds nothing."""
    for step in steps:
        if type(step) is int:
            # jsonpath-rw 1.4 takes len() first: an index into None or a number is an error.
            if len(value) <= step:
                return None
            value = value[step]
        else:
            value = value.get(step, _MISSING) if type(value) is dict else _field(value, step)
            if value is _MISSING:
                return None
    return value


def _find(step: Step, value: Any) -> list[Any]:
    if isinstance(step, _Slice):
        if isinstance(value, dict | int | str):
            value = [value]
        return [value[index] for index in range(len(value))[step.start : step.end]]
    if isinstance(step, int):
        return [value[step]] if len(value) > step else []
    names = (step,) if isinstance(step, str) else step.names
    if "*" in names:
        try:
            names = tuple(value.keys())
        except AttributeError:
            return []
    found = []
    for name in names:
        try:
            found.append(value[name])
        except (TypeError, KeyError, AttributeError):
            continue
    return found


def find_all(steps: tuple[Step, ...], value: Any) -> list[Any]:
    """Every value the path reaches, in jsonpath-rw's order."""
    values = [value]
    for step in steps:
        values = [found for value in values for found in _find(step, value)]
    return values


def _lookup_first(steps: tuple[Step, ...], value: Any) -> Any:
    """Find every value the path reaches (as jsonpath-rw does) and return the first."""
    values = find_all(steps, value)
    return values[0] if values else None


def lookup_for(steps: tuple[Step, ...]) -> Callable[[tuple[Any, ...], Any], Any]:
    if all(type(step) is str for step in steps):
        return _lookup_fields
    if all(type(step) in (str, int) for step in steps):
        return _lookup_one
    return _lookup_first
