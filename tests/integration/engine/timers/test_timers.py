"""The timers engine on a real database, with two timers processes (threads with their own
runtimes) against it: interval, date and cron timers fire each scheduled moment once, deleted
triggers lose their schedule, bad parameters are skipped, and ``/v1/timers`` lists them."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from poundcake.config import St2Config, load_st2_config
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import unit_of_work
from poundcake.db.types import utcnow
from poundcake.engine.api.app import create_app
from poundcake.engine.auth.service import create_api_key
from poundcake.engine.runtime import EngineRuntime, make_runtime
from poundcake.engine.timers.models import TimerScheduleDB
from poundcake.engine.timers.process import TimersEngine, TimersEngineSettings
from poundcake.engine.timers.service import (
    TimerTrigger,
    add_schedule,
    due_timers,
    fire_timer,
)
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.engine.triggers.service import (
    acquire_trigger,
    get_trigger_type,
    register_builtin_trigger_types,
    release_trigger,
)
from tests.integration.support.datastore_helpers import write_st2_conf
from tests.integration.support.engine_stack import rabbitmq_vhost

INTERVAL = "core.st2.IntervalTimer"
DATE = "core.st2.DateTimer"
CRON = "core.st2.CronTimer"
SETTINGS = TimersEngineSettings(poll_interval=0.2)


@dataclass
class Timers:
    """A database with the built-in trigger types, and timers processes running against it."""

    config: St2Config
    runtime: EngineRuntime
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    runtimes: list[EngineRuntime] = field(default_factory=list)

    def start_engines(self, count: int = 2) -> None:
        """Start ``count`` timers engines, each with its own runtime, as separate processes are."""
        for _ in range(count):
            runtime = make_runtime(self.config, pool_size=4)
            self.runtimes.append(runtime)
            engine = TimersEngine(runtime, SETTINGS)
            thread = threading.Thread(target=engine.run, args=(self.stop,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop_engines(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
            assert not thread.is_alive(), "a timers engine did not stop"
        self.threads.clear()
        for runtime in self.runtimes:
            runtime.close()
        self.runtimes.clear()

    def add_timer(self, trigger_type: str, parameters: dict[str, Any]) -> str:
        with unit_of_work(self.runtime.sessions) as session:
            found = get_trigger_type(session=session, ref=trigger_type)
            assert found is not None
            return acquire_trigger(session=session, trigger_type=found, parameters=parameters).ref

    def remove_timer(self, ref: str) -> None:
        with unit_of_work(self.runtime.sessions) as session:
            release_trigger(session=session, ref=ref)

    def instances(self, ref: str) -> list[TriggerInstanceDB]:
        """The trigger's instances, in the order of the moments they were scheduled for."""
        with self.runtime.sessions() as session:
            rows = list(
                session.scalars(
                    sa.select(TriggerInstanceDB).where(TriggerInstanceDB.trigger == ref)
                )
            )
        return sorted(rows, key=executed_at)

    def schedule(self, ref: str) -> TimerScheduleDB | None:
        with self.runtime.sessions() as session:
            return session.scalars(
                sa.select(TimerScheduleDB).where(TimerScheduleDB.trigger_ref == ref)
            ).first()


def executed_at(instance: TriggerInstanceDB) -> datetime:
    return datetime.fromisoformat(instance.payload["executed_at"])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s")
        time.sleep(0.05)


def build_timers(config_path: Path) -> Iterator[Timers]:
    config = load_st2_config(config_path)
    setup_engine_schema(config)
    timers = Timers(config=config, runtime=make_runtime(config, pool_size=4))
    with unit_of_work(timers.runtime.sessions) as session:
        register_builtin_trigger_types(session=session)
    try:
        yield timers
    finally:
        timers.stop_engines()
        timers.runtime.close()


@pytest.fixture
def timers(tmp_path: Path, scratch_database: str) -> Iterator[Timers]:
    """Timers on a scratch MariaDB database."""
    with rabbitmq_vhost() as url:
        path = write_st2_conf(
            tmp_path, database=scratch_database, extra=f"\n[messaging]\nurl = {url}\n"
        )
        yield from build_timers(path)


@pytest.fixture(params=["mariadb", "sqlite"])
def any_backend_timers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Timers]:
    """Timers on MariaDB, and on the SQLite file of the embedded default."""
    database = request.getfixturevalue("scratch_database") if request.param == "mariadb" else None
    with rabbitmq_vhost() as url:
        path = write_st2_conf(tmp_path, database=database, extra=f"\n[messaging]\nurl = {url}\n")
        yield from build_timers(path)


def test_an_interval_timer_fires_every_second_once_across_two_processes(
    any_backend_timers: Timers,
) -> None:
    timers = any_backend_timers
    parameters = {"unit": "seconds", "delta": 1}
    ref = timers.add_timer(INTERVAL, parameters)

    timers.start_engines(2)
    wait_for(lambda: len(timers.instances(ref)) >= 4, 60, "four firings")
    timers.stop_engines()

    instances = timers.instances(ref)
    moments = [executed_at(instance) for instance in instances]
    assert len(moments) >= 4, moments
    assert all(moment.microsecond == 0 for moment in moments)
    for earlier, later, fired in zip(moments, moments[1:], instances, strict=False):
        gap = later - earlier
        assert gap >= timedelta(seconds=1), f"{earlier} then {later}: a duplicate or overlap"
        assert gap.total_seconds().is_integer(), f"{earlier} then {later}: off the 1 s grid"
        if gap > timedelta(seconds=1):
            # Only coalescing may skip moments: the firing was late past the ones skipped.
            assert fired.occurrence_time >= later - timedelta(seconds=1), (earlier, later)
    assert all(instance.payload["schedule"] == parameters for instance in instances)
    schedule = timers.schedule(ref)
    assert schedule is not None
    assert schedule.fire_count == len(instances)
    assert schedule.last_fired_at is not None
    assert schedule.next_fire_at is not None and schedule.next_fire_at > moments[-1]


def test_a_date_timer_fires_exactly_once_across_two_processes(any_backend_timers: Timers) -> None:
    timers = any_backend_timers
    when = (utcnow() + timedelta(seconds=2)).replace(microsecond=0)
    ref = timers.add_timer(DATE, {"date": when.strftime("%Y-%m-%d %H:%M:%S"), "timezone": "UTC"})

    timers.start_engines(2)
    wait_for(lambda: bool(timers.instances(ref)), 10, "the date timer fired")
    time.sleep(1.5)
    timers.stop_engines()

    instances = timers.instances(ref)
    assert len(instances) == 1
    assert executed_at(instances[0]) == when
    assert instances[0].occurrence_time >= when
    schedule = timers.schedule(ref)
    assert schedule is not None
    assert (schedule.fire_count, schedule.next_fire_at) == (1, None)


def test_a_date_timer_in_the_past_never_fires(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="poundcake.engine.timers")
    when = utcnow() - timedelta(minutes=5)
    ref = timers.add_timer(DATE, {"date": when.strftime("%Y-%m-%d %H:%M:%S")})

    timers.start_engines(2)
    wait_for(lambda: timers.schedule(ref) is not None, 5, "the date timer was scheduled")
    time.sleep(1)
    timers.stop_engines()

    assert timers.instances(ref) == []
    schedule = timers.schedule(ref)
    assert schedule is not None and schedule.next_fire_at is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and ref in r.getMessage()]
    assert len(warnings) == 1


def test_a_cron_timer_every_other_second_fires_on_even_seconds(timers: Timers) -> None:
    parameters = {"second": "*/2"}
    ref = timers.add_timer(CRON, parameters)

    timers.start_engines(2)
    wait_for(lambda: len(timers.instances(ref)) >= 3, 15, "three cron firings")
    timers.stop_engines()

    instances = timers.instances(ref)
    moments = [executed_at(instance) for instance in instances]
    assert all(moment.second % 2 == 0 and moment.microsecond == 0 for moment in moments)
    assert len(set(moments)) == len(moments), "a moment fired twice"
    assert instances[0].payload["schedule"] == parameters


def test_a_released_timer_loses_its_schedule_and_stops_firing(any_backend_timers: Timers) -> None:
    timers = any_backend_timers
    ref = timers.add_timer(INTERVAL, {"unit": "seconds", "delta": 1})
    timers.start_engines(2)
    wait_for(lambda: bool(timers.instances(ref)), 10, "the interval timer fired")

    timers.remove_timer(ref)
    wait_for(lambda: timers.schedule(ref) is None, 5, "the schedule was removed")
    fired = len(timers.instances(ref))
    time.sleep(1.5)
    timers.stop_engines()

    assert len(timers.instances(ref)) == fired


def test_invalid_timers_are_reported_once_and_do_not_stop_the_others(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="poundcake.engine.timers")
    bad_hour = timers.add_timer(CRON, {"hour": 25})
    bad_zone = timers.add_timer(INTERVAL, {"unit": "seconds", "delta": 1, "timezone": "Mars/Base"})
    good = timers.add_timer(INTERVAL, {"unit": "seconds", "delta": 1})

    timers.start_engines(1)
    wait_for(lambda: len(timers.instances(good)) >= 2, 10, "the valid timer fired twice")
    timers.stop_engines()

    for ref in (bad_hour, bad_zone):
        assert timers.schedule(ref) is None
        assert timers.instances(ref) == []
        reports = [
            r for r in caplog.records if r.levelno == logging.ERROR and ref in r.getMessage()
        ]
        assert len(reports) == 1, reports
    assert "hour 25" in next(r.getMessage() for r in caplog.records if bad_hour in r.getMessage())
    fired = [r for r in caplog.records if r.levelno == logging.INFO and "fired" in r.getMessage()]
    assert fired and all(good in r.getMessage() for r in fired)


def test_a_moment_is_claimed_once_and_a_schedule_stored_once(timers: Timers) -> None:
    ref = timers.add_timer(INTERVAL, {"unit": "seconds", "delta": 1})
    trigger = TimerTrigger(ref, INTERVAL, {"unit": "seconds", "delta": 1})
    past = utcnow().replace(microsecond=0) - timedelta(seconds=3)
    with unit_of_work(timers.runtime.sessions) as session:
        add_schedule(session=session, trigger=trigger, next_fire_at=past)

    # A second process that also saw the trigger unscheduled: its insert loses, quietly.
    TimersEngine(timers.runtime, SETTINGS).schedule_trigger(trigger, utcnow())
    with pytest.raises(sa.exc.IntegrityError), unit_of_work(timers.runtime.sessions) as session:
        add_schedule(session=session, trigger=trigger, next_fire_at=past)

    # Both processes read the same due moment; only the first compare-and-set wins.
    now = utcnow()
    with timers.runtime.sessions() as session:
        first_read = due_timers(session=session, now=now, limit=10)
        second_read = due_timers(session=session, now=now, limit=10)
    assert [due.scheduled for due in first_read] == [past]
    following = past + timedelta(seconds=4)
    with unit_of_work(timers.runtime.sessions) as session:
        won = fire_timer(session=session, due=first_read[0], next_fire_at=following, now=now)
    with unit_of_work(timers.runtime.sessions) as session:
        lost = fire_timer(session=session, due=second_read[0], next_fire_at=following, now=now)

    assert won is not None and lost is None
    assert [executed_at(instance) for instance in timers.instances(ref)] == [past]
    schedule = timers.schedule(ref)
    assert schedule is not None
    assert (schedule.next_fire_at, schedule.fire_count) == (following, 1)


def api_get(timers: Timers, path: str, key: str | None) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(timers.runtime, ["api"]))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers = {"St2-Api-Key": key} if key else {}
            return await client.get(path, headers=headers)

    return asyncio.run(get())


def test_the_api_lists_timers_and_gets_one(timers: Timers) -> None:
    interval = timers.add_timer(INTERVAL, {"unit": "minutes", "delta": 5})
    cron = timers.add_timer(CRON, {"minute": 0, "timezone": "Europe/Paris"})
    webhook = timers.add_timer("core.st2.webhook", {"url": "sample"})
    with unit_of_work(timers.runtime.sessions) as session:
        key = create_api_key(session, user="tester").key

    everything = api_get(timers, "/v1/timers", key)
    crons = api_get(timers, "/v1/timers?timer_type=core.st2.CronTimer", key)
    one = api_get(timers, f"/v1/timers/{interval}", key)
    by_id = api_get(timers, f"/v1/timers/{one.json()['id']}", key)

    assert everything.status_code == 200
    assert sorted(timer["ref"] for timer in everything.json()) == sorted([interval, cron])
    assert [timer["ref"] for timer in crons.json()] == [cron]
    assert crons.json()[0]["parameters"] == {"minute": 0, "timezone": "Europe/Paris"}
    assert crons.json()[0]["type"] == CRON
    assert one.status_code == 200
    assert one.json()["parameters"] == {"unit": "minutes", "delta": 5}
    assert by_id.json()["ref"] == interval
    assert api_get(timers, f"/v1/timers/{webhook}", key).status_code == 404
    assert api_get(timers, "/v1/timers/core.nothing", key).status_code == 404
    wrong_type = api_get(timers, "/v1/timers?timer_type=core.st2.webhook", key)
    assert wrong_type.status_code == 400
    assert "not in supported types" in wrong_type.json()["faultstring"]
    assert api_get(timers, "/v1/timers", None).status_code == 401
