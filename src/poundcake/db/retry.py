"""Transactions that MariaDB may legitimately refuse and that are safe to run again.

InnoDB resolves a deadlock by rolling one transaction back (error 1213), and gives up on a lock
wait after ``innodb_lock_wait_timeout`` (1205); SQLite answers "database is locked" when another
writer holds it. Each is retried with a short, growing, jittered pause; any other error is
raised at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.session import unit_of_work

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_MYSQL_ERRORS = frozenset({1205, 1213})
ATTEMPTS = 6


def is_retryable(error: BaseException) -> bool:
    """Tell whether a database error means "try the same transaction again"."""
    if not isinstance(error, sa.exc.DBAPIError) or error.orig is None:
        return False
    args = getattr(error.orig, "args", ())
    if args and args[0] in RETRYABLE_MYSQL_ERRORS:
        return True
    return "database is locked" in str(error.orig)


def in_transaction(
    sessions: sessionmaker[Session], work: Callable[[Session], T], attempts: int = ATTEMPTS
) -> T:
    """Run ``work`` in its own transaction, again after a deadlock or lock timeout."""
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(sessions) as session:
                return work(session)
        except sa.exc.DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            pause = 0.005 * 2**attempt * (1 + random.random())  # noqa: S311 - jitter only
            logger.info("Retrying a transaction after %s (attempt %d)", error.orig, attempt)
            time.sleep(pause)
    raise AssertionError("unreachable")
