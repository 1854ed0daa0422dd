"""Alertmanager intake: poundcake-api against the strongest simple durable endpoint, driven by wrk.

Creates a scratch MariaDB database with the engine's and PoundCake's schemas, claims a Redis
database for the task queue, then starts two uvicorn servers in subprocesses (one process each,
access log off):

* ``poundcake-api`` (``create_app``) as deployed: bearer token, request id, one transaction per
  request with the API call, the alert upserts and one outbox row per alert, 202, then the
  delivery ids handed to the real task queue (Celery on Redis; no worker consumes them here, so
  the figures are the intake's alone);
* a bare Starlette endpoint, the strongest simple durable one: bearer token check, the body
  validated by pydantic (``validate_json``), one multi-row INSERT of the alerts through PyMySQL
  (``executemany``), commit, 202.

The load generator is ``wrk`` (Debian's), a separate process, with ``bench/wrk/alertmanager.lua``:
every request is a new notification whose alerts are episodes never sent before (no replays).
Phases, ``--rounds`` times each with the servers taking turns (the machine's other load then hits
both alike; medians are reported): peak requests/s with 1-alert payloads and peak alerts/s with
100-alert payloads (closed loop, ``--connections``), then the ack latency at half of each
server's median peak (open loop: a schedule of send slots, with late sends counted). Each phase
prints the server's and wrk's own CPU and the load average. Each server connects to MariaDB as a
user of its own, made for the run, so ``information_schema.USER_STATISTICS`` (``userstat`` on for
the run) counts its statements alone: statements per request, a figure other work on the machine
does not move (a ``COM_PING`` is a round trip but not a statement there; ``COMMIT`` and a pool's
``ROLLBACK`` are). The rows are counted at the end and checked against the 2xx answers (nothing
answered 202 may be missing). ``--profile DIR`` samples both servers with ``py-spy``
(``.venv/bin/py-spy``) through every phase, one flame graph (or ``--profile-format raw``
collapsed stacks) per server, idle threads included.

Usage: .venv/bin/python bench/intake.py [--seconds 10] [--rounds 3] [--connections 16] [--keep]
                                        [--profile DIR [--profile-format raw]] [--json FILE]
Needs MariaDB (root on 127.0.0.1), Redis and wrk (scripts/install-test-tools.sh installs it).
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import os
import queue
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import httpx
import pymysql
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import WrkFigures, load_average, parse_wrk, process_cpu_seconds  # noqa: E402

from poundcake.config import load_poundcake_config  # noqa: E402
from poundcake.db.engine import make_engine  # noqa: E402

if TYPE_CHECKING:
    from sensors import ServiceUser

TOKEN = "bench-intake-token-0d9f3a"
BIG = 100
POOL_SIZE = 10
BARE_TABLE = "bench_bare_alerts"
LUA = ROOT / "bench" / "wrk" / "alertmanager.lua"
REQUESTS_GOAL = 0.8
ALERTS_GOAL = 0.8
P99_GOAL_MS = 50.0
WRK_RUNS = itertools.count(1)
"""Numbers of the wrk runs, part of every fingerprint: no run repeats another's alerts."""


# --- the bare endpoint (built inside its uvicorn subprocess) --------------------------------


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


BARE_DDL = (
    f"CREATE TABLE {BARE_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "fingerprint VARCHAR(64) NOT NULL, status VARCHAR(16) NOT NULL, "
    "starts_at DATETIME(6) NOT NULL, labels JSON NOT NULL, annotations JSON NOT NULL, "
    "received_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
BARE_INSERT = (
    f"INSERT INTO {BARE_TABLE} (fingerprint, status, starts_at, labels, annotations, received_at)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


def bare_app() -> Starlette:
    """Token, validation, one multi-row INSERT through the driver, commit, 202."""
    url = sa.make_url(os.environ["DATABASE_URL"])
    connections: queue.SimpleQueue[pymysql.connections.Connection] = queue.SimpleQueue()
    for _ in range(POOL_SIZE):
        connections.put(
            pymysql.connect(
                host=url.host,
                port=url.port or 3306,
                user=url.username,
                password=url.password or "",
                database=url.database,
                charset="utf8mb4",
            )
        )
    expected = f"Bearer {TOKEN}".encode()
    validate = TypeAdapter(BareNotification).validate_json

    def store(notification: BareNotification) -> None:
        now = datetime.now()
        rows = [
            (
                alert.fingerprint,
                alert.status,
                alert.startsAt.replace(tzinfo=None),
                json.dumps(alert.labels),
                json.dumps(alert.annotations),
                now,
            )
            for alert in notification.alerts
        ]
        connection = connections.get()
        try:
            with connection.cursor() as cursor:
                cursor.executemany(BARE_INSERT, rows)
            connection.commit()
        finally:
            connections.put(connection)

    async def webhook(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            notification = validate(await request.body())
        except ValidationError as error:
            return JSONResponse({"error": str(error)[:500]}, status_code=400)
        await anyio.to_thread.run_sync(store, notification)
        return JSONResponse({"accepted": len(notification.alerts)}, status_code=202)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/v1/webhook", webhook, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def poundcake_app() -> object:
    """poundcake-api as deployed, on the configuration in the environment (real task queue)."""
    from poundcake.remediation.api.app import create_app

    return create_app(load_poundcake_config())


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What one phase measured on one server."""

    wrk: WrkFigures
    size: int
    server_cpu: float
    wrk_cpu: float
    load: str
    statements: dict[str, int]

    @property
    def requests_per_second(self) -> float:
        return self.wrk.requests_per_second

    @property
    def alerts_per_second(self) -> float:
        return self.wrk.requests_per_second * self.size

    @property
    def server_cpu_ms_per_request(self) -> float:
        return self.server_cpu * 1000 / self.wrk.requests if self.wrk.requests else float("nan")

    def per_request(self, *columns: str) -> float:
        """USER_STATISTICS counters (summed) per request answered."""
        used = sum(self.statements.get(column, 0) for column in columns)
        return used / self.wrk.requests if self.wrk.requests else float("nan")

    @property
    def statements_per_request(self) -> float:
        return self.per_request("SELECT_COMMANDS", "UPDATE_COMMANDS", "OTHER_COMMANDS")


@dataclass
class Server:
    """One uvicorn subprocess and the MariaDB user it connects as."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    user: ServiceUser


def children_cpu_seconds() -> float:
    """CPU seconds of the children this process has waited for (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    server: Server, *, size: int, seconds: float, connections: int, rate_per_second: float
) -> Outcome:
    """One wrk run (one thread) against ``server``; ``rate_per_second`` 0 is a closed loop."""
    command = [
        "wrk",
        *("-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"),
        *("-s", str(LUA), f"{server.url}/api/v1/webhook"),
        *("--", TOKEN, str(size), f"{rate_per_second:.3f}", f"{next(WRK_RUNS):06x}"),
    ]
    server_cpu, wrk_cpu = process_cpu_seconds(server.process.pid), children_cpu_seconds()
    counts = server.user.counts()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=LUA.parent)
    if done.returncode != 0:
        raise SystemExit(f"wrk exited {done.returncode}: {done.stderr}{done.stdout}")
    after = server.user.counts()
    return Outcome(
        wrk=parse_wrk(done.stdout),
        size=size,
        server_cpu=process_cpu_seconds(server.process.pid) - server_cpu,
        wrk_cpu=children_cpu_seconds() - wrk_cpu,
        load=load_average(),
        statements={column: after[column] - counts[column] for column in after},
    )


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(name: str, factory: str, environment: dict[str, str], user: ServiceUser) -> Server:
    """Start ``factory`` in uvicorn, connected to MariaDB as ``user``."""
    port = free_port()
    url = sa.make_url(environment["DATABASE_URL"]).set(username=user.name, password=user.password)
    environment = {**environment, "DATABASE_URL": url.render_as_string(hide_password=False)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", f"bench.intake:{factory}", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log"),
            *("--timeout-keep-alive", "300"),
        ],
        cwd=ROOT,
        env=environment,
    )
    server = Server(name, process, f"http://127.0.0.1:{port}", user)
    deadline = time.monotonic() + 60
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
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# --- the run --------------------------------------------------------------------------------

PHASES = ("peak, 1 alert", "peak, 100 alerts", "half peak, 1 alert", "half peak, 100 alerts")
Results = dict[str, dict[str, list[Outcome]]]


def describe(phase: str, name: str, outcome: Outcome) -> str:
    figures = outcome.wrk
    return (
        f"  {phase:<22} {name:<14} {outcome.requests_per_second:>8,.1f} req/s "
        f"{outcome.alerts_per_second:>9,.0f} alerts/s  p50 {figures.p50_ms:6.1f} ms  "
        f"p99 {figures.p99_ms:7.1f} ms  server {outcome.server_cpu_ms_per_request:5.2f} ms "
        f"CPU/request  {outcome.statements_per_request:.2f} statements/request  "
        f"wrk CPU {outcome.wrk_cpu:.2f} s of {figures.seconds:.1f}  "
        f"non-2xx {figures.non_2xx} 5xx {figures.server_errors} socket {figures.socket_errors}"
        f"  late sends {figures.late} (max {figures.max_late_ms:.0f} ms)  {outcome.load}"
    )


def run_phases(servers: list[Server], args: argparse.Namespace) -> Results:
    """Every phase, ``--rounds`` times, the servers taking turns within each round."""
    results: Results = {server.name: {phase: [] for phase in PHASES} for server in servers}
    for server in servers:
        run_wrk(server, size=1, seconds=1, connections=args.connections, rate_per_second=0)
    for phase in PHASES:
        size = 1 if phase.endswith("1 alert") else BIG
        for _ in range(args.rounds):
            for server in servers:
                rate = 0.0
                connections = args.connections
                if phase.startswith("half"):
                    peaks = results[server.name][f"peak, {phase.removeprefix('half peak, ')}"]
                    rate = statistics.median(o.requests_per_second for o in peaks) / 2
                    connections = args.connections * 4
                outcome = run_wrk(
                    server,
                    size=size,
                    seconds=args.seconds,
                    connections=connections,
                    rate_per_second=rate,
                )
                results[server.name][phase].append(outcome)
                print(describe(phase, server.name, outcome), flush=True)
    return results


def median_of(outcomes: list[Outcome], measure: str) -> float:
    """The median over rounds of an Outcome property or a WrkFigures field."""
    values = [
        getattr(o, measure) if hasattr(o, measure) else getattr(o.wrk, measure) for o in outcomes
    ]
    return statistics.median(values)


def figures(results: Results) -> list[dict[str, object]]:
    """The figures with a goal (medians over the rounds)."""
    bare, ours = results["bare"], results["poundcake-api"]

    def ratio(phase: str, measure: str) -> float:
        return median_of(ours[phase], measure) / median_of(bare[phase], measure)

    errors = sum(o.wrk.server_errors for outcomes in ours.values() for o in outcomes)
    return [
        {
            "figure": "requests/s vs bare endpoint, 1-alert payloads",
            "value": ratio("peak, 1 alert", "requests_per_second"),
            "unit": "x",
            "goal": REQUESTS_GOAL,
            "better": "higher",
        },
        {
            "figure": "alerts/s vs bare endpoint, 100-alert payloads",
            "value": ratio("peak, 100 alerts", "alerts_per_second"),
            "unit": "x",
            "goal": ALERTS_GOAL,
            "better": "higher",
        },
        {
            "figure": "ack p99 at half peak, 1-alert payloads",
            "value": median_of(ours["half peak, 1 alert"], "p99_ms"),
            "unit": "ms",
            "goal": P99_GOAL_MS,
            "better": "lower",
        },
        {
            "figure": "ack p99 at half peak, 100-alert payloads",
            "value": median_of(ours["half peak, 100 alerts"], "p99_ms"),
            "unit": "ms",
            "goal": P99_GOAL_MS,
            "better": "lower",
        },
        {"figure": "5xx answers", "value": errors, "unit": "", "goal": 0, "better": "lower"},
    ]


def report(results: Results, args: argparse.Namespace) -> None:
    bare, ours = results["bare"], results["poundcake-api"]

    def row(label: str, phase: str, measure: str, goal: str = "", ratio: bool = False) -> None:
        left, right = median_of(bare[phase], measure), median_of(ours[phase], measure)
        shown = f"{right / left:.2f}" if ratio and left else ""
        print(f"{label:<46}{left:>13,.1f}{right:>15,.1f}{shown:>8}{goal:>10}")

    print()
    print(
        f"Alertmanager intake: median of {args.rounds} rounds of {args.seconds:g} s per phase, "
        f"wrk with {args.connections} connections at peak, one uvicorn process per server"
    )
    print(f"{'':<46}{'bare':>13}{'poundcake-api':>15}{'ratio':>8}{'goal':>10}")
    row("peak requests/s, 1-alert payloads", "peak, 1 alert", "requests_per_second", ">= 0.80", 1)
    row("peak alerts/s, 100-alert payloads", "peak, 100 alerts", "alerts_per_second", ">= 0.80", 1)
    for phase in ("peak, 1 alert", "peak, 100 alerts"):
        row(f"server CPU ms/request ({phase})", phase, "server_cpu_ms_per_request")
        row(f"statements/request ({phase})", phase, "statements_per_request")
        row(f"wrk CPU s per phase ({phase})", phase, "wrk_cpu")
    for phase in ("half peak, 1 alert", "half peak, 100 alerts"):
        row(f"{phase}: requests/s offered", phase, "requests_per_second")
        row(f"{phase}: ack p50 ms", phase, "p50_ms")
        row(f"{phase}: ack p99 ms", phase, "p99_ms", "<= 50")
        row(f"{phase}: late sends", phase, "late")
    for label, measure in (
        ("non-2xx answers (all phases)", "non_2xx"),
        ("  of which 5xx", "server_errors"),
        ("socket errors (all phases)", "socket_errors"),
    ):
        left = sum(getattr(o.wrk, measure) for outcomes in bare.values() for o in outcomes)
        right = sum(getattr(o.wrk, measure) for outcomes in ours.values() for o in outcomes)
        print(f"{label:<46}{left:>13,}{right:>15,}")


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


def check_rows(results: Results, url: sa.URL) -> None:
    """Print the rows stored against the 2xx answers: fewer rows means an accepted alert lost."""
    counts = count_rows(url)
    for name, table in (("bare", BARE_TABLE), ("poundcake-api", "poundcake_alerts")):
        answered = sum(
            o.size * (o.wrk.requests - o.wrk.non_2xx)
            for outcomes in results[name].values()
            for o in outcomes
        )
        verdict = "ok" if counts[table] >= answered else "ALERTS LOST"
        print(
            f"rows: {name} {counts[table]:,} alerts stored, {answered:,} answered 2xx while "
            f"measured (plus the warm-up and requests in flight at each phase's end): {verdict}"
        )
    replays = counts["poundcake_alert_deliveries"] - counts["poundcake_alerts"]
    print(
        f"      poundcake-api {counts['poundcake_alert_deliveries']:,} outbox rows, "
        f"{counts['poundcake_api_calls']:,} API calls; {replays:,} deliveries of a known episode "
        "(0 expected: every alert sent is new)"
    )


@contextmanager
def scratch_redis() -> Iterator[str]:
    """A Redis database of its own for the task queue (claimed as the tests claim theirs)."""
    from tests.integration.support.redis_db import claim_redis_database, redis_url

    with claim_redis_database() as database:
        yield redis_url(database)


def prepare(database: str, workdir: Path, broker: str) -> dict[str, str]:
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
        "REDIS_URL": broker,
        "PYTHONPATH": str(ROOT),
    }
    for name in ("DATABASE_URL", "ST2_TABLE_PREFIX", "POUNDCAKE_DATA_DIR", "REDIS_URL"):
        os.environ[name] = environment[name]
    setup_engine_schema(load_st2_config(conf))
    setup_poundcake_schema(load_poundcake_config())
    with pymysql.connect(host="127.0.0.1", user="root", database=database) as connection:
        connection.cursor().execute(BARE_DDL)
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each phase")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections at peak")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the servers here")
    parser.add_argument(
        "--profile-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: scripts/install-test-tools.sh installs it")

    # The script's directory is on the path when run as a script (not in the uvicorn children).
    from sensors import ServiceUser, profiled
    from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database

    database = f"pcbench_{uuid.uuid4().hex[:8]}"
    create_fixture_database(database)
    servers: list[Server] = []
    users = [ServiceUser(), ServiceUser()]
    workdir = Path(tempfile.mkdtemp(prefix="pcbench-intake-"))
    try:
        with scratch_redis() as broker:
            environment = prepare(database, workdir, broker)
            for user in users:
                user.create(database)
            servers.append(start_server("bare", "bare_app", environment, users[0]))
            servers.append(start_server("poundcake-api", "poundcake_app", environment, users[1]))
            print(f"before the run: {load_average()}", flush=True)
            pids = {server.name: server.process.pid for server in servers}
            with profiled(pids, args.profile, args.profile_format):
                results = run_phases(servers, args)
            report(results, args)
            if args.json:
                args.json.write_text(json.dumps(figures(results)))
            print(f"after the run: {load_average()}")
            check_rows(results, sa.make_url(environment["DATABASE_URL"]))
            for server in servers:
                stop_server(server)
            servers.clear()
    finally:
        for server in servers:
            stop_server(server)
        for user in reversed(users):
            user.drop()
        shutil.rmtree(workdir, ignore_errors=True)
        if args.keep:
            print(f"kept database {database}")
        else:
            drop_fixture_database(database)


if __name__ == "__main__":
    main()
