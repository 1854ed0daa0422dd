"""Script arguments built from action parameters, the way StackStorm builds them.

Parameters whose schema has a ``position`` become positional arguments, in position order, and
are always present (a missing value becomes an empty argument, so positions stay stable).
Positions need not start at 0: positions 1 and 2 are the script's ``$1`` and ``$2``. Every
other action parameter becomes a named argument ``{kwarg_op}{name}={value}``; named arguments come
first, then the positional ones, as in StackStorm. A named argument whose value is ``None`` or an
empty string is left out; ``True`` gives the bare flag ``{kwarg_op}{name}`` and ``False`` leaves
it out.

Values are serialised as StackStorm serialises positional values: booleans as ``1``/``0``,
lists comma-joined, objects as compact JSON (``{"k":[1,2]}``, non-ASCII kept), ``None`` as an
empty string. (StackStorm passes named list and object values through ``str()``, which gives
Python's repr, and turns an integer 0 into an empty positional argument; we use the same
serialisation for both kinds, and 0 stays ``0``.)

The result is an argv list: local scripts get it as is, with no shell in between; remote scripts
get it shell-quoted by :func:`command_line`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_KWARG_OP = "--"


def serialize_value(value: Any) -> str:
    """Return ``value`` as one script argument, as StackStorm serialises it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""
    return str(value)


def positional_names(parameter_schema: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the names of the parameters that have a ``position``, in position order."""
    positioned = [
        (spec["position"], name)
        for name, spec in parameter_schema.items()
        if isinstance(spec, Mapping) and spec.get("position") is not None
    ]
    return [name for _, name in sorted(positioned)]


def named_arguments(
    parameters: Mapping[str, Any], *, exclude: Iterable[str] = (), kwarg_op: str
) -> list[str]:
    """Return ``{kwarg_op}{name}={value}`` arguments for ``parameters`` not in ``exclude``."""
    excluded = set(exclude)
    arguments = []
    for name, value in parameters.items():
        if name in excluded or value is None or value == "":
            continue
        if isinstance(value, bool):
            if value:
                arguments.append(f"{kwarg_op}{name}")
            continue
        arguments.append(f"{kwarg_op}{name}={serialize_value(value)}")
    return arguments


def script_arguments(
    parameters: Mapping[str, Any],
    parameter_schema: Mapping[str, Mapping[str, Any]],
    *,
    kwarg_op: str = DEFAULT_KWARG_OP,
) -> list[str]:
    """Return the argv tail for a script: named arguments, then positional ones."""
    positional = positional_names(parameter_schema)
    named = named_arguments(parameters, exclude=positional, kwarg_op=kwarg_op)
    return named + [serialize_value(parameters.get(name)) for name in positional]


def command_line(argv: Iterable[str]) -> str:
    """Join ``argv`` into one shell command line, every word quoted."""
    return shlex.join(argv)
