"""From Alertmanager's 202 to the first remediation step running, at a steady alert rate.

Starts the whole product as processes on real MariaDB, RabbitMQ and Redis with the shipped
defaults, as the README deploys it (every engine service ``st2ctl start`` starts, one of each,
with the engine's default st2.conf settings; poundcake-api, poundcake-worker and poundcake-beat
with PoundCake's defaults: none of the test suite's shortened poll intervals), applies one CAB
whose one step is ``core.noop``, then sends 1-alert Alertmanager notifications (each a new
episode) at ``--rate`` per second for ``--seconds``. For each alert it takes the time
poundcake-api answered 202 and the time the engine recorded the CAB's first step as
``running`` (the execution's status log), and prints p50, p90, p99 and max of the difference
over every alert sent: an alert refused or whose first step never ran within ``--wait``
seconds counts as never (infinitely late), so losing more than 1% makes the p99 "never".
Each alert costs the engine a trigger instance, a rule evaluation, the CAB's workflow and its
step (two executions and two completion triggers), so the rate the pipeline sustains is bounded
by the engine's execution throughput (``bench/engine_throughput.py``).

With ``--guarded`` that CAB carries every admission guard (a budget and cooldown per instance,
the flap guard, a target lock per instance, a storm limit and a blast radius per cluster), with
limits no alert of the run reaches, so each alert pays for every check and none is held.

It prints each service's CPU per alert (a service's whole process tree, with MariaDB's, RabbitMQ's
and Redis's) from the first alert sent until every step left the queue; ``--profile DIR``
samples every service with py-spy meanwhile. While the storm runs it reads nothing but one
count a second, so reading the results does not load the product.

Then it measures what the guards add per alert on the same product and database, as
``bench/guards_cost.py`` does: the worker is stopped and this process runs the guard step
(``guards.service.admit``, alert row locked) for ``--guard-alerts`` new episodes of a CAB
using every guard, beside nine other CABs, and the same transaction that only locks the alert
row. The guards' cost is the difference of the two p50s.

Usage: .venv/bin/python bench/alert_to_action.py [--rate 50] [--seconds 20] [--wait 300]
       [--guarded] [--guard-alerts 300]
Needs MariaDB, RabbitMQ and Redis like the test suite (./test.sh starts them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NEVER = float("inf")

from bench.guards_cost import EVERY_GUARD, measure_on  # noqa: E402
from bench.guards_cost import cabs as guarded_cabs  # noqa: E402
from bench.loadgen import load_average, own_cpu_seconds  # noqa: E402
from bench.processes import cpu_of, print_cpu, profiled, server_pids  # noqa: E402
from tests.e2e.stack import TOKEN, Product, running_product  # noqa: E402

CAB: dict[str, Any] = {
    "name": "bench_first_step",
    "alert_name_pattern": "^BenchAlertToAction$",
    "steps": [{"name": "first", "action": "core.noop"}],
}


def notification(fingerprint: str) -> dict[str, Any]:
    labels = {
        "alertname": "BenchAlertToAction",
        "severity": "warning",
        "instance": fingerprint,
        "cluster": "bench",
    }
    return {
        "version": "4",
        "groupKey": f"{{}}:{{instance={fingerprint!r}}}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "poundcake",
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.bench/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def send(client: httpx.Client, rate: float, seconds: float) -> tuple[dict[str, float], list[int]]:
    """Send at ``rate`` per second through ``client`` (poundcake-api's, its connections kept as
    Alertmanager keeps them); return request_id -> time of the 202, and other statuses."""
    acked: dict[str, float] = {}
    failures: list[int] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def one() -> None:
        payload = notification(uuid.uuid4().hex[:16])
        try:
            response = client.post("/api/v1/webhook", json=payload)
        except httpx.TransportError:
            # A kept-alive connection the server closed as this request left (its idle
            # timeout): Alertmanager retries a failed notification, and so does this sender.
            response = client.post("/api/v1/webhook", json=payload)
        now = time.time()
        with lock:
            if response.status_code == 202:
                acked[response.json()["request_id"]] = now
            else:
                failures.append(response.status_code)

    interval = 1.0 / rate
    start = time.monotonic()
    for index in range(int(rate * seconds)):
        delay = start + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return acked, failures


STAGES = (
    ("dispatched", "the worker dispatched it (trigger instance created)"),
    ("enforced", "the rules engine requested the CAB's workflow"),
    ("workflow_running", "the workflow running (scheduler, runner)"),
    ("step_requested", "its first step requested"),
    ("step_running", "the first step running (scheduler, runner)"),
)


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _running_at(execution: dict[str, Any]) -> float | None:
    for entry in execution.get("log", []):
        if entry.get("status") == "running":
            return _stamp(entry["timestamp"])
    return None


def stages(api: httpx.Client, engine: httpx.Client, request_id: str) -> dict[str, float] | None:
    """When each stage of the alert's path happened (epoch seconds, the engine's and
    PoundCake's own records), if its first step ran."""
    trail = api.get(f"/api/v1/requests/{request_id}").json().get("trail") or {}
    for alert in trail.get("alerts", []):
        remediation = alert["remediation"]
        for workflow in remediation["executions"]:
            if not workflow["steps"]:
                return None
            step = engine.get(f"/executions/{workflow['steps'][0]['id']}").json()
            found = {
                "dispatched": _stamp(
                    (remediation.get("trigger_instance") or {}).get("occurrence_time")
                ),
                "enforced": _stamp(workflow.get("start_timestamp")),
                "workflow_running": _running_at(engine.get(f"/executions/{workflow['id']}").json()),
                "step_requested": _stamp(step.get("start_timestamp")),
                "step_running": _running_at(step),
            }
            if found["step_running"] is None:
                return None
            return {name: value for name, value in found.items() if value is not None}
    return None


def steps_settled(product: Product, count: int, wait: float) -> bool:
    """Wait until ``count`` steps have left the queue, by one cheap count a second read from the
    database (reading every alert's trail while the storm runs would load the product)."""
    query = sa.text(
        "SELECT COUNT(*) FROM execution_db WHERE action = 'core.noop' "
        "AND status NOT IN ('requested', 'scheduled', 'delayed')"
    )
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{product.database}")
    deadline = time.monotonic() + wait
    try:
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                if connection.execute(query).scalar_one() >= count:
                    return True
                connection.rollback()
                time.sleep(1)
        return False
    finally:
        engine.dispose()


def read_stages(
    api: httpx.Client, engine: httpx.Client, acked: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Each alert's stages, the 202 included (the engine's own records, so reading them after
    the storm changes nothing); alerts whose step never ran are left out."""
    found = {}
    for request_id, at in acked.items():
        times = stages(api, engine, request_id)
        if times is not None:
            found[request_id] = {"accepted": at, **times}
    return found


def print_stages(found: dict[str, dict[str, float]]) -> None:
    """The p50 and p90 of each stage's share of the path."""
    print("where the time goes, per stage (from the stage before):")
    previous = "accepted"
    for name, meaning in STAGES:
        spans = [
            (times[name] - times[previous]) * 1000
            for times in found.values()
            if name in times and previous in times
        ]
        if spans:
            print(
                f"  {meaning:<56} p50 {statistics.median(spans):>8.0f} ms, "
                f"p90 {percentile(spans, 0.9):>8.0f} ms"
            )
        previous = name


def services_of(product: Product) -> dict[str, int]:
    """The product's processes by service name: PoundCake's and the engine's."""
    found = {name: process.pid for name, process in product.processes.items()}
    found.update({name: process.pid for name, process in product.engine.processes.items()})
    found.pop("alertmanager", None)
    return found


def clients(product: Product) -> tuple[httpx.Client, httpx.Client]:
    """Kept-alive clients of poundcake-api (to send, then read the results) and st2api."""
    api = httpx.Client(
        base_url=product.api_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    engine = httpx.Client(
        base_url=product.engine.api_url, headers={"St2-Api-Key": product.api_key}, timeout=30
    )
    return api, engine


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def shown(milliseconds: float) -> str:
    return "never" if milliseconds == NEVER else f"{milliseconds:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for steps")
    parser.add_argument("--guarded", action="store_true", help="the CAB uses every guard")
    parser.add_argument(
        "--guard-alerts", type=int, default=300, help="episodes for the guards' cost (0: skip)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of every service here")
    parser.add_argument(
        "--profile-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph"
    )
    options = parser.parse_args()
    cab = CAB | EVERY_GUARD if options.guarded else CAB
    applied = {cab["name"]: cab, **(guarded_cabs(10) if options.guard_alerts else {})}
    guards: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-alert-to-action-") as directory:
        print(f"starting the engine, PoundCake and Alertmanager ...; {load_average()}", flush=True)
        with running_product(Path(directory), applied, shipped_defaults=True) as product:
            api, engine = clients(product)
            services = services_of(product)
            pids = services | server_pids()
            before, started = cpu_of(pids), time.monotonic()
            cpu = own_cpu_seconds()
            with profiled(services, options.profile, options.profile_format):
                acked, failures = send(api, options.rate, options.seconds)
                sender_cpu = own_cpu_seconds() - cpu
                print(
                    f"sent {len(acked) + len(failures)} alerts; {len(failures)} not 202 "
                    f"{failures[:5]}; the sender (this process) used {sender_cpu:.2f} s of CPU; "
                    f"{load_average()}",
                    flush=True,
                )
                settled = steps_settled(product, len(acked), options.wait)
            print_cpu(before, cpu_of(pids), time.monotonic() - started, len(acked), "alert")
            if not settled:
                print(f"not every first step ran within {options.wait:g} s")
            found = read_stages(api, engine, acked)
            latencies = {
                key: times["step_running"] - times["accepted"] for key, times in found.items()
            }
            print_stages(found)
            api.close()
            engine.close()
            if options.guard_alerts:
                guards = measure_on(product, options.guard_alerts) | {"cabs": len(applied)}
    lost = len(acked) - len(latencies) + len(failures)
    values = [value * 1000 for value in latencies.values()] + [NEVER] * lost
    if not values:
        raise SystemExit("no alert was sent")
    print(
        f"202 -> first step running at {options.rate:g} alerts/s, {len(values)} alerts "
        f"({lost} never ran): p50 {shown(statistics.median(values))}, "
        f"p90 {shown(percentile(values, 0.9))}, p99 {shown(percentile(values, 0.99))}, "
        f"max {shown(max(values))}; {load_average()}"
    )
    added = None
    if guards:
        step, baseline = guards["guard_step"], guards["lock_only"]
        added = max(0.0, step["p50_ms"] - baseline["p50_ms"])
        print(
            f"the guards add {added:.1f} ms p50 per alert ({options.guard_alerts} episodes, "
            f"{guards['cabs']} CABs, one using every guard): guard step p50 {step['p50_ms']} ms, "
            f"p90 {step['p90_ms']} ms, {step['statements_per_alert']} SQL statements and "
            f"{step['cpu_p50_ms']} ms of CPU; lock-only transaction p50 "
            f"{baseline['p50_ms']} ms; {load_average()}"
        )
    if options.json:
        at = f"at {options.rate:g} alerts/s"
        figures = [
            (f"202 -> first step p50 {at}", statistics.median(values), "ms", 200),
            (
                f"202 -> first step p99 {at} (lost count as never)",
                percentile(values, 0.99),
                "ms",
                1000,
            ),
            ("alerts not remediated or not 202", lost, "", 0),
        ]
        if added is not None:
            figures.append(("what the guards add per alert, p50", added, "ms", 10))
        keys = ("figure", "value", "unit", "goal")
        rows = [dict(zip(keys, row, strict=True)) | {"better": "lower"} for row in figures]
        options.json.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
