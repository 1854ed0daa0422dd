"""Redis logical databases for tests: each test that runs Celery claims one of its own.

Tests run concurrently (several pytest processes, or a developer's run beside CI) must not share a
Redis database: a ``FLUSHDB`` or a Celery worker in one would eat the other's messages. A claim is a
key in database 0 set with ``NX`` and an expiry, so a crashed run frees its database by itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
FIRST_DATABASE = 1
LAST_DATABASE = 15
CLAIM_SECONDS = 3600


def _claim_key(database: int) -> str:
    return f"poundcake-test:redis-db:{database}"


@contextmanager
def claim_redis_database() -> Iterator[int]:
    """Yield a Redis database number no other test holds, flushed before and after use."""
    admin = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    owner = f"{os.getpid()}:{uuid.uuid4().hex}"
    try:
        for database in range(FIRST_DATABASE, LAST_DATABASE + 1):
            if admin.set(_claim_key(database), owner, nx=True, ex=CLAIM_SECONDS):
                break
        else:
            raise RuntimeError("every Redis test database is claimed; is another run stuck?")
        scratch = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=database)
        scratch.flushdb()
        try:
            yield database
        finally:
            scratch.flushdb()
            scratch.close()
            if admin.get(_claim_key(database)) == owner.encode():
                admin.delete(_claim_key(database))
    finally:
        admin.close()


def redis_url(database: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{database}"
