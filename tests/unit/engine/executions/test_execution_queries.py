"""The pure parts of execution lists: filters, order, paging, totals, re-run requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import mysql

from poundcake.engine.executions.queries import (
    CountCache,
    ExecutionFilters,
    check_paging,
    filter_conditions,
    newest_first,
    page_total,
    parse_ids,
    parse_timestamp,
)
from poundcake.engine.executions.rerun import check_rerun_request, rerun_context
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.executions.updates import parse_status
from poundcake.exceptions import ValidationError


def sql(filters: ExecutionFilters) -> str:
    dialect = mysql.dialect()
    rendered = " AND ".join(
        str(condition.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for condition in filter_conditions(filters)
    )
    return rendered.replace("st2_engine.", "")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T10:55:01.123456Z",
        "2026-11-28T10:55:01.123456+00:00",
        "2026-11-28T10:55:01.123456+00",
        "2026-11-28 10:55:01.123456",
        "2026-11-28T11:55:01.123456+01:00",
    ],
)
def test_timestamps_are_read_as_utc(text: str) -> None:
    assert parse_timestamp(text, "timestamp_gt") == datetime(
        2026, 11, 28, 10, 55, 1, 123456, tzinfo=UTC
    )


def test_a_bad_timestamp_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match='"timestamp_lt"'):
        parse_timestamp("yesterday", "timestamp_lt")


def test_parent_null_means_top_level_and_filters_use_indexed_columns() -> None:
    rendered = sql(ExecutionFilters(parent="null", action="core.local", user="alice"))
    assert "execution_db.parent IS NULL" in rendered
    assert "execution_db.action = 'core.local'" in rendered
    assert "execution_db.context_user = 'alice'" in rendered
    assert sql(ExecutionFilters(parent="NULL")) == "execution_db.parent IS NULL"
    assert sql(ExecutionFilters(parent="6b0ada9bae430522e5172fb0")) == (
        "execution_db.parent = '6b0ada9bae430522e5172fb0'"
    )


def test_other_filters_map_to_stackstorms_fields() -> None:
    rendered = sql(
        ExecutionFilters(
            status="failed",
            trigger_instance="ti",
            runner="local-shell-cmd",
            liveaction="la",
            timestamp_gt=datetime(2026, 1, 1, tzinfo=UTC),
            timestamp_lt=datetime(2026, 2, 1, tzinfo=UTC),
            ids=("a", "b"),
        )
    )
    for expected in (
        "execution_db.id IN ('a', 'b')",
        "execution_db.status = 'failed'",
        "execution_db.trigger_instance_id = 'ti'",
        "execution_db.runner_type = 'local-shell-cmd'",
        "execution_db.liveaction_id = 'la'",
        "execution_db.start_timestamp > '2026-01-01 00:00:00'",
        "execution_db.start_timestamp < '2026-02-01 00:00:00'",
    ):
        assert expected in rendered


def test_rule_matches_the_name_or_the_full_ref_with_like_escaped() -> None:
    rendered = sql(ExecutionFilters(rule="on_100%_cpu"))
    assert "execution_db.rule_ref = 'on_100%%_cpu'" in rendered
    assert "execution_db.rule_ref LIKE '%%.on\\\\_100\\\\%%\\\\_cpu'" in rendered


def test_trigger_filters_read_the_snapshot_names() -> None:
    rendered = sql(ExecutionFilters(trigger="core.abc", trigger_type="st2.webhook"))
    assert "JSON_UNQUOTE(JSON_EXTRACT(execution_db.`trigger`, '$.\"name\"'))" in rendered
    assert "JSON_EXTRACT(execution_db.trigger_type, '$.\"name\"')" in rendered
    assert "'core.abc'" in rendered
    assert "'st2.webhook'" in rendered


def test_no_filters_no_conditions() -> None:
    assert filter_conditions(ExecutionFilters()) == []


def test_ids_filter_takes_at_most_100() -> None:
    assert parse_ids("a, b,,c") == ("a", "b", "c")
    assert parse_ids(None) == ()
    with pytest.raises(ValidationError, match="Maximum of 100 items"):
        parse_ids(",".join(str(n) for n in range(101)))


@pytest.mark.parametrize(
    ("sort_desc", "sort_asc", "timestamp_gt", "timestamp_lt", "newest"),
    [
        (False, False, False, False, True),
        (True, False, False, False, True),
        (False, True, False, False, False),
        (False, False, True, False, False),
        (False, False, True, True, True),
        (True, True, False, False, True),
    ],
)
def test_order_follows_stackstorm(
    sort_desc: bool, sort_asc: bool, timestamp_gt: bool, timestamp_lt: bool, newest: bool
) -> None:
    assert (
        newest_first(
            sort_desc=sort_desc,
            sort_asc=sort_asc,
            timestamp_gt=timestamp_gt,
            timestamp_lt=timestamp_lt,
        )
        is newest
    )


@pytest.mark.parametrize(
    ("size", "limit", "offset", "total"),
    [
        (3, 100, 0, 3),
        (0, 100, 0, 0),
        (40, 50, 200, 240),
        (50, 50, 0, None),
        (0, 50, 500, None),
        (7, None, 0, 7),
    ],
)
def test_a_short_page_tells_the_total(
    size: int, limit: int | None, offset: int, total: int | None
) -> None:
    assert page_total(size, limit, offset) == total


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (100, -1, 'Offset "-1" specified, must be a positive number.'),
        (100, 2**31, "is more than 32-bit int"),
        (0, 0, 'Limit, "0" specified, must be a positive number.'),
    ],
)
def test_paging_refusals(limit: int, offset: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_paging(limit, offset)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Background:
    def __init__(self) -> None:
        self.queued: list[object] = []

    def __call__(self, work: object) -> None:
        self.queued.append(work)

    def run(self) -> None:
        work, self.queued = self.queued, []
        for item in work:
            item()  # type: ignore[operator]


def test_small_totals_are_always_counted() -> None:
    cache = CountCache(threshold=100, clock=Clock(), background=Background())
    counts = iter([5, 6])
    assert cache.total("k", lambda: next(counts)) == 5
    assert cache.total("k", lambda: next(counts)) == 6


def test_large_totals_are_kept_then_refreshed_in_the_background() -> None:
    clock, background = Clock(), Background()
    cache = CountCache(fresh_for=5, stale_for=60, threshold=100, clock=clock, background=background)
    counts = iter([1000, 1001, 1002])
    assert cache.total("k", lambda: next(counts)) == 1000
    clock.now = 4
    assert cache.total("k", lambda: next(counts)) == 1000
    assert background.queued == []
    clock.now = 6
    assert cache.total("k", lambda: next(counts)) == 1000
    assert cache.total("k", lambda: next(counts)) == 1000
    assert len(background.queued) == 1
    background.run()
    assert cache.total("k", lambda: next(counts)) == 1001
    clock.now = 100
    assert cache.total("k", lambda: next(counts)) == 1002


def test_a_failed_background_count_keeps_the_old_total() -> None:
    clock, background = Clock(), Background()
    cache = CountCache(fresh_for=1, threshold=1, clock=clock, background=background)
    assert cache.total("k", lambda: 10) == 10
    clock.now = 2

    def broken() -> int:
        raise RuntimeError("database gone")

    assert cache.total("k", broken) == 10
    background.run()
    assert cache.total("k", lambda: 11) == 10
    background.run()
    assert cache.total("k", lambda: 12) == 11


def test_the_cache_holds_at_most_size_entries() -> None:
    clock = Clock()
    cache = CountCache(threshold=1, size=2, clock=clock, background=Background())
    for number, key in enumerate("abc"):
        clock.now = number
        cache.total(key, lambda: 50)
    assert cache.total("a", lambda: 7) == 7
    assert cache.total("c", lambda: 8) == 50


def test_rerun_context_and_refusals() -> None:
    assert rerun_context("abc") == {"re-run": {"ref": "abc"}}
    assert rerun_context("abc", ["t1"], ["t1"]) == {
        "re-run": {"ref": "abc", "tasks": ["t1"], "reset": ["t1"]}
    }
    with pytest.raises(ValidationError, match="Parameters override is not supported"):
        check_rerun_request({"x": 1}, ["t1"], [])
    with pytest.raises(ValidationError, match="List of tasks to reset does not match"):
        check_rerun_request({}, ["t1"], ["t2"])
    check_rerun_request({"x": 1}, [], [])


def test_put_status_must_be_a_known_status() -> None:
    assert parse_status("pausing") is ExecutionStatus.PAUSING
    with pytest.raises(ValidationError, match="'sleeping' is not one of"):
        parse_status("sleeping")
