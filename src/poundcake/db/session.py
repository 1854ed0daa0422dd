"""Sessions and the unit of work: services flush, the owner of the unit of work commits once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_session_factory(
    engine: Engine, info: Mapping[str, Any] | None = None
) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``; objects stay readable after commit.

    ``info`` becomes every session's ``session.info`` (settings that services consult).
    """
    return sessionmaker(bind=engine, expire_on_commit=False, info=dict(info or {}))


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit once if the block succeeds, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
