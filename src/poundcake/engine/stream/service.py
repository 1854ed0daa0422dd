"""What stream events name, read from the database.

Engine processes announce executions by id only (the database is the record); the stream looks
each one up once and sends every client the full document. Live action events are derived from
execution events, since a live action changes with its execution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.engine.actions.parameters import secret_names
from poundcake.engine.executions.documents import Projection, execution_document
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.executions.sealed import reveal_parameters
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.stream.documents import liveaction_document, output_document, parameter_schema
from poundcake.engine.stream.events import (
    EXECUTION_PREFIX,
    EXECUTION_UPDATE,
    LIVEACTION_PREFIX,
    OUTPUT_CREATE,
    Event,
    is_document,
)

WantsName = Callable[[str], bool]
E = ExecutionDB
EVERYTHING = Projection.everything()
_COLUMNS = list(dict.fromkeys([*EVERYTHING.columns(), E.liveaction_id]))


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def find_execution(session: Session, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The columns of the execution an id-only event names, by ``execution_id`` or else
    ``liveaction_id``."""
    query = sa.select(*_COLUMNS)
    execution_id = _text(body, "execution_id")
    liveaction_id = _text(body, "liveaction_id")
    if execution_id:
        query = query.where(E.id == execution_id)
    elif liveaction_id:
        query = query.where(E.liveaction_id == liveaction_id)
    else:
        return None
    row = session.execute(query.limit(1)).first()
    return None if row is None else dict(row._mapping)


@dataclass(frozen=True)
class _Ask:
    """What one id-only message names: an execution (by id, else by live action) and whether
    its live action is wanted too."""

    execution_id: str | None
    liveaction_id: str | None
    want_liveaction: bool


@dataclass
class _Found:
    """The executions and live actions a batch of messages names, read together."""

    by_id: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_liveaction: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    liveactions: dict[str, LiveActionDB] = field(default_factory=dict)

    def read(self, session: Session, asks: Sequence[_Ask]) -> None:
        execution_ids = sorted({ask.execution_id for ask in asks if ask.execution_id})
        liveaction_ids = sorted(
            {ask.liveaction_id for ask in asks if not ask.execution_id and ask.liveaction_id}
        )
        clauses = []
        if execution_ids:
            clauses.append(E.id.in_(execution_ids))
        if liveaction_ids:
            clauses.append(E.liveaction_id.in_(liveaction_ids))
        if clauses:
            for row in session.execute(sa.select(*_COLUMNS).where(sa.or_(*clauses))):
                execution = dict(row._mapping)
                self.by_id[execution["id"]] = execution
                if execution["liveaction_id"]:
                    self.by_liveaction[execution["liveaction_id"]] = execution
        wanted = {
            liveaction_id
            for ask in asks
            if ask.want_liveaction
            for liveaction_id in (
                ask.liveaction_id,
                (self.execution(ask) or {}).get("liveaction_id"),
            )
            if liveaction_id
        }
        if wanted:
            rows = session.scalars(
                sa.select(LiveActionDB).where(LiveActionDB.id.in_(sorted(wanted)))
            )
            self.liveactions = {row.id: row for row in rows}

    def execution(self, ask: _Ask) -> Mapping[str, Any] | None:
        if ask.execution_id:
            return self.by_id.get(ask.execution_id)
        if ask.liveaction_id:
            return self.by_liveaction.get(ask.liveaction_id)
        return None


class StreamReader:
    """Turns broker messages into client events and reads executions and their output."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        mask_secrets: bool = True,
        cipher: DatastoreCipher | None = None,
    ) -> None:
        self._sessions = sessions
        self._mask = mask_secrets
        # Opens sealed secret parameters when secrets are not masked.
        self._cipher = None if mask_secrets else cipher

    def resolve(self, name: str, body: Any, wanted: WantsName) -> list[Event]:
        """The events a broker message becomes, limited to names some client wants."""
        return self.resolve_many([(name, body)], wanted)[0]

    def resolve_many(
        self, messages: Sequence[tuple[str, Any]], wanted: WantsName
    ) -> list[list[Event]]:
        """The events each message becomes, in order: the executions id-only messages name
        are read together, one query for the batch instead of one per message."""
        found = _Found()
        asks = [self._asks(name, body, wanted) for name, body in messages]
        if any(ask is not None for ask in asks):
            with self._sessions() as session:
                found.read(session, [ask for ask in asks if ask is not None])
                return [
                    self._events(name, body, wanted, ask, found)
                    for (name, body), ask in zip(messages, asks, strict=True)
                ]
        return [
            self._events(name, body, wanted, None, found)
            for (name, body), ask in zip(messages, asks, strict=True)
        ]

    def _asks(self, name: str, body: Any, wanted: WantsName) -> _Ask | None:
        """What an id-only message needs read, if it is one some client wants."""
        if is_document(body) or not isinstance(body, Mapping):
            return None
        if name.startswith(EXECUTION_PREFIX):
            liveaction_name = LIVEACTION_PREFIX + name.removeprefix(EXECUTION_PREFIX)
            want_execution, want_liveaction = wanted(name), wanted(liveaction_name)
            if not (want_execution or want_liveaction):
                return None
            return _Ask(_text(body, "execution_id"), _text(body, "liveaction_id"), want_liveaction)
        if name.startswith(LIVEACTION_PREFIX) and wanted(name):
            liveaction_id = _text(body, "liveaction_id") or _text(body, "id")
            return None if liveaction_id is None else _Ask(None, liveaction_id, True)
        return None

    def _events(
        self, name: str, body: Any, wanted: WantsName, ask: _Ask | None, found: _Found
    ) -> list[Event]:
        if name.startswith(EXECUTION_PREFIX):
            return self._execution_events(name, body, wanted, ask, found)
        if name.startswith(LIVEACTION_PREFIX):
            return self._liveaction_events(name, body, wanted, ask, found)
        return [Event(name, body)] if wanted(name) else []

    def _execution_events(
        self, name: str, body: Any, wanted: WantsName, ask: _Ask | None, found: _Found
    ) -> list[Event]:
        if is_document(body):
            return [Event(name, body)] if wanted(name) else []
        if ask is None:
            return []
        execution = found.execution(ask)
        if execution is None:
            return []
        events: list[Event] = []
        liveaction_id = execution["liveaction_id"]
        liveaction_name = LIVEACTION_PREFIX + name.removeprefix(EXECUTION_PREFIX)
        if ask.want_liveaction and liveaction_id:
            liveaction = found.liveactions.get(liveaction_id)
            if liveaction is not None:
                events.append(Event(liveaction_name, self._liveaction(liveaction, execution)))
        if wanted(name):
            events.append(Event(name, self._document(execution)))
        return events

    def _document(self, execution: Mapping[str, Any]) -> dict[str, Any]:
        return execution_document(execution, EVERYTHING, mask=self._mask, cipher=self._cipher)

    def _liveaction(
        self, liveaction: LiveActionDB, execution: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        document = liveaction_document(liveaction, self._schema(execution))
        if self._cipher is not None and execution is not None and "parameters" in document:
            names = secret_names(parameter_schema(execution))
            document["parameters"] = reveal_parameters(document["parameters"], names, self._cipher)
        return document

    def _schema(self, execution: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
        return parameter_schema(execution) if self._mask and execution is not None else None

    def _liveaction_events(
        self, name: str, body: Any, wanted: WantsName, ask: _Ask | None, found: _Found
    ) -> list[Event]:
        if not wanted(name):
            return []
        if is_document(body):
            return [Event(name, body)]
        if ask is None or ask.liveaction_id is None:
            return []
        liveaction = found.liveactions.get(ask.liveaction_id)
        if liveaction is None:
            return []
        execution = found.by_liveaction.get(ask.liveaction_id)
        return [Event(name, self._liveaction(liveaction, execution))]

    def current_execution(self, execution_id: str) -> Event | None:
        """The execution as an ``st2.execution__update`` event, or None if there is none."""
        with self._sessions() as session:
            execution = find_execution(session, {"execution_id": execution_id})
            return None if execution is None else Event(EXECUTION_UPDATE, self._document(execution))

    def stored_output(self, execution_id: str) -> list[Event]:
        """The execution's output so far, in order, as ``st2.execution.output__create`` events."""
        with self._sessions() as session:
            rows = session.scalars(
                sa.select(ExecutionOutputDB)
                .where(ExecutionOutputDB.execution_id == execution_id)
                .order_by(ExecutionOutputDB.id)
            )
            return [Event(OUTPUT_CREATE, output_document(row)) for row in rows]
