"""Latency from an execution's end to its notify trigger instance.

Starts the engine as deployed (real ``st2api``, ``st2auth``, ``st2scheduler``,
``st2actionrunner``, ``st2rulesengine``, ``st2notifier`` and ``st2workflowengine`` processes on a
scratch MariaDB database and RabbitMQ, with the ``notify_tests`` fixture pack), then runs
``notify_tests.quiet`` N times one after another through the API with an execution-level
``notify`` (``on-complete``, one route) and waits for each one's
``core.st2.generic.notifytrigger`` instance. For each it takes the execution's
``end_timestamp`` (written by the action runner when it records the result) and the instance's
``occurrence_time`` (written by the notifier), both from the database, and prints
p50/p90/max of the difference.

Usage: .venv/bin/python bench/notifier_latency.py [--count 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orquesta import percentile
from tests.integration.support.notify_cli import notify_engine
from tests.integration.support.st2cli import api_key_for, eventually

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.triggers.models import TriggerInstanceDB

NOTIFY_TRIGGER = "core.st2.generic.notifytrigger"


def _notified(db_engine: sa.Engine, execution_id: str) -> float | None:
    """Seconds from the execution's end to its notify trigger instance, once both exist."""
    with db_engine.connect() as connection:
        ended = connection.scalar(
            sa.select(ExecutionDB.end_timestamp).where(ExecutionDB.id == execution_id)
        )
        instances = connection.execute(
            sa.select(TriggerInstanceDB.occurrence_time, TriggerInstanceDB.payload).where(
                TriggerInstanceDB.trigger == NOTIFY_TRIGGER
            )
        ).all()
    for occurred, payload in instances:
        if ended is not None and (payload or {}).get("execution_id") == execution_id:
            return (occurred - ended).total_seconds()
    return None


def measure(count: int) -> dict[str, Any]:
    """Run ``count`` notified executions; return the latency figures in milliseconds."""
    with tempfile.TemporaryDirectory() as scratch, notify_engine(Path(scratch)) as engine:
        db_engine = make_st2_engine(load_st2_config(engine.config_path), pool_size=1)
        headers = {"St2-Api-Key": api_key_for(engine)}
        latencies = []
        with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as api:
            for _ in range(count):
                body = {
                    "action": "notify_tests.quiet",
                    "notify": {"on-complete": {"routes": ["bench"]}},
                }
                created = api.post("/executions", json=body)
                created.raise_for_status()
                execution_id = created.json()["id"]
                latency = eventually(
                    lambda execution_id=execution_id: _notified(db_engine, execution_id),
                    "the notify trigger instance",
                )
                latencies.append(latency * 1000)
                time.sleep(0.05)
        db_engine.dispose()
    return {
        "notify_latency_p50_ms": round(percentile(latencies, 0.5), 1),
        "notify_latency_p90_ms": round(percentile(latencies, 0.9), 1),
        "notify_latency_max_ms": round(max(latencies), 1),
        "count": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    figures = measure(arguments.count)
    for name, value in figures.items():
        print(f"{name}: {value}")
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
