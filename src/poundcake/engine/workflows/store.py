"""What a conductor reads and writes through the database, within one unit of work.

:class:`WorkflowStore` implements the conductor's :class:`WorkflowRuntime` for one workflow
execution in one session: context entries (read through a process-wide cache, since entries
never change; written sealed when the workflow holds secrets), the ``task()`` document of a
task's newest execution, and the rendered actions of with-items tasks. :class:`WorkflowCaches`
holds what may be kept between units of work: parsed definitions and context entries.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.workflows.definition import WorkflowDefinition, build_definition
from poundcake.engine.workflows.events import ActionSpec
from poundcake.engine.workflows.expressions import KeyValueReader
from poundcake.engine.workflows.graph import WorkflowGraph
from poundcake.engine.workflows.models import (
    TaskExecutionDB,
    WorkflowActionDB,
    WorkflowContextDB,
    WorkflowExecutionDB,
)
from poundcake.exceptions import ValidationError

DEFINITIONS_KEPT = 256
CONTEXTS_KEPT = 512


class _Bounded:
    """A small thread-safe LRU mapping."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass
class WorkflowCaches:
    """Parsed definitions (with their graphs) and context entries, by workflow execution."""

    definitions: _Bounded = field(default_factory=lambda: _Bounded(DEFINITIONS_KEPT))
    contexts: _Bounded = field(default_factory=lambda: _Bounded(CONTEXTS_KEPT))

    def definition(self, row: WorkflowExecutionDB) -> tuple[WorkflowDefinition, WorkflowGraph]:
        """The definition and graph of a workflow execution, parsed once per process."""
        cached = self.definitions.get(row.id)
        if cached is None:
            definition = build_definition(row.spec or {})
            cached = (definition, WorkflowGraph(definition))
            self.definitions.put(row.id, cached)
        return cached  # type: ignore[no-any-return]


def _encode(values: Mapping[str, Any], cipher: DatastoreCipher | None) -> str:
    text = json.dumps(values, default=str)
    if cipher is None:
        return text
    return cipher.encrypt(text)


def _decode(text: str, cipher: DatastoreCipher | None) -> dict[str, Any]:
    if cipher is not None:
        text = cipher.decrypt(text)
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


class WorkflowStore:
    """The conductor's view of the database for one workflow execution in one session."""

    def __init__(
        self,
        session: Session,
        row: WorkflowExecutionDB,
        *,
        caches: WorkflowCaches,
        cipher: DatastoreCipher | None,
        datastore: KeyValueReader | None,
    ) -> None:
        self.session = session
        self.row = row
        self.caches = caches
        self.datastore = datastore
        self._seal_with = cipher if row.sealed else None
        if row.sealed and cipher is None:
            raise ValidationError(
                f"workflow execution {row.id} holds secrets and no datastore key is available"
            )
        self._count: int | None = None

    # --- context entries ---------------------------------------------------------------------

    def _next_position(self) -> int:
        if self._count is None:
            found = self.session.scalar(
                sa.select(sa.func.max(WorkflowContextDB.position)).where(
                    WorkflowContextDB.workflow_execution == self.row.id
                )
            )
            self._count = 0 if found is None else int(found) + 1
        return self._count

    def context(self, index: int) -> Mapping[str, Any]:
        """A context entry (from the cache when this process read or wrote it before)."""
        key = (self.row.id, index)
        cached = self.caches.contexts.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        text = self.session.scalar(
            sa.select(WorkflowContextDB.data).where(
                WorkflowContextDB.workflow_execution == self.row.id,
                WorkflowContextDB.position == index,
            )
        )
        if text is None:
            raise ValidationError(f"context entry {index} of workflow {self.row.id} is missing")
        values = _decode(text, self._seal_with)
        self.caches.contexts.put(key, values)
        return values

    def add_context(self, values: Mapping[str, Any]) -> int:
        """Keep a new context entry; return its index."""
        position = self._next_position()
        self.session.execute(
            sa.insert(WorkflowContextDB).values(
                workflow_execution=self.row.id,
                position=position,
                data=_encode(values, self._seal_with),
            )
        )
        self._count = position + 1
        self.caches.contexts.put((self.row.id, position), dict(values))
        return position

    # --- task() ------------------------------------------------------------------------------

    def task_record(self, task_id: str, route: int) -> Mapping[str, Any] | None:
        """StackStorm's ``task()`` document of the newest execution of a task on a route."""
        found = self.session.scalars(
            sa.select(TaskExecutionDB)
            .where(
                TaskExecutionDB.workflow_execution == self.row.id,
                TaskExecutionDB.task_id == task_id,
                TaskExecutionDB.task_route == route,
            )
            .order_by(TaskExecutionDB.start_timestamp.desc(), TaskExecutionDB.id.desc())
            .limit(1)
        ).first()
        if found is None:
            return None
        return {
            "task_execution_id": found.id,
            "workflow_execution_id": found.workflow_execution,
            "task_name": found.task_id,
            "task_id": found.task_id,
            "route": found.task_route,
            "result": found.result,
            "status": found.status,
            "start_timestamp": str(found.start_timestamp),
            "end_timestamp": str(found.end_timestamp),
        }

    # --- with-items actions ------------------------------------------------------------------

    def item_specs(self, task_id: str, route: int, item_ids: Sequence[int]) -> list[ActionSpec]:
        """The rendered actions of items of the running with-items task on a route."""
        task_execution = self.itemized_task(task_id, route)
        if task_execution is None:
            raise ValidationError(f'no running with-items execution of task "{task_id}"')
        rows = self.session.execute(
            sa.select(
                WorkflowActionDB.item_id, WorkflowActionDB.action, WorkflowActionDB.input
            ).where(
                WorkflowActionDB.task_execution == task_execution.id,
                WorkflowActionDB.item_id.in_(list(item_ids)),
            )
        ).all()
        found = {
            row.item_id: ActionSpec(row.item_id, row.action, self.open(row.input)) for row in rows
        }
        return [found[item_id] for item_id in item_ids if item_id in found]

    def itemized_task(self, task_id: str, route: int) -> TaskExecutionDB | None:
        """The newest execution of a with-items task on a route, while it is not done."""
        found = self.session.scalars(
            sa.select(TaskExecutionDB)
            .where(
                TaskExecutionDB.workflow_execution == self.row.id,
                TaskExecutionDB.task_id == task_id,
                TaskExecutionDB.task_route == route,
                TaskExecutionDB.itemized.is_(True),
            )
            .order_by(TaskExecutionDB.start_timestamp.desc(), TaskExecutionDB.id.desc())
            .limit(1)
        ).first()
        return found

    def seal(self, value: Any) -> Any:
        """A rendered input as stored: sealed when the workflow holds secrets."""
        if self._seal_with is None:
            return value
        return {"sealed": self._seal_with.encrypt(json.dumps(value, default=str))}

    def open(self, value: Any) -> Any:
        """A stored rendered input, opened."""
        if self._seal_with is None or not (isinstance(value, dict) and "sealed" in value):
            return value
        return json.loads(self._seal_with.decrypt(str(value["sealed"])))
