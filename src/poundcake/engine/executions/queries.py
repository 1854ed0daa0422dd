"""Reading executions: list filters, order and paging, totals, descendants and output.

Lists stay index-driven on large tables: the page's ids are chosen from an index alone
(``(parent, start_timestamp)``, ``(status, start_timestamp)`` or ``start_timestamp``, ordered
by ``start_timestamp`` then ``id``) and only those rows are then read, with only the columns
the caller asks for. A total is counted only when the page does not already tell it, index-only
where the indexes allow it, and totals of large result sets are reused for a while and
refreshed in the background (:class:`CountCache`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

E = ExecutionDB
NULL = "null"
MAX_OFFSET = 2**31
MAX_IDS = 100


@dataclass(frozen=True)
class ExecutionFilters:
    """The list filters of ``GET /v1/executions``, as StackStorm names them.

    A value of ``"null"`` (any case) asks for executions without that field, as StackStorm's
    query layer reads it; ``parent=null`` is how the ``st2`` CLI lists top-level executions.
    """

    action: str | None = None
    status: str | None = None
    parent: str | None = None
    user: str | None = None
    trigger_instance: str | None = None
    rule: str | None = None
    runner: str | None = None
    trigger: str | None = None
    trigger_type: str | None = None
    liveaction: str | None = None
    timestamp_gt: datetime | None = None
    timestamp_lt: datetime | None = None
    ids: tuple[str, ...] = ()

    def key(self) -> Hashable:
        """A hashable form, for caching totals per filter set."""
        return astuple(self)


_EQUALITY: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "action": E.action,
    "status": E.status,
    "parent": E.parent,
    "user": E.context_user,
    "trigger_instance": E.trigger_instance_id,
    "runner": E.runner_type,
    "liveaction": E.liveaction_id,
}


def parse_timestamp(value: str, name: str) -> datetime:
    """Read an ISO-8601 timestamp as StackStorm does (naive means UTC); 400 otherwise."""
    text = value.strip()
    if text.endswith(("+00", "-00")):
        text += ":00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f'Invalid value "{value}" for "{name}": expected an ISO-8601 timestamp'
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_ids(value: str | None) -> tuple[str, ...]:
    """The ``id`` filter: a comma-separated list of at most 100 ids."""
    ids = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    if len(ids) > MAX_IDS:
        raise ValidationError("Maximum of 100 items can be provided for a query parameter value")
    return ids


def _is_null(value: str) -> bool:
    return value.strip().lower() == NULL


def _like_suffix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%.{escaped}"


def filter_conditions(filters: ExecutionFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions for ``filters`` (index-backed except ``runner``, ``trigger``...)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.ids:
        conditions.append(E.id.in_(filters.ids))
    for name, column in _EQUALITY.items():
        value = getattr(filters, name)
        if value is None or value == "":
            continue
        conditions.append(column.is_(None) if _is_null(value) else column == value)
    if filters.rule:
        if _is_null(filters.rule):
            conditions.append(E.rule_ref.is_(None))
        else:
            # StackStorm matches the rule's name; a full ref (pack.name) is matched too.
            conditions.append(
                sa.or_(E.rule_ref == filters.rule, E.rule_ref.like(_like_suffix(filters.rule)))
            )
    for name, snapshot in (("trigger", E.trigger), ("trigger_type", E.trigger_type)):
        value = getattr(filters, name)
        if value:
            field = snapshot["name"].as_string()
            conditions.append(snapshot.is_(None) if _is_null(value) else field == value)
    if filters.timestamp_gt is not None:
        conditions.append(E.start_timestamp > filters.timestamp_gt)
    if filters.timestamp_lt is not None:
        conditions.append(E.start_timestamp < filters.timestamp_lt)
    return conditions


def newest_first(
    *, sort_desc: bool, sort_asc: bool, timestamp_gt: bool, timestamp_lt: bool
) -> bool:
    """StackStorm's order: ``timestamp_lt`` or ``sort_desc`` sort newest first, else
    ``timestamp_gt`` or ``sort_asc`` oldest first, else newest first."""
    if timestamp_lt or sort_desc:
        return True
    return not (timestamp_gt or sort_asc)


def order_by(newest: bool) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """``start_timestamp`` then ``id``, both one way, so an index gives the order."""
    if newest:
        return E.start_timestamp.desc(), E.id.desc()
    return E.start_timestamp.asc(), E.id.asc()


def check_paging(limit: int | None, offset: int) -> None:
    """Refuse what StackStorm refuses: a negative or a beyond-32-bit offset."""
    if offset < 0:
        raise ValidationError(f'Offset "{offset}" specified, must be a positive number.')
    if offset >= MAX_OFFSET:
        raise ValidationError(f'Offset "{offset}" specified is more than 32-bit int')
    if limit is not None and limit < 1:
        raise ValidationError(f'Limit, "{limit}" specified, must be a positive number.')


class CountCache:
    """Totals of large result sets, reused for a while per filter set.

    Counting a million matching rows reads a million index entries, so a total at or above
    ``threshold`` is kept: for ``fresh_for`` seconds it is used as it is; after that, up to
    ``stale_for`` seconds, it is still used while one background thread counts again. Smaller
    totals are never kept, so they are always exact.
    """

    def __init__(
        self,
        *,
        fresh_for: float = 5.0,
        stale_for: float = 300.0,
        threshold: int = 10_000,
        size: int = 256,
        clock: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.fresh_for = fresh_for
        self.stale_for = stale_for
        self.threshold = threshold
        self.size = size
        self._clock = clock
        self._background = background or _in_thread
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, int]] = {}
        self._refreshing: set[Hashable] = set()

    def total(self, key: Hashable, count: Callable[[], int]) -> int:
        """The total for ``key``: kept, kept while ``count`` runs in the background, or
        ``count()`` now."""
        with self._lock:
            entry = self._entries.get(key)
            age = self._clock() - entry[0] if entry else None
            if entry is not None and age is not None and age < self.stale_for:
                if age >= self.fresh_for and key not in self._refreshing:
                    self._refreshing.add(key)
                    self._background(lambda: self._refresh(key, count))
                return entry[1]
        return self._store(key, count())

    def _refresh(self, key: Hashable, count: Callable[[], int]) -> None:
        try:
            self._store(key, count())
        except Exception:
            logger.exception("Counting executions in the background failed")
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: Hashable, total: int) -> int:
        with self._lock:
            if total < self.threshold:
                self._entries.pop(key, None)
                return total
            if key not in self._entries and len(self._entries) >= self.size:
                oldest = min(self._entries, key=lambda k: self._entries[k][0])
                del self._entries[oldest]
            self._entries[key] = (self._clock(), total)
        return total


def _in_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="execution-count", daemon=True).start()


def count_executions(session: Session, filters: ExecutionFilters) -> int:
    """How many executions match ``filters``; the CLI's filters each have an index to count
    in ((parent, status, start_timestamp), (action, start_timestamp), ...)."""
    query = sa.select(sa.func.count()).select_from(E).where(*filter_conditions(filters))
    return int(session.scalar(query) or 0)


def page_total(page_size: int, limit: int | None, offset: int) -> int | None:
    """The total a page already tells: a short, non-empty (or first) page ends the results."""
    if limit is not None and page_size >= limit:
        return None
    if page_size == 0 and offset > 0:
        return None
    return offset + page_size


@dataclass(frozen=True)
class ExecutionPage:
    """One page of executions (the requested columns only) and the total that match."""

    rows: list[sa.Row[Any]]
    total: int


def list_executions(
    session: Session,
    *,
    filters: ExecutionFilters,
    columns: Sequence[ColumnElement[Any]],
    newest: bool = True,
    limit: int | None = 100,
    offset: int = 0,
    total: Callable[[], int] | None = None,
) -> ExecutionPage:
    """A page of executions matching ``filters`` with ``columns``, and the total (from
    ``total`` when the page does not tell it, else counted in ``session``)."""
    check_paging(limit, offset)
    conditions = filter_conditions(filters)
    ordering = order_by(newest)
    ids = sa.select(E.id).where(*conditions).order_by(*ordering).offset(offset)
    if limit is not None:
        ids = ids.limit(limit)
    chosen = ids.subquery("page")
    query = sa.select(*columns).select_from(E).join(chosen, chosen.c.id == E.id).order_by(*ordering)
    rows = list(session.execute(query))
    known = page_total(len(rows), limit, offset)
    if known is None:
        known = total() if total is not None else count_executions(session, filters)
    return ExecutionPage(rows, known)


def fetch_execution(
    session: Session, execution_id: str, columns: Sequence[ColumnElement[Any]]
) -> sa.Row[Any] | None:
    """One execution's ``columns``, or None; ``last`` means the newest."""
    query = sa.select(*columns).select_from(E)
    if execution_id == "last":
        return session.execute(query.order_by(E.id.desc()).limit(1)).first()
    return session.execute(query.where(E.id == execution_id)).first()


def descendants(
    session: Session,
    execution_id: str,
    columns: Sequence[ColumnElement[Any]],
    *,
    depth: int = -1,
) -> list[sa.Row[Any]]:
    """An execution's descendants, depth first, each level by ``start_timestamp``.

    ``depth`` counts levels below the execution; -1 (or 0, as StackStorm reads it) is all.
    Each row also carries ``descendant_id`` and ``descendant_children``.
    """
    wanted = [*columns, E.id.label("descendant_id"), E.children.label("descendant_children")]

    def children_of(parent_id: str) -> list[sa.Row[Any]]:
        query = (
            sa.select(*wanted)
            .select_from(E)
            .where(E.parent == parent_id)
            .order_by(E.start_timestamp, E.id)
        )
        return list(session.execute(query))

    found: list[sa.Row[Any]] = []
    pending: list[tuple[sa.Row[Any], int]] = [(row, 1) for row in children_of(execution_id)]
    while pending:
        row, level = pending.pop(0)
        found.append(row)
        if not row.descendant_children or level == depth:
            continue
        pending[0:0] = [(child, level + 1) for child in children_of(row.descendant_id)]
    return found


def execution_output(session: Session, execution_id: str, output_type: str | None = None) -> str:
    """An execution's stored output in the order it arrived (one stream, or all)."""
    return encoded_execution_output(session, execution_id, output_type).decode()


def encoded_execution_output(
    session: Session, execution_id: str, output_type: str | None = None
) -> bytes:
    """:func:`execution_output` in UTF-8, read as stored: never decoded (a ``str`` holding one
    emoji takes four bytes per character)."""
    query = (
        sa.select(sa.cast(ExecutionOutputDB.data, sa.LargeBinary))
        .where(ExecutionOutputDB.execution_id == execution_id)
        .order_by(ExecutionOutputDB.id)
    )
    if output_type and output_type != "all":
        query = query.where(ExecutionOutputDB.output_type == output_type)
    return b"".join(session.scalars(query))


def latest_id(session: Session) -> str | None:
    """The newest execution's id (StackStorm's ``last``)."""
    return session.scalar(sa.select(E.id).order_by(E.id.desc()).limit(1))


def existing_ids(session: Session, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` exist."""
    wanted = list(ids)
    if not wanted:
        return set()
    return set(session.scalars(sa.select(E.id).where(E.id.in_(wanted))))
