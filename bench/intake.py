"""Alertmanager intake: poundcake-api against a bare FastAPI endpoint, on the same MariaDB.

Creates a scratch MariaDB database with the engine's and PoundCake's schemas, then starts two
uvicorn servers in subprocesses (one process each, access log off, the same database engine
settings from ``poundcake.db.engine.make_engine``):

* ``poundcake-api`` (``create_app``): bearer token, request id, one transaction per request with
  the API call, the alert upserts and the deliveries; the task queue is a no-op unless
  ``--with-enqueue``;
* a bare FastAPI endpoint: the payload validated by a pydantic model, one INSERT per alert into a
  scratch table, one commit per request.

One asyncio process drives them with keep-alive httpx connections, phase by phase, ``--rounds``
times each, the two servers taking turns within a round (the machine's other load then hits
both alike; medians are reported): the peak requests/s with 1-alert payloads and the peak
alerts/s with 100-alert payloads (closed loop, ``--concurrency`` connections), then the ack
latency (request scheduled -> response, open loop) at half of each server's median peak. The
server's CPU time per request is read from ``/proc``. Payloads come from a pool of distinct
notifications cycled over, so later passes are replays of known episodes (valid load: the same
payload delivered again). Non-2xx answers are counted; the rows are counted at the end. The
database is dropped afterwards unless ``--keep``.

Usage: .venv/bin/python bench/intake.py [--seconds 5] [--rounds 3] [--concurrency 16]
                                        [--with-enqueue] [--keep]
Needs MariaDB (root on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poundcake.config import load_poundcake_config  # noqa: E402
from poundcake.db.engine import make_engine  # noqa: E402
from poundcake.db.types import UTCDateTime  # noqa: E402

TOKEN = "bench-intake-token-0d9f3a"
ALERTS_PER_BIG_PAYLOAD = 100
SMALL_POOL = 5000
BIG_POOL = 200
ENGINE_POOL_SIZE = 10
BARE_TABLE = "bench_bare_alerts"


# --- the two applications (built inside the uvicorn subprocesses) ---------------------------


def poundcake_app() -> FastAPI:
    """poundcake-api on the configuration in the environment."""
    from poundcake.remediation.api.app import create_app

    enqueue = None if os.environ.get("BENCH_WITH_ENQUEUE") else (lambda _ids: None)
    return create_app(load_poundcake_config(), enqueue=enqueue)


class BareAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str


class BareNotification(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str
    status: str
    receiver: str
    groupKey: str  # noqa: N815
    alerts: list[BareAlert]


BARE_METADATA = sa.MetaData()
BARE_ALERTS = sa.Table(
    BARE_TABLE,
    BARE_METADATA,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("starts_at", UTCDateTime(), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)


def bare_app() -> FastAPI:
    """A bare endpoint: pydantic validation, one INSERT per alert, one commit."""
    engine = make_engine(sa.make_url(os.environ["DATABASE_URL"]), pool_size=ENGINE_POOL_SIZE)
    insert = sa.insert(BARE_ALERTS)
    app = FastAPI()

    @app.post("/api/v1/webhook", status_code=202)
    def webhook(body: BareNotification) -> JSONResponse:
        now = datetime.now(UTC)
        with engine.begin() as connection:
            for alert in body.alerts:
                connection.execute(
                    insert,
                    {
                        "fingerprint": alert.fingerprint,
                        "status": alert.status,
                        "starts_at": alert.startsAt,
                        "labels": alert.labels,
                        "annotations": alert.annotations,
                        "received_at": now,
                    },
                )
        return JSONResponse({"accepted": len(body.alerts)}, status_code=202)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- payloads -------------------------------------------------------------------------------


def notification(first: int, count: int) -> bytes:
    """A version 4 notification of ``count`` alerts (episodes ``first`` ...)."""
    started = datetime(2026, 5, 1, tzinfo=UTC)
    alerts = []
    for number in range(first, first + count):
        labels = {
            "alertname": f"Bench{number % 50}",
            "instance": f"host-{number:06d}:9100",
            "job": "node",
            "severity": ("critical", "warning", "info")[number % 3],
        }
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"Alert {number} fired", "runbook_url": "http://rb/x"},
                "startsAt": (started + timedelta(seconds=number))
                .isoformat()
                .replace("+00:00", ".123456789Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus:9090/graph?g0.expr=up%7Bn%3D{number}%7D",
                "fingerprint": f"{number:016x}",
            }
        )
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Bench{first % 50}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "poundcake",
        "groupLabels": {"alertname": f"Bench{first % 50}"},
        "commonLabels": {"job": "node"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "notification_reason": "first notification",
        "alerts": alerts,
    }
    return json.dumps(body).encode()


# --- load -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one phase measured on one server."""

    seconds: float = 0.0
    requests: int = 0
    alerts: int = 0
    non_2xx: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    server_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0

    @property
    def alerts_per_second(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu * 1000 / self.requests if self.requests else float("nan")

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


@dataclass
class Server:
    """One uvicorn subprocess."""

    name: str
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Driver:
    """Sends notifications to one server over keep-alive connections."""

    def __init__(self, server: Server, concurrency: int) -> None:
        self.server = server
        self.concurrency = concurrency
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.client = httpx.AsyncClient(
            base_url=server.url,
            timeout=60,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        )
        self.cursor: dict[int, int] = {}

    async def close(self) -> None:
        await self.client.aclose()

    def _next(self, pool: list[bytes]) -> bytes:
        position = self.cursor.get(id(pool), 0)
        self.cursor[id(pool)] = position + 1
        return pool[position % len(pool)]

    async def _send(self, body: bytes, size: int, outcome: Outcome, scheduled: float) -> None:
        try:
            response = await self.client.post("/api/v1/webhook", content=body, headers=self.headers)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
            outcome.transport_errors += 1
        outcome.latencies.append(time.perf_counter() - scheduled)
        outcome.requests += 1
        if 200 <= status < 300:
            outcome.alerts += size
        else:
            outcome.non_2xx += 1
            outcome.server_errors += status >= 500

    async def closed_loop(self, pool: list[bytes], size: int, seconds: float) -> Outcome:
        """As many requests as ``concurrency`` clients can send back to back."""
        outcome = Outcome()
        deadline = time.perf_counter() + seconds

        async def client_loop() -> None:
            while time.perf_counter() < deadline:
                await self._send(self._next(pool), size, outcome, time.perf_counter())

        cpu, started = self.server.cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(self.concurrency)))
        outcome.seconds = time.perf_counter() - started
        outcome.server_cpu = self.server.cpu_seconds() - cpu
        return outcome

    async def open_loop(self, pool: list[bytes], size: int, rate: float, seconds: float) -> Outcome:
        """Requests started at a fixed rate; latency counted from the scheduled start."""
        outcome = Outcome()
        rate = max(rate, 1.0)
        tasks = []
        cpu, started = self.server.cpu_seconds(), time.perf_counter()
        for index in range(max(1, int(rate * seconds))):
            scheduled = started + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(self._send(self._next(pool), size, outcome, scheduled))
            )
        await asyncio.gather(*tasks)
        outcome.seconds = time.perf_counter() - started
        outcome.server_cpu = self.server.cpu_seconds() - cpu
        return outcome


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(name: str, factory: str, environment: dict[str, str]) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", f"bench.intake:{factory}", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
            # Connections stay idle while the other server is measured: keep them open.
            *("--timeout-keep-alive", "300"),
        ],
        cwd=ROOT,
        env=environment,
    )
    server = Server(name, process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{factory} exited with {process.returncode}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit(f"{factory} did not start")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


# --- the run --------------------------------------------------------------------------------

PHASES = ("peak, 1 alert", "peak, 100 alerts", "half peak, 1 alert", "half peak, 100 alerts")


async def run_phases(
    servers: list[Server], args: argparse.Namespace, pools: dict[int, list[bytes]]
) -> dict[str, dict[str, list[Outcome]]]:
    """Every phase, ``--rounds`` times, the servers taking turns within each round."""
    results: dict[str, dict[str, list[Outcome]]] = {
        s.name: {p: [] for p in PHASES} for s in servers
    }
    drivers = {server.name: Driver(server, args.concurrency) for server in servers}
    try:
        for driver in drivers.values():
            await driver.closed_loop(pools[1], 1, 1.0)
        for phase in PHASES:
            size = 1 if phase.endswith("1 alert") else ALERTS_PER_BIG_PAYLOAD
            for _ in range(args.rounds):
                for name, driver in drivers.items():
                    if phase.startswith("peak"):
                        outcome = await driver.closed_loop(pools[size], size, args.seconds)
                    else:
                        peak = statistics.median(
                            o.requests_per_second for o in results[name][f"peak, {phase[11:]}"]
                        )
                        outcome = await driver.open_loop(pools[size], size, peak / 2, args.seconds)
                    results[name][phase].append(outcome)
                    print(
                        f"  {phase:<22} {name:<14} {outcome.requests_per_second:>8,.1f} req/s "
                        f"{outcome.alerts_per_second:>9,.0f} alerts/s  p50 "
                        f"{outcome.percentile(0.5):7.1f} ms  p99 {outcome.percentile(0.99):7.1f} ms"
                        f"  {outcome.cpu_ms_per_request:5.2f} ms CPU/request"
                        f"  non-2xx {outcome.non_2xx}",
                        flush=True,
                    )
    finally:
        for driver in drivers.values():
            await driver.close()
    return results


def report(
    results: dict[str, dict[str, list[Outcome]]], args: argparse.Namespace, database: str
) -> None:
    bare, ours = results["bare"], results["poundcake-api"]

    def median(outcomes: list[Outcome], measure: str) -> float:
        values = [
            getattr(o, measure)
            if not measure.startswith("p")
            else o.percentile(float(measure[1:]) / 100)
            for o in outcomes
        ]
        return statistics.median(values)

    def row(label: str, phase: str, measure: str, goal: str = "", ratio: bool = False) -> None:
        left, right = median(bare[phase], measure), median(ours[phase], measure)
        shown = f"{right / left:.2f}" if ratio and left else ""
        print(f"{label:<46}{left:>13,.1f}{right:>15,.1f}{shown:>8}{goal:>10}")

    print()
    print(
        f"Alertmanager intake on MariaDB ({database}): median of {args.rounds} rounds of "
        f"{args.seconds:g} s per phase, {args.concurrency} connections at peak, "
        "one uvicorn process per server"
    )
    print(f"{'':<46}{'bare FastAPI':>13}{'poundcake-api':>15}{'ratio':>8}{'goal':>10}")
    row(
        "peak requests/s, 1-alert payloads", "peak, 1 alert", "requests_per_second", ">= 0.60", True
    )
    row(
        "peak alerts/s, 100-alert payloads",
        "peak, 100 alerts",
        "alerts_per_second",
        ">= 0.50",
        True,
    )
    row("server CPU ms per request, 1 alert (peak)", "peak, 1 alert", "cpu_ms_per_request")
    row("server CPU ms per request, 100 alerts (peak)", "peak, 100 alerts", "cpu_ms_per_request")
    for phase, goal in (("half peak, 1 alert", "<= 50"), ("half peak, 100 alerts", "")):
        row(f"{phase}: requests/s offered", phase, "requests_per_second")
        row(f"{phase}: ack p50 ms", phase, "p50")
        row(f"{phase}: ack p99 ms", phase, "p99", goal)
    for label, measure in (
        ("non-2xx answers (all phases)", "non_2xx"),
        ("  of which 5xx", "server_errors"),
        ("  of which no answer (transport error)", "transport_errors"),
    ):
        left = sum(getattr(o, measure) for outcomes in bare.values() for o in outcomes)
        right = sum(getattr(o, measure) for outcomes in ours.values() for o in outcomes)
        print(f"{label:<46}{left:>13,}{right:>15,}")


def json_figures(results: dict[str, dict[str, list[Outcome]]]) -> list[dict[str, object]]:
    """The figures with a goal, for ``--json``: medians over the rounds, as in the table."""
    bare, ours = results["bare"], results["poundcake-api"]

    def median(outcomes: list[Outcome], measure: str) -> float:
        return statistics.median(getattr(outcome, measure) for outcome in outcomes)

    def ratio(phase: str, measure: str) -> float:
        return median(ours[phase], measure) / median(bare[phase], measure)

    p99 = statistics.median(o.percentile(0.99) for o in ours["half peak, 1 alert"])
    errors = sum(o.server_errors for outcomes in ours.values() for o in outcomes)
    return [
        {
            "figure": "requests/s vs bare FastAPI, 1-alert payloads",
            "value": ratio("peak, 1 alert", "requests_per_second"),
            "unit": "x",
            "goal": 0.6,
            "better": "higher",
        },
        {
            "figure": "alerts/s vs bare FastAPI, 100-alert payloads",
            "value": ratio("peak, 100 alerts", "alerts_per_second"),
            "unit": "x",
            "goal": 0.5,
            "better": "higher",
        },
        {
            "figure": "ack p99 at half peak, 1-alert payloads",
            "value": p99,
            "unit": "ms",
            "goal": 50,
            "better": "lower",
        },
        {"figure": "5xx answers", "value": errors, "unit": "", "goal": 0, "better": "lower"},
    ]


def count_rows(url: sa.URL) -> dict[str, int]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in (
                    BARE_TABLE,
                    "poundcake_alerts",
                    "poundcake_alert_deliveries",
                    "poundcake_api_calls",
                )
            }
    finally:
        engine.dispose()


def prepare(database: str, workdir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Create both schemas and the bare table; return the servers' environment."""
    from poundcake.config import load_st2_config
    from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema

    conf = workdir / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {database}\n"
    )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POUNDCAKE_", "ST2_"))},
        "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{database}",
        "ST2_TABLE_PREFIX": "",
        "POUNDCAKE_DATA_DIR": str(workdir / "data"),
        "POUNDCAKE_WEBHOOK_TOKENS": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    if args.with_enqueue:
        environment["BENCH_WITH_ENQUEUE"] = "1"
    for name in ("DATABASE_URL", "ST2_TABLE_PREFIX", "POUNDCAKE_DATA_DIR"):
        os.environ[name] = environment[name]
    setup_engine_schema(load_st2_config(conf))
    setup_poundcake_schema(load_poundcake_config())
    engine = make_engine(sa.make_url(environment["DATABASE_URL"]), pool_size=1)
    BARE_METADATA.create_all(engine)
    engine.dispose()
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at peak")
    parser.add_argument("--with-enqueue", action="store_true", help="call the real task queue")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database

    database = f"pcbench_{uuid.uuid4().hex[:8]}"
    create_fixture_database(database)
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix="pcbench-intake-"))
    try:
        environment = prepare(database, workdir, args)
        pools = {
            1: [notification(i, 1) for i in range(SMALL_POOL)],
            ALERTS_PER_BIG_PAYLOAD: [
                notification(1_000_000 + i * ALERTS_PER_BIG_PAYLOAD, ALERTS_PER_BIG_PAYLOAD)
                for i in range(BIG_POOL)
            ],
        }
        servers.append(start_server("bare", "bare_app", environment))
        servers.append(start_server("poundcake-api", "poundcake_app", environment))
        load_before = os.getloadavg()[0]
        results = asyncio.run(run_phases(servers, args, pools))
        report(results, args, database)
        if args.json:
            args.json.write_text(json.dumps(json_figures(results)))
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the run and "
            f"{os.getloadavg()[0]:.1f} after (other work on the machine skews both servers)"
        )
        counts = count_rows(sa.make_url(environment["DATABASE_URL"]))
        answered = sum(o.alerts for outcomes in results["poundcake-api"].values() for o in outcomes)
        print(
            f"\nrows: bare {counts[BARE_TABLE]:,} alert rows; poundcake-api "
            f"{counts['poundcake_alerts']:,} episodes, {counts['poundcake_alert_deliveries']:,} "
            f"deliveries ({answered:,} alerts answered 202 while measured, plus the warm-up), "
            f"{counts['poundcake_api_calls']:,} API calls"
        )
    finally:
        for server in servers:
            stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
        if args.keep:
            print(f"kept database {database}")
        else:
            drop_fixture_database(database)


if __name__ == "__main__":
    main()
