"""What ``st2ctl status`` and ``poundcake status`` report besides the processes: the database,
the broker and how much work waits in the queues.

Each probe answers a :class:`Probe` (a name, whether it is fine, one line of detail without
secrets, whether it is required); queue depths come from :mod:`poundcake.probes.queues`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from poundcake.probes.queues import broker_location, queue_depths


@dataclass(frozen=True)
class Probe:
    """One line of a status report."""

    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        """``name: detail`` with a marker when a required part is down."""
        marker = "" if self.ok or not self.required else " (required)"
        return f"{self.name}: {self.detail}{marker}"


def database_probe(name: str, engine: sa.Engine, where: str) -> Probe:
    """Whether ``engine`` answers ``SELECT 1``."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        return Probe(name, False, f"unreachable at {where} ({type(error).__name__})")
    return Probe(name, True, f"ok ({where})")


def broker_probe(
    name: str, url: str, queues: Sequence[str], *, required: bool = True
) -> list[Probe]:
    """Whether the broker at ``url`` answers, and one line per queue with its depth."""
    where = broker_location(url)
    depths = queue_depths(url, queues)
    if depths is None:
        return [Probe(name, False, f"unreachable at {where}", required=required)]
    lines = [Probe(name, True, f"ok ({where})", required=required)]
    lines.extend(
        Probe(f"queue {depth.queue}", True, f"{depth.messages} message(s) waiting", False)
        for depth in depths
    )
    return lines


def count_probe(name: str, engine: sa.Engine, query: sa.Select[Any], what: str) -> Probe:
    """One count from the database, e.g. the outbox of unprocessed deliveries."""
    try:
        with engine.connect() as connection:
            found = connection.scalar(query)
    except sa.exc.SQLAlchemyError as error:
        return Probe(name, False, f"unknown ({type(error).__name__})", required=False)
    return Probe(name, True, f"{int(found or 0)} {what}", required=False)


def all_required_up(probes: Sequence[Probe]) -> bool:
    """True when no required probe failed."""
    return all(probe.ok for probe in probes if probe.required)
