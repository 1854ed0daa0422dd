"""The engine's runtime: database engine, sessions, messaging and coordination, from st2.conf."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config
from poundcake.db.engine import check_connection, make_st2_engine
from poundcake.db.session import make_session_factory
from poundcake.engine.coordination.service import start_coordinator, stop_coordinator
from poundcake.engine.executions.completion import EMIT_ACTION_TRIGGERS
from poundcake.engine.messaging import Publisher


@dataclass
class EngineRuntime:
    """What every engine process shares; build one with :func:`make_runtime`."""

    config: St2Config
    engine: sa.Engine
    sessions: sessionmaker[Session]
    publisher: Publisher = field(repr=False)
    _coordinator: Any = field(default=None, repr=False)
    _coordinator_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def coordinator(self) -> Any:
        """The process's tooz coordinator (``[coordination]``), started on first use."""
        with self._coordinator_guard:
            if self._coordinator is None:
                self._coordinator = start_coordinator(self.config.coordination)
            return self._coordinator

    def close(self) -> None:
        """Release connections; leave the service registry."""
        with self._coordinator_guard:
            if self._coordinator is not None:
                stop_coordinator(self._coordinator)
                self._coordinator = None
        self.publisher.close()
        self.engine.dispose()


def make_runtime(config: St2Config, *, pool_size: int = 10) -> EngineRuntime:
    """Connect to the engine's database (checked now) and prepare its messaging."""
    engine = make_st2_engine(config, pool_size=pool_size)
    check_connection(engine, config.database)
    return EngineRuntime(
        config=config,
        engine=engine,
        sessions=make_session_factory(
            engine, info={EMIT_ACTION_TRIGGERS: config.action_sensor.emit_statuses}
        ),
        publisher=Publisher(config.messaging_url),
    )
