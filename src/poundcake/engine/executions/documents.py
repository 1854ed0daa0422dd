"""The Execution API document (StackStorm's ``ActionExecutionAPI``) from selected columns.

``include_attributes`` and ``exclude_attributes`` decide which columns are read at all: a list
page the ``st2`` CLI asks for (``id,action.ref,context.user,status,...``) reads six narrow
columns and never the snapshots or the result. Dotted names project into a field as MongoDB
does for StackStorm (``action.ref`` gives ``{"action": {"ref": ...}}``); ``id`` is always
kept. As in StackStorm, fields with a falsy value are left out, and secret parameters (and
secret output keys) are shown as ``********`` unless secrets are asked for; then secret
parameters, stored sealed (:mod:`poundcake.engine.executions.sealed`), are opened.

Lists and single documents read JSON columns as their stored UTF-8 bytes
(``columns(raw=True)``) and pass them through unchanged (:class:`Raw`) unless something in them
must be masked or projected, so a page of full documents, or one large result, is never decoded
and re-encoded (a decoded 8 MB result with one emoji in it takes 28 MB as a ``str``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from poundcake.engine.actions.parameters import SECRET_MASK, merge_schemas, secret_names
from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.sealed import reveal_parameters
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.exceptions import ValidationError

E = ExecutionDB
Path = tuple[str, ...]
Values = Mapping[Any, Any]
_FALSY_JSON = frozenset({"", "{}", "[]", "null", '""', "0", "0.0", "false"})


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text as stored (or its UTF-8 bytes), passed through without decoding."""

    text: str | bytes

    def __bool__(self) -> bool:
        text = self.text
        if len(text) > 8:
            return True
        short = text.decode() if isinstance(text, bytes) else text
        return "".join(short.split()) not in _FALSY_JSON

    def value(self) -> Any:
        """The decoded value."""
        return json.loads(self.text)

    def encoded(self) -> bytes:
        """The JSON text's UTF-8."""
        return self.text if isinstance(self.text, bytes) else self.text.encode()


def decoded(value: Any) -> Any:
    """``value`` with :class:`Raw` text decoded."""
    return value.value() if isinstance(value, Raw) else value


class RawJson(sa.types.TypeDecorator[Raw]):
    """Reads a JSON column (cast to binary) as :class:`Raw` bytes instead of decoding it."""

    impl = sa.LargeBinary
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Raw | None:
        return None if value is None else Raw(bytes(value))


_JSON_COLUMNS = frozenset(
    column.key for column in E.__table__.columns if isinstance(column.type, sa.JSON)
)


def _select(key: str, raw: bool) -> ColumnElement[Any]:
    column = E.__table__.columns[key]
    if raw and key in _JSON_COLUMNS:
        return sa.type_coerce(sa.cast(column, sa.LargeBinary), RawJson()).label(key)
    return column.label(key)


SNAPSHOTS = ("action_snapshot", "runner")
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "action": ("action_snapshot",),
    "runner": ("runner",),
    "liveaction": ("liveaction", *SNAPSHOTS),
    "status": ("status",),
    "start_timestamp": ("start_timestamp",),
    "end_timestamp": ("end_timestamp",),
    "elapsed_seconds": ("start_timestamp", "end_timestamp"),
    "parameters": ("parameters", *SNAPSHOTS),
    "context": ("context",),
    "result": ("result", *SNAPSHOTS),
    "result_size": ("result_size",),
    "parent": ("parent",),
    "children": ("children",),
    "log": ("log",),
    "delay": ("delay",),
    "web_url": ("web_url",),
    "rule": ("rule",),
    "trigger": ("trigger",),
    "trigger_type": ("trigger_type",),
    "trigger_instance": ("trigger_instance",),
}
# Parts of a field kept in narrow columns, so projecting them skips the large JSON ones.
NARROW: dict[str, dict[str, str]] = {
    "action": {"ref": "action", "runner_type": "runner_type"},
    "context": {"user": "context_user"},
}


@dataclass(frozen=True)
class Secrets:
    """What to mask in one execution, from its action and runner snapshots."""

    parameters: frozenset[str] = frozenset()
    output_key: str | None = None
    output: frozenset[str] = frozenset()


def _secrets_in(action: Any, runner: Any) -> Secrets:
    action = action if isinstance(action, dict) else {}
    runner = runner if isinstance(runner, dict) else {}
    schema = merge_schemas(runner.get("runner_parameters") or {}, action.get("parameters") or {})
    output_schema = action.get("output_schema") or {}
    properties = output_schema.get("properties")
    if not isinstance(properties, dict):
        properties = output_schema
    output = frozenset(
        key for key, spec in properties.items() if isinstance(spec, dict) and spec.get("secret")
    )
    return Secrets(frozenset(secret_names(schema)), runner.get("output_key") or None, output)


@lru_cache(maxsize=512)
def _secrets_in_text(action: bytes | None, runner: bytes | None) -> Secrets:
    return _secrets_in(json.loads(action) if action else {}, json.loads(runner) if runner else {})


def secrets(values: Values) -> Secrets:
    """The secrets of the execution whose snapshots are in ``values`` (as read, or raw)."""
    action, runner = values.get("action_snapshot"), values.get("runner")
    if isinstance(action, Raw | None) and isinstance(runner, Raw | None):
        return _secrets_in_text(
            action.encoded() if action is not None else None,
            runner.encoded() if runner is not None else None,
        )
    return _secrets_in(decoded(action), decoded(runner))


def mask_parameters(parameters: Any, names: frozenset[str]) -> Any:
    """``parameters`` with the named ones shown as ``********``."""
    if not isinstance(parameters, dict):
        return parameters
    return {key: SECRET_MASK if key in names else value for key, value in parameters.items()}


def mask_output(result: Any, found: Secrets) -> Any:
    """The result with secret output keys (the action's ``output_schema``) masked."""
    if not found.output_key or not isinstance(result, dict):
        return result
    output = result.get(found.output_key)
    if not isinstance(output, dict):
        return result
    hidden = {key: SECRET_MASK for key in found.output if key in output}
    return {**result, found.output_key: {**output, **hidden}} if hidden else result


def _parameters(values: Values, mask: bool) -> Any:
    raw = values["parameters"]
    found = secrets(values) if mask and raw else Secrets()
    if not found.parameters:
        return raw
    return mask_parameters(decoded(raw), found.parameters)


def _liveaction(values: Values, mask: bool) -> Any:
    raw = values["liveaction"]
    found = secrets(values) if mask and raw else Secrets()
    if not found.parameters:
        return raw
    liveaction = decoded(raw)
    if not isinstance(liveaction, dict) or "parameters" not in liveaction:
        return liveaction
    return {**liveaction, "parameters": mask_parameters(liveaction["parameters"], found.parameters)}


def _result(values: Values, mask: bool) -> Any:
    raw = values["result"]
    found = secrets(values) if mask and raw else Secrets()
    if not found.output:
        return raw
    return mask_output(decoded(raw), found)


def _elapsed(values: Values, _mask: bool) -> float | None:
    start, end = values["start_timestamp"], values["end_timestamp"]
    if start is None or end is None:
        return None
    return float((end - start).total_seconds())


def _plain(key: str) -> Callable[[Values, bool], Any]:
    return lambda values, _mask: values[key]


BUILDERS: dict[str, Callable[[Values, bool], Any]] = {
    name: _plain(columns[0]) for name, columns in COLUMNS.items()
} | {
    "liveaction": _liveaction,
    "start_timestamp": lambda values, _mask: isoformat(values["start_timestamp"]),
    "end_timestamp": lambda values, _mask: isoformat(values["end_timestamp"]),
    "elapsed_seconds": _elapsed,
    "parameters": _parameters,
    "result": _result,
}


def _pick(value: Any, paths: frozenset[Path]) -> Any:
    """The parts of ``value`` named by ``paths`` (a MongoDB projection)."""
    if not isinstance(value, dict):
        return value
    picked: dict[str, Any] = {}
    heads: dict[str, set[Path]] = {}
    for path in paths:
        heads.setdefault(path[0], set()).add(path[1:])
    for head, rests in heads.items():
        if head not in value:
            continue
        if () in rests:
            picked[head] = value[head]
        else:
            inner = _pick(value[head], frozenset(rests))
            if inner != {}:
                picked[head] = inner
    return picked


def _narrow_builder(name: str, paths: frozenset[Path]) -> Callable[[Values, bool], Any]:
    keys = {path[0]: NARROW[name][path[0]] for path in paths}

    def build(values: Values, _mask: bool) -> Any:
        return {part: values[key] for part, key in keys.items() if values[key] is not None}

    return build


def _part_builder(name: str, paths: frozenset[Path]) -> Callable[[Values, bool], Any]:
    whole = BUILDERS[name]
    return lambda values, mask: _pick(decoded(whole(values, mask)), paths)


def _narrow_only(name: str, paths: frozenset[Path]) -> bool:
    narrow = NARROW.get(name, {})
    return bool(narrow) and all(len(path) == 1 and path[0] in narrow for path in paths)


def _names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


@dataclass(frozen=True)
class Projection:
    """Which fields a document gets: whole ones, and parts (dotted paths) of others."""

    whole: frozenset[str]
    parts: Mapping[str, frozenset[Path]] = field(default_factory=dict)

    @classmethod
    def everything(cls) -> Projection:
        """Every field."""
        return cls(frozenset(COLUMNS))

    @classmethod
    def parse(cls, include: str | None, exclude: str | None) -> Projection:
        """Read ``include_attributes`` / ``exclude_attributes`` (comma-separated) as StackStorm
        does: unknown included names are ignored, unknown excluded ones refused."""
        included, excluded = _names(include), _names(exclude)
        if included and excluded:
            raise ValidationError(
                "exclude_fields and include_fields arguments are mutually exclusive. "
                "You need to provide either one or another, but not both."
            )
        if not included:
            for name in excluded:
                if name not in COLUMNS or name == "id":
                    raise ValidationError(
                        f"Invalid or unsupported exclude attribute specified: {name}"
                    )
            return cls(frozenset(COLUMNS.keys() - set(excluded)))
        paths = [tuple(name.split(".")) for name in included]
        whole = {path[0] for path in paths if len(path) == 1} | {"id"}
        parts: dict[str, set[Path]] = {}
        for path in paths:
            if len(path) > 1 and path[0] not in whole:
                parts.setdefault(path[0], set()).add(path[1:])
        return cls(
            frozenset(whole & COLUMNS.keys()),
            {name: frozenset(found) for name, found in parts.items() if name in COLUMNS},
        )

    @cached_property
    def plan(self) -> tuple[tuple[str, Callable[[Values, bool], Any]], ...]:
        """How to build each field, ``id`` first."""
        steps = [(name, BUILDERS[name]) for name in sorted(self.whole - {"id"})]
        for name, paths in sorted(self.parts.items()):
            if _narrow_only(name, paths):
                steps.append((name, _narrow_builder(name, paths)))
            else:
                steps.append((name, _part_builder(name, paths)))
        return (("id", BUILDERS["id"]), *steps)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """The column keys to read, each once, ``id`` first."""
        wanted = {"id": None}
        for name in self.whole:
            wanted.update(dict.fromkeys(COLUMNS[name]))
        for name, paths in self.parts.items():
            if _narrow_only(name, paths):
                wanted.update(dict.fromkeys(NARROW[name][path[0]] for path in paths))
            else:
                wanted.update(dict.fromkeys(COLUMNS[name]))
        return tuple(wanted)

    def columns(self, *, raw: bool = False) -> list[ColumnElement[Any]]:
        """What to select, labelled by column key; ``raw``: JSON columns as :class:`Raw`."""
        return [_select(key, raw) for key in self.keys]

    def fields(
        self, values: Values, *, mask: bool, cipher: DatastoreCipher | None = None
    ) -> list[tuple[str, Any]]:
        """The document's fields in order, falsy ones left out (``id`` always kept).

        Unmasked, sealed secret parameters are opened with ``cipher`` when one is given."""
        built = [(name, build(values, mask)) for name, build in self.plan]
        if not mask and cipher is not None:
            built = [(name, _revealed(name, value, values, cipher)) for name, value in built]
        return [(name, value) for name, value in built if value or name == "id"]


def _revealed(name: str, value: Any, values: Values, cipher: DatastoreCipher) -> Any:
    """A ``parameters`` or ``liveaction`` field with its sealed secret parameters opened."""
    if name not in ("parameters", "liveaction") or not value:
        return value
    names = secrets(values).parameters
    if not names:
        return value
    if name == "parameters":
        return reveal_parameters(decoded(value), names, cipher)
    liveaction = decoded(value)
    if not isinstance(liveaction, dict) or "parameters" not in liveaction:
        return liveaction
    return {**liveaction, "parameters": reveal_parameters(liveaction["parameters"], names, cipher)}


def new_row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """An execution's values as just written (:func:`~poundcake.engine.executions.service.
    insert_executions`), the columns it leaves out being NULL, as the database holds them."""
    return {column.key: None for column in E.__table__.columns} | dict(row)


def execution_document(
    values: Values,
    projection: Projection,
    *,
    mask: bool = True,
    cipher: DatastoreCipher | None = None,
) -> dict[str, Any]:
    """The API document of one execution from its ``values`` (column key -> value); unmasked,
    sealed secret parameters are opened with ``cipher``."""
    fields = projection.fields(values, mask=mask, cipher=cipher)
    return {name: decoded(value) for name, value in fields}


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_KEYS = {name: (_JSON.encode(name) + ":").encode() for name in COLUMNS}


def _encode(value: Any) -> bytes:
    return value.encoded() if isinstance(value, Raw) else _JSON.encode(value).encode()


def _document_parts(
    values: Values, projection: Projection, mask: bool, cipher: DatastoreCipher | None
) -> Iterator[bytes]:
    """A document's JSON in parts, each stored value a part of its own: joined once, a large
    result is copied once."""
    yield b"{"
    for index, (name, value) in enumerate(projection.fields(values, mask=mask, cipher=cipher)):
        yield (b"," if index else b"") + _KEYS[name]
        yield _encode(value)
    yield b"}"


def encode_document(
    values: Values,
    projection: Projection,
    *,
    mask: bool = True,
    cipher: DatastoreCipher | None = None,
) -> bytes:
    """One document as JSON, stored JSON passed through as it is (unmasked, sealed secret
    parameters are opened with ``cipher``)."""
    return b"".join(_document_parts(values, projection, mask, cipher))


def encode_documents(
    rows: Iterable[Values],
    projection: Projection,
    *,
    mask: bool = True,
    cipher: DatastoreCipher | None = None,
) -> bytes:
    """A JSON list of documents, stored JSON passed through as it is (unmasked, sealed secret
    parameters are opened with ``cipher``)."""
    parts: list[bytes] = [b"["]
    for index, values in enumerate(rows):
        if index:
            parts.append(b",")
        parts.extend(_document_parts(values, projection, mask, cipher))
    parts.append(b"]")
    return b"".join(parts)
