"""The intake's transaction slots: never more at once than the pool's connections, bounded wait."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from poundcake.remediation.api.slots import TransactionSlots


def test_no_more_callers_inside_than_slots() -> None:
    slots = TransactionSlots(2, timeout=0.01)
    inside = threading.Semaphore(0)
    release = threading.Event()

    def hold() -> None:
        inside.release()
        release.wait(timeout=30)

    holders = [threading.Thread(target=slots.run, args=(hold,)) for _ in range(2)]
    for holder in holders:
        holder.start()
    try:
        assert inside.acquire(timeout=30) and inside.acquire(timeout=30)
        with pytest.raises(sa.exc.TimeoutError):
            slots.run(lambda: None)
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=30)
    assert slots.run(lambda: "free") == "free"


def test_a_caller_that_finds_no_slot_in_time_gets_the_pool_timeout() -> None:
    slots = TransactionSlots(1, timeout=0.01)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(timeout=30)

    holder = threading.Thread(target=slots.run, args=(hold,))
    holder.start()
    holding.wait(timeout=30)
    try:
        with pytest.raises(sa.exc.TimeoutError, match="no database connection"):
            slots.run(lambda: None)
    finally:
        release.set()
        holder.join(timeout=30)
    assert slots.run(lambda: 42) == 42


def test_a_slot_is_given_back_when_the_work_raises() -> None:
    slots = TransactionSlots(1, timeout=0.01)

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        slots.run(fail)
    assert slots.run(lambda: "free") == "free"
