"""What the admission guards add to the dispatch stage, per alert, on MariaDB.

Starts the product (as ``alert_to_action.py`` does) with ``--cabs`` CABs applied: one matches the
alerts and uses every guard (budget per instance, cooldown, flap, target lock, CAB storm limit,
blast radius per cluster); the others match other alert names, as most CABs do for any one
alert. Then, in this process, for ``--alerts`` new episodes stored as intake stores them, it runs
the dispatch stage's decision (:func:`poundcake.remediation.dispatch.decide`, one transaction
with the alert row locked; no engine call) and, separately, the guard step alone
(:func:`poundcake.remediation.guards.service.admit` in its own transaction, the alert locked, on
a twin episode), and as a baseline the same transaction that only locks the alert row. It prints
p50, p90 and max of each in milliseconds, the guard step's CPU time in this process and its SQL
statements per alert, and the machine's load: on a loaded machine the wall time is mostly
waiting for MariaDB, round trip by round trip.

Usage: .venv/bin/python bench/guards_cost.py [--alerts 300] [--cabs 10]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from tests.e2e.stack import Product, running_product

from poundcake.config import Settings, load_poundcake_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.retry import in_transaction
from poundcake.db.session import make_session_factory
from poundcake.remediation.alerts.ids import alert_id as episode_id
from poundcake.remediation.alerts.lifecycle import lock_alert
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.dispatch import _payload, decide
from poundcake.remediation.guards.service import GuardLimits, admit

STEP = {"action": "core.noop"}


# Every guard, with limits no alert of a run reaches (each alert has its own instance).
EVERY_GUARD: dict[str, Any] = {
    "group": "{{ alert.labels.instance }}",
    "max_runs": 5,
    "cooldown": "1s",
    "flap": {"max_episodes": 5, "window": "5m"},
    "target": "{{ alert.labels.instance }}",
    "storm": {"max_alerts": 100000, "window": "1m"},
    "blast_radius": {"group": "{{ alert.labels.cluster }}", "max_share": 1.0},
}


def cabs(count: int) -> dict[str, dict[str, Any]]:
    guarded = {
        "name": "bench_guarded",
        "alert_name_pattern": "^BenchGuards$",
        **EVERY_GUARD,
        "steps": [STEP],
    }
    others = {
        f"bench_other_{n}": {
            "name": f"bench_other_{n}",
            "alert_name_pattern": f"^BenchOther{n}$",
            "steps": [STEP],
        }
        for n in range(count - 1)
    }
    return {"bench_guarded": guarded, **others}


def store_episode(sessions: sessionmaker[Session], instance: str) -> tuple[str, int]:
    now = datetime.now(UTC)
    fingerprint = uuid.uuid4().hex[:16]
    identifier = episode_id(fingerprint, now)
    labels = {"alertname": "BenchGuards", "instance": instance, "cluster": "bench"}
    with sessions.begin() as session:
        session.add(
            Alert(
                id=identifier,
                fingerprint=fingerprint,
                starts_at=now,
                alert_name="BenchGuards",
                severity="warning",
                alertmanager_status="firing",
                state="received",
                labels=labels,
                annotations={},
                request_id="bench",
                last_request_id="bench",
                request_ids=["bench"],
                delivery_count=1,
                created_at=now,
                updated_at=now,
            )
        )
        delivery = AlertDelivery(
            alert_id=identifier,
            request_id="bench",
            alertmanager_status="firing",
            received_at=now,
            attempts=0,
        )
        session.add(delivery)
        session.flush()
        return identifier, delivery.id


def guard_step(session: Session, identifier: str, delivery_id: int) -> None:
    alert = lock_alert(session, identifier)
    delivery = session.get(AlertDelivery, delivery_id)
    assert alert is not None and delivery is not None
    payload = _payload(alert, delivery, None, [])
    admit(session, alert, payload, request_id="bench", limits=GuardLimits())


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _decide(session: Session, delivery_id: int) -> None:
    decide(session, delivery_id, GuardLimits())


def lock_only(session: Session, identifier: str) -> None:
    """The baseline: the same transaction with the alert row locked, and nothing else."""
    lock_alert(session, identifier)


def measure(sessions: sessionmaker[Session], alerts: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"decide": [], "guard_step": [], "lock_only": []}
    cpu: list[float] = []
    statements = [0]
    bind = sessions.kw["bind"]

    def count(*_args: Any) -> None:
        statements[0] += 1

    for n in range(alerts):
        _, delivery_id = store_episode(sessions, f"node-{n}")
        started = time.perf_counter()
        in_transaction(sessions, functools.partial(_decide, delivery_id=delivery_id))
        times["decide"].append(time.perf_counter() - started)
        twin, twin_delivery = store_episode(sessions, f"twin-{n}")
        sa.event.listen(bind, "before_cursor_execute", count)
        started, cpu_started = time.perf_counter(), time.process_time()
        in_transaction(
            sessions, functools.partial(guard_step, identifier=twin, delivery_id=twin_delivery)
        )
        times["guard_step"].append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        sa.event.remove(bind, "before_cursor_execute", count)
        started = time.perf_counter()
        in_transaction(sessions, functools.partial(lock_only, identifier=twin))
        times["lock_only"].append(time.perf_counter() - started)
    result: dict[str, Any] = {name: figures(samples) for name, samples in times.items()}
    result["guard_step"]["cpu_p50_ms"] = round(statistics.median(cpu) * 1000, 2)
    result["guard_step"]["statements_per_alert"] = round(statements[0] / alerts, 1)
    return result


def measure_on(product: Product, alerts: int, profile: cProfile.Profile | None = None) -> Any:
    """Stop ``product``'s worker (this process decides; no worker races it) and measure."""
    product.stop("poundcake-worker")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:3306/{product.database}",
        ST2_TABLE_PREFIX="",
    )
    db_engine = make_poundcake_engine(load_poundcake_config(settings), pool_size=2)
    try:
        if profile is not None:
            profile.enable()
        result = measure(make_session_factory(db_engine), alerts)
        if profile is not None:
            profile.disable()
    finally:
        db_engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--cabs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args()
    profile = cProfile.Profile() if arguments.profile else None
    with (
        tempfile.TemporaryDirectory(prefix="pc-bench-guards-") as directory,
        running_product(Path(directory), cabs(arguments.cabs)) as product,
    ):
        result = measure_on(product, arguments.alerts, profile)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(35)
    result["load_average"] = [round(value, 2) for value in os.getloadavg()]
    result["alerts"], result["cabs"] = arguments.alerts, arguments.cabs
    print(json.dumps(result, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
