"""The engine's runtime: database engine, sessions and messaging, built from st2.conf."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config
from poundcake.db.engine import check_connection, make_st2_engine
from poundcake.db.session import make_session_factory
from poundcake.engine.executions.completion import EMIT_ACTION_TRIGGERS
from poundcake.engine.messaging import Publisher


@dataclass
class EngineRuntime:
    """What every engine process shares; build one with :func:`make_runtime`."""

    config: St2Config
    engine: sa.Engine
    sessions: sessionmaker[Session]
    publisher: Publisher = field(repr=False)

    def close(self) -> None:
        """Release connections."""
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
