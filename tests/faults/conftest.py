"""Fault-injection tests: the product as real processes, broken on purpose.

The long ones (``test_long_*.py``) are collected only with ``POUNDCAKE_LONG_FAULTS=1`` (as
``scripts/fault-tests.sh`` sets); the rest run with the integration tests by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.stack import Product, running_product
from tests.faults.load import cabs
from tests.faults.processes import CrashWatch
from tests.faults.servers import Redis, private_redis

collect_ignore_glob = [] if os.environ.get("POUNDCAKE_LONG_FAULTS") == "1" else ["test_long_*.py"]


@dataclass
class FaultProduct:
    """The whole product on a private Redis, the file its CAB steps append to, and the services
    that crashed (nothing restarts them)."""

    product: Product
    redis: Redis
    effects: Path
    crashes: CrashWatch


@pytest.fixture(scope="session")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProduct]:
    directory = tmp_path_factory.mktemp("faults")
    effects = directory / "side-effects.log"
    with (
        private_redis(directory / "redis") as redis,
        running_product(directory / "product", cabs(effects), redis=redis.url) as product,
        CrashWatch(product) as crashes,
    ):
        yield FaultProduct(product, redis, effects, crashes)
