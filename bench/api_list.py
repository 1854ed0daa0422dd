"""Execution list latency: ``GET /v1/executions`` against 1,000,000 executions on MariaDB.

Sets up a scratch MariaDB database with the engine's schema and content (``st2-setup-db``,
``st2ctl reload --register-all``), starts a real ``st2api`` on a free loopback port, fills
``execution_db`` with ``--rows`` executions using bulk multi-row INSERTs (snapshots of the real
registered actions and runners, shell-style results of a few hundred bytes to a few KB, many
actions, users and statuses, one execution in ten a workflow child, one in five fired by a
rule, spread over 90 days), then measures with one keep-alive httpx client, ``--requests``
requests per case, while a writer inserts ``--write-rate`` new executions per second (in
batches every 100 ms, as runners finishing work would), so the table and its counts keep
changing under the reads:

* ``limit=100`` with the ``st2`` CLI's parameters (``parent=null``, ``sort_desc``, the list's
  ``include_attributes``) and without any (full documents, results included);
* with a ``status`` filter; with ``offset=10000``;

Every request is cold: it carries a ``timestamp_lt`` no earlier request used (a second apart,
all within the last hours, so each matches nearly every row), so st2api's count cache never
holds its total and each request counts its matches again. For comparison the same case
repeated with one query (cached total) is measured too, after a warm-up. Printed per case:
p50, p95, p99 and max in milliseconds, cold and repeated. The database is dropped afterwards
unless ``--keep`` (``--database`` reuses a kept one; ``--only`` runs the cases whose label
contains a text).

With ``--rbac`` st2api enforces RBAC and the requests are made by a user holding only
StackStorm's ``observer`` role, so every one is checked (the user's roles and grants read);
the same run without it on the same database (``--keep``, then ``--database``) is the baseline.

Usage: .venv/bin/python bench/api_list.py [--rows 1000000] [--requests 300] [--write-rate 100]
                                          [--keep] [--rbac]
Needs MariaDB (root on 127.0.0.1) and RabbitMQ (guest on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pymysql
import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import load_average, own_cpu_seconds  # noqa: E402
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database  # noqa: E402
from tests.integration.support.rbac import assign_roles  # noqa: E402
from tests.integration.support.st2cli import PASSWORD, USER, running_engine  # noqa: E402

from poundcake.config import load_st2_config  # noqa: E402
from poundcake.db.engine import make_st2_engine  # noqa: E402
from poundcake.engine.actions.models import ActionDB  # noqa: E402
from poundcake.engine.documents import action_document, isoformat, runner_document  # noqa: E402
from poundcake.engine.runners.models import RunnerTypeDB  # noqa: E402
from poundcake.ids import new_id  # noqa: E402

CLI_LIST = (
    "parent=null&sort_desc=True"
    "&include_attributes=id,action.ref,context.user,status,start_timestamp,end_timestamp"
)
CASES = (
    ("limit=100, the CLI's list parameters", f"limit=100&{CLI_LIST}"),
    ("limit=100, full documents", "limit=100"),
    ("limit=100, status=failed (CLI parameters)", f"limit=100&status=failed&{CLI_LIST}"),
    ("limit=100, status=succeeded, full documents", "limit=100&status=succeeded"),
    ("limit=100, status=succeeded (CLI parameters)", f"limit=100&status=succeeded&{CLI_LIST}"),
    ("limit=100, offset=10000 (CLI parameters)", f"limit=100&offset=10000&{CLI_LIST}"),
    ("limit=100, offset=10000, full documents", "limit=100&offset=10000"),
)
STATUSES = (
    ("succeeded", 0.78),
    ("failed", 0.12),
    ("timeout", 0.03),
    ("canceled", 0.03),
    ("abandoned", 0.01),
    ("running", 0.015),
    ("scheduled", 0.01),
    ("requested", 0.005),
)
USERS = ("st2admin", "stanley", "alice", "bob", "poundcake", "oncall", "ci-bot", "carol")
COLUMNS = ", ".join(
    f"`{name}`"
    for name in (
        *("id", "action", "action_snapshot", "runner", "runner_type", "liveaction_id"),
        *("liveaction", "status", "start_timestamp", "end_timestamp", "parameters", "result"),
        *("result_size", "result_truncated", "context", "context_user", "parent", "children"),
        *("log", "delay", "rule", "rule_ref", "trigger", "trigger_type", "trigger_instance"),
        *("trigger_instance_id", "web_url"),
    )
)
WORDS = (
    *("deploy", "restart", "check", "disk", "memory", "cpu", "nginx", "postgres", "backup"),
    *("rotate", "logs", "alert", "ack", "host-01", "host-02", "eu-west-1", "ok", "warning"),
    *("critical", "kubectl", "systemctl", "journal"),
)


def _sql_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Seeder:
    """Builds realistic execution rows and inserts them in multi-row statements."""

    def __init__(self, connection: pymysql.connections.Connection, snapshots: list[Any]) -> None:
        self.connection = connection
        self.random = random.Random(42)
        self.actions = snapshots
        self.escaped = {
            action["ref"]: (self._literal(json.dumps(action)), self._literal(json.dumps(runner)))
            for action, runner in snapshots
        }
        self.statuses = [name for name, _ in STATUSES]
        self.weights = [weight for _, weight in STATUSES]
        self.recent_parents: list[str] = []

    def _literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        return str(self.connection.escape(value))

    def _text(self, low: int, high: int) -> str:
        words = []
        length = 0
        target = self.random.randint(low, high)
        while length < target:
            word = self.random.choice(WORDS)
            words.append(word)
            length += len(word) + 1
        return " ".join(words)

    def row(self, moment: datetime) -> str:
        action, runner = self.random.choice(self.actions)
        ref = action["ref"]
        status = self.random.choices(self.statuses, self.weights)[0]
        done = status not in ("running", "scheduled", "requested")
        end = moment + timedelta(milliseconds=self.random.randint(30, 90_000)) if done else None
        execution_id = new_id(moment.timestamp())
        liveaction_id = new_id(moment.timestamp())
        user = self.random.choice(USERS)
        parameters = {"cmd": self._text(10, 80)} if "cmd" in action["parameters"] else {}
        code = 0 if status == "succeeded" else self.random.choice((1, 2, 127, -9))
        stdout = self._text(20, 1500)
        result = (
            {
                "failed": code != 0,
                "succeeded": code == 0,
                "return_code": code,
                "stdout": stdout,
                "stderr": "" if code == 0 else self._text(20, 300),
            }
            if done
            else {}
        )
        result_text = json.dumps(result)
        context: dict[str, Any] = {"user": user, "pack": action["pack"]}
        rule = trigger = trigger_type = trigger_instance = None
        if self.random.random() < 0.2:
            rule_name = f"rule_{self.random.randint(1, 40)}"
            rule = {
                "id": new_id(),
                "ref": f"{action['pack']}.{rule_name}",
                "name": rule_name,
                "pack": action["pack"],
                "description": self._text(20, 120),
                "enabled": True,
                "trigger": {"type": "core.st2.webhook", "parameters": {"url": rule_name}},
                "criteria": {"trigger.body.severity": {"type": "equals", "pattern": "critical"}},
                "action": {"ref": ref, "parameters": parameters},
            }
            trigger = {"ref": f"core.{uuid.uuid4()}", "type": "core.st2.webhook"}
            trigger_type = {"ref": "core.st2.webhook", "name": "st2.webhook", "pack": "core"}
            trigger_instance = {"id": new_id(), "trigger": trigger["ref"], "status": "processed"}
            context["rule"] = {"id": rule["id"], "name": rule_name}
            context["trigger_instance"] = {"id": trigger_instance["id"], "name": None}
        parent = None
        if self.recent_parents and self.random.random() < 0.1:
            parent = self.random.choice(self.recent_parents)
            context["parent"] = {"execution_id": parent, "user": user}
        elif len(self.recent_parents) < 50:
            self.recent_parents.append(execution_id)
        else:
            self.recent_parents[self.random.randrange(50)] = execution_id
        log = [{"timestamp": isoformat(moment), "status": "requested"}]
        log += (
            [{"timestamp": isoformat(moment), "status": "scheduled"}]
            if status != "requested"
            else []
        )
        log += [{"timestamp": isoformat(moment), "status": "running"}] if done else []
        log += [{"timestamp": isoformat(end), "status": status}] if end else []
        liveaction = {
            "id": liveaction_id,
            "action": ref,
            "parameters": parameters,
            "callback": {},
            "action_is_workflow": False,
            "runner_info": {},
            "notify": {},
        }
        action_literal, runner_literal = self.escaped[ref]
        values = (
            self._literal(execution_id),
            self._literal(ref),
            action_literal,
            runner_literal,
            self._literal(runner["name"]),
            self._literal(liveaction_id),
            self._literal(json.dumps(liveaction)),
            self._literal(status),
            self._literal(_sql_datetime(moment)),
            self._literal(_sql_datetime(end) if end else None),
            self._literal(json.dumps(parameters)),
            self._literal(result_text),
            str(len(result_text)),
            "0",
            self._literal(json.dumps(context)),
            self._literal(user),
            self._literal(parent),
            "'[]'",
            self._literal(json.dumps(log)),
            "NULL",
            self._literal(json.dumps(rule) if rule else None),
            self._literal(rule["ref"] if rule else None),
            self._literal(json.dumps(trigger) if trigger else None),
            self._literal(json.dumps(trigger_type) if trigger_type else None),
            self._literal(json.dumps(trigger_instance) if trigger_instance else None),
            self._literal(trigger_instance["id"] if trigger_instance else None),
            "NULL",
        )
        return "(" + ",".join(values) + ")"

    def insert(self, moments: list[datetime]) -> None:
        """Insert and commit one execution per moment, in one statement."""
        values = ",".join(self.row(moment) for moment in moments)
        self.connection.cursor().execute(f"INSERT INTO execution_db ({COLUMNS}) VALUES {values}")
        self.connection.commit()

    def fill(self, rows: int, batch: int = 500) -> float:
        """Insert ``rows`` executions spread over the last 90 days; return the seconds taken."""
        started = time.monotonic()
        now = datetime.now(UTC)
        first = now - timedelta(days=90)
        step = (now - first) / rows
        cursor = self.connection.cursor()
        cursor.execute("SET SESSION unique_checks = 0")
        done = 0
        while done < rows:
            count = min(batch, rows - done)
            self.insert([first + step * (done + offset) for offset in range(count)])
            done += count
            if done % 100_000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  {done:>9} rows inserted ({rate:,.0f} rows/s)", flush=True)
        cursor.execute("ANALYZE TABLE execution_db")
        cursor.fetchall()
        return time.monotonic() - started


class Writer:
    """Inserts ``rate`` new executions per second (a batch every 100 ms) until stopped."""

    def __init__(self, database: str, documents: list[Any], rate: float) -> None:
        self.connection = pymysql.connect(
            host="127.0.0.1", user="root", database=database, charset="utf8mb4"
        )
        self.seeder = Seeder(self.connection, documents)
        self.rate = rate
        self.written = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="execution-writer", daemon=True)

    def __enter__(self) -> Writer:
        if self.rate > 0:
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=60)
        self.connection.close()

    def _run(self) -> None:
        owed = 0.0
        while not self.stopping.wait(0.1):
            owed += self.rate / 10
            batch = int(owed)
            if batch:
                self.seeder.insert([datetime.now(UTC)] * batch)
                owed -= batch
                self.written += batch


def snapshots(config_path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The registered actions with their runner types, as executions snapshot them."""
    engine = make_st2_engine(load_st2_config(config_path), pool_size=1)
    try:
        with Session(engine) as session:
            rows = session.execute(
                sa.select(ActionDB, RunnerTypeDB).join(
                    RunnerTypeDB, RunnerTypeDB.name == ActionDB.runner_type
                )
            ).all()
        documents = [
            (action_document(row.ActionDB), runner_document(row.RunnerTypeDB)) for row in rows
        ]
    finally:
        engine.dispose()
    return documents


def timed(client: httpx.Client, query: str) -> tuple[float, int, int]:
    """One GET of ``/executions?query``: ms, bytes, X-Total-Count."""
    started = time.perf_counter()
    response = client.get(f"/executions?{query}")
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, len(response.content), int(response.headers.get("X-Total-Count", -1))


def cold_queries(query: str, requests: int, moment: datetime) -> Iterator[str]:
    """``query`` with a ``timestamp_lt`` a second earlier each time: no total is ever reused."""
    for index in range(requests):
        before = (moment - timedelta(seconds=index + 1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        yield f"{query}&timestamp_lt={before}"


def measure(
    client: httpx.Client, query: str, requests: int
) -> tuple[list[float], list[float], int, int]:
    """Latencies (ms) of ``requests`` cold GETs (each counting anew) and of ``requests``
    repeated ones (one query, its total cached after a warm-up); bytes and total of the last."""
    moment = datetime.now(UTC) - timedelta(hours=1)
    cold = [timed(client, cold_query)[0] for cold_query in cold_queries(query, requests, moment)]
    for _ in range(4):
        timed(client, query)
    repeated = []
    size = total = 0
    for _ in range(requests):
        elapsed, size, total = timed(client, query)
        repeated.append(elapsed)
    return cold, repeated, size, total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def login(auth_url: str) -> str:
    response = httpx.post(f"{auth_url}/tokens", auth=(USER, PASSWORD), json={})
    response.raise_for_status()
    return str(response.json()["token"])


RBAC_ON = "[rbac]\nenable = True\nbackend = default\n"


def run(options: argparse.Namespace) -> Iterator[tuple[str, list[float], list[float], int, int]]:
    database = options.database or f"pcbench_list_{uuid.uuid4().hex[:8]}"
    if not options.database:
        create_fixture_database(database)
    try:
        with (
            tempfile.TemporaryDirectory() as workdir,
            running_engine(
                Path(workdir),
                database,
                services=("st2api", "st2auth"),
                extra_conf=RBAC_ON if options.rbac else "",
            ) as engine,
        ):
            if options.rbac:
                # Only StackStorm's observer role: every request is checked.
                assign_roles(engine.config_path, USER, ["observer"])
            connection = pymysql.connect(
                host="127.0.0.1", user="root", database=database, charset="utf8mb4"
            )
            with connection:
                existing = connection.cursor()
                existing.execute("SELECT COUNT(*) FROM execution_db")
                have = int(existing.fetchone()[0])
                if have < options.rows:
                    print(f"inserting {options.rows - have} executions into {database} ...")
                    seeder = Seeder(connection, snapshots(engine.config_path))
                    seconds = seeder.fill(options.rows - have)
                    print(f"  done in {seconds:.0f} s")
            token = login(engine.auth_url)
            headers = {"X-Auth-Token": token}
            documents = snapshots(engine.config_path)
            with (
                httpx.Client(base_url=engine.api_url, headers=headers, timeout=60) as client,
                Writer(database, documents, options.write_rate) as writer,
            ):
                cpu = own_cpu_seconds()
                for label, query in CASES:
                    if options.only and options.only not in label:
                        continue
                    cold, repeated, size, total = measure(client, query, options.requests)
                    yield label, cold, repeated, size, total
                print(
                    f"  {writer.written:,} executions written while measuring; the client and the"
                    f" writer (this process) used {own_cpu_seconds() - cpu:.1f} s of CPU; "
                    f"{load_average()}"
                )
    finally:
        if not options.keep:
            drop_fixture_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="reuse this database (made by an earlier --keep)")
    parser.add_argument("--only", help="run only the cases whose label contains this text")
    parser.add_argument(
        "--write-rate", type=float, default=100, help="executions written per second meanwhile"
    )
    parser.add_argument(
        "--rbac",
        action="store_true",
        help="RBAC on, the requests made by an observer (compare with a run without it)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    figures = []
    print(
        f"GET /v1/executions over {options.rows:,} executions ({options.requests} requests each,"
        f" {options.write_rate:g} executions written per second meanwhile"
        f"{'; RBAC on, as an observer' if options.rbac else ''}); {load_average()}"
    )
    print(
        f"  {'case (ms)':<44} {'cold p50':>8} {'p95':>7} {'p99':>7} {'max':>7} | "
        f"{'repeated p50':>12} {'p99':>7}  {'bytes':>7} {'total':>8}"
    )
    for label, cold, repeated, size, total in run(options):
        print(
            f"  {label:<44} {statistics.median(cold):8.1f} {percentile(cold, 0.95):7.1f} "
            f"{percentile(cold, 0.99):7.1f} {max(cold):7.1f} | "
            f"{statistics.median(repeated):12.1f} {percentile(repeated, 0.99):7.1f}"
            f"  {size:>7} {total:>8}",
            flush=True,
        )
        figures.append(
            {
                "figure": f"cold p99 {label}",
                "value": percentile(cold, 0.99),
                "unit": "ms",
                "goal": 50,
                "better": "lower",
            }
        )
    if options.json:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
