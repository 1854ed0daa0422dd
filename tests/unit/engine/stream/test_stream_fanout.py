"""The stream's fan-out (bounded backlogs, slow clients dropped) and one client's feed (heartbeats,
catch-up, end event), with a pass-through resolver and an in-memory execution store."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from poundcake.engine.stream.events import (
    HEARTBEAT,
    EndCondition,
    Event,
    EventFilter,
    StreamQuery,
)
from poundcake.engine.stream.fanout import EventFanout
from poundcake.engine.stream.feed import EventFeed

UPDATE = "st2.execution__update"
OUTPUT = "st2.execution.output__create"


class PassThrough:
    """Resolves every message to itself, and remembers which names were worth resolving."""

    def __init__(self) -> None:
        self.resolved: list[str] = []

    def resolve_many(
        self, messages: Sequence[tuple[str, Any]], wanted: Callable[[str], bool]
    ) -> list[list[Event]]:
        return [self._resolve(name, body, wanted) for name, body in messages]

    def _resolve(self, name: str, body: Any, wanted: Callable[[str], bool]) -> list[Event]:
        if not wanted(name):
            return []
        self.resolved.append(name)
        return [Event(name, body)]


class Store:
    """Executions and their output, as the database would hold them."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.output: dict[str, list[dict[str, Any]]] = {}

    def current_execution(self, execution_id: str) -> Event | None:
        found = self.executions.get(execution_id)
        return Event(UPDATE, found) if found else None

    def stored_output(self, execution_id: str) -> list[Event]:
        return [Event(OUTPUT, row) for row in self.output.get(execution_id, [])]


def document(execution_id: str, status: str) -> dict[str, Any]:
    return {"id": execution_id, "status": status, "action": {"ref": "core.local"}}


def chunk(output_id: str, execution_id: str, data: str) -> dict[str, Any]:
    return {"id": output_id, "execution_id": execution_id, "action_ref": "core.local", "data": data}


def tail_query(execution_id: str) -> StreamQuery:
    return StreamQuery(EventFilter.from_query([UPDATE, OUTPUT]), EndCondition(UPDATE, execution_id))


def parse(frames: list[bytes]) -> list[tuple[str, Any] | None]:
    """Frames as (name, body), heartbeats as None."""
    parsed: list[tuple[str, Any] | None] = []
    for frame in frames:
        if frame == HEARTBEAT:
            parsed.append(None)
            continue
        event_line, data_line, *_ = frame.decode().split("\n")
        parsed.append((event_line.removeprefix("event: "), json.loads(data_line[6:])))
    return parsed


async def collect(feed: EventFeed, limit: int = 50, timeout: float = 5) -> list[bytes]:
    frames: list[bytes] = []

    async def read() -> None:
        async for frame in feed.frames():
            frames.append(frame)
            if len(frames) >= limit:
                return

    await asyncio.wait_for(read(), timeout)
    return frames


def test_slow_subscriber_is_dropped_and_the_others_keep_receiving() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough(), backlog=3)
        loop = asyncio.get_running_loop()
        everything = StreamQuery(EventFilter.from_query(["*"]))
        slow = fanout.subscribe(everything, loop)
        fast = fanout.subscribe(everything, loop)
        received = []
        for number in range(6):
            fanout.dispatch(UPDATE, document(f"e{number}", "running"))
            event = await fast.next(1)
            assert event is not None
            received.append(event.body["id"])
        assert received == [f"e{number}" for number in range(6)]
        assert slow.closed and slow.overflowed
        assert not fast.closed
        assert fanout.subscriber_count == 1
        assert await slow.next(1) is None

    asyncio.run(scenario())


def test_next_times_out_without_closing_and_wakes_for_events_from_another_thread() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        subscription = fanout.subscribe(StreamQuery(), asyncio.get_running_loop())
        started = asyncio.get_running_loop().time()
        assert await subscription.next(0.2) is None
        assert asyncio.get_running_loop().time() - started >= 0.19
        assert not subscription.closed
        sender = threading.Timer(0.1, fanout.dispatch, (UPDATE, document("e1", "running")))
        sender.start()
        started = asyncio.get_running_loop().time()
        event = await subscription.next(5)
        assert event is not None and event.body["id"] == "e1"
        assert asyncio.get_running_loop().time() - started < 2
        sender.join()

    asyncio.run(scenario())


def test_only_names_some_subscriber_wants_are_resolved() -> None:
    async def scenario() -> None:
        resolver = PassThrough()
        fanout = EventFanout("memory://", resolver)
        fanout.dispatch(UPDATE, document("e1", "running"))
        assert resolver.resolved == []
        loop = asyncio.get_running_loop()
        subscription = fanout.subscribe(StreamQuery(EventFilter.from_query([OUTPUT])), loop)
        fanout.dispatch(UPDATE, document("e1", "running"))
        fanout.dispatch(OUTPUT, chunk("o1", "e1", "hi\n"))
        fanout.dispatch("st2.announcement__x\nevent: forged", {"message": "no"})
        assert resolver.resolved == [OUTPUT]
        event = await subscription.next(1)
        assert event is not None and event.name == OUTPUT
        assert await subscription.next(0.1) is None

    asyncio.run(scenario())


def test_feed_starts_with_a_heartbeat_and_beats_while_quiet() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        feed = EventFeed(fanout, Store(), StreamQuery(), heartbeat=0.05)
        frames = await collect(feed, limit=3)
        assert frames == [HEARTBEAT] * 3
        assert fanout.subscriber_count == 0

    asyncio.run(scenario())


def test_feed_filters_live_events_and_closes_after_the_end_event() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        store = Store()
        store.executions["e1"] = document("e1", "running")
        feed = EventFeed(fanout, store, tail_query("e1"), heartbeat=5)
        reading = asyncio.create_task(collect(feed))
        while fanout.subscriber_count == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        fanout.dispatch("st2.liveaction__update", {"id": "l1", "status": "running"})
        fanout.dispatch(OUTPUT, chunk("o1", "e1", "line1\n"))
        store.output["e1"] = [chunk("o1", "e1", "line1\n")]
        fanout.dispatch(UPDATE, document("e2", "succeeded"))
        store.executions["e1"] = document("e1", "succeeded")
        fanout.dispatch(UPDATE, document("e1", "succeeded"))
        fanout.dispatch(OUTPUT, chunk("o2", "e1", "after the end\n"))
        frames = parse(await reading)
        assert frames == [
            None,
            (OUTPUT, chunk("o1", "e1", "line1\n")),
            (UPDATE, document("e2", "succeeded")),
            (UPDATE, document("e1", "succeeded")),
        ]
        assert fanout.subscriber_count == 0

    asyncio.run(scenario())


def test_feed_of_an_already_completed_execution_replays_and_closes_at_once() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        store = Store()
        store.executions["e1"] = document("e1", "failed")
        store.output["e1"] = [chunk("o1", "e1", "out\n"), chunk("o2", "e1", "err\n")]
        feed = EventFeed(fanout, store, tail_query("e1"), heartbeat=30)
        frames = parse(await collect(feed, timeout=2))
        assert frames == [
            None,
            (OUTPUT, chunk("o1", "e1", "out\n")),
            (OUTPUT, chunk("o2", "e1", "err\n")),
            (UPDATE, document("e1", "failed")),
        ]

    asyncio.run(scenario())


def test_race_respects_the_filter_but_still_closes() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        store = Store()
        store.executions["e1"] = document("e1", "succeeded")
        store.output["e1"] = [chunk("o1", "e1", "out\n")]
        query = StreamQuery(
            EventFilter.from_query(["st2.execution__create"]), EndCondition(UPDATE, "e1")
        )
        frames = await collect(EventFeed(fanout, store, query, heartbeat=30), timeout=2)
        assert frames == [HEARTBEAT]

    asyncio.run(scenario())


def test_output_is_sent_once_and_late_output_comes_before_the_final_update() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        store = Store()
        store.executions["e1"] = document("e1", "running")
        store.output["e1"] = [chunk("o1", "e1", "early\n")]
        feed = EventFeed(fanout, store, tail_query("e1"), heartbeat=5)
        reading = asyncio.create_task(collect(feed))
        while fanout.subscriber_count == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        fanout.dispatch(OUTPUT, chunk("o1", "e1", "early\n"))
        store.output["e1"].append(chunk("o2", "e1", "late\n"))
        store.executions["e1"] = document("e1", "succeeded")
        fanout.dispatch(UPDATE, document("e1", "succeeded"))
        fanout.dispatch(OUTPUT, chunk("o2", "e1", "late\n"))
        frames = parse(await reading)
        assert frames == [
            None,
            (OUTPUT, chunk("o1", "e1", "early\n")),
            (OUTPUT, chunk("o2", "e1", "late\n")),
            (UPDATE, document("e1", "succeeded")),
        ]

    asyncio.run(scenario())


def test_feed_ends_when_the_fanout_stops() -> None:
    async def scenario() -> None:
        fanout = EventFanout("memory://", PassThrough())
        feed = EventFeed(fanout, Store(), StreamQuery(), heartbeat=5)
        reading = asyncio.create_task(collect(feed))
        while fanout.subscriber_count == 0:
            await asyncio.sleep(0.01)
        fanout.stop()
        assert await asyncio.wait_for(reading, 2) == [HEARTBEAT]

    asyncio.run(scenario())
