"""Engine throughput: core.noop-style executions per second, end to end, on MariaDB and RabbitMQ.

Starts real ``st2scheduler`` and ``st2actionrunner`` processes against a scratch MariaDB database
and a RabbitMQ vhost of their own, requests executions of a noop action through the execution
service (as the API does: one transaction and one message per request), and reports completed
executions per second from the first request to the last completion:

* with 1 and with 2 action runner processes;
* draining a backlog of ``--backlog`` executions requested while no runner was up.

Usage: .venv/bin/python bench/engine_throughput.py [--count 2000] [--backlog 20000]
Needs MariaDB (root on 127.0.0.1) and RabbitMQ (guest on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import factories  # noqa: E402

from poundcake.config import load_st2_config  # noqa: E402
from poundcake.db.migrate import setup_engine_schema  # noqa: E402
from poundcake.db.session import unit_of_work  # noqa: E402
from poundcake.engine.executions.models import LiveActionDB  # noqa: E402
from poundcake.engine.executions.service import request_execution  # noqa: E402
from poundcake.engine.runtime import EngineRuntime, make_runtime  # noqa: E402

BIN = Path(sys.executable).parent


def admin(statement: str) -> None:
    with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as connection:
        connection.cursor().execute(statement)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.database = f"pcbench_{uuid.uuid4().hex[:8]}"
        self.vhost = f"pcbench_{uuid.uuid4().hex[:8]}"
        admin(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.conf = workdir / "st2.conf"
        self.conf.write_text(
            "[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\n"
            f"db_name = {self.database}\n\n[messaging]\n"
            f"url = amqp://guest:guest@127.0.0.1:5672/{self.vhost}\n\n"
            "[actionrunner]\nconcurrency = 16\n\n[log]\nlevel = WARNING\n"
        )
        self.workdir = workdir
        config = load_st2_config(self.conf)
        setup_engine_schema(config)
        self.runtime: EngineRuntime = make_runtime(config, pool_size=20)
        with unit_of_work(self.runtime.sessions) as session:
            factories.runner_type(session, "noop")
            factories.pack(session, "core")
            factories.action(session, "core.noop", "noop")
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: str) -> None:
        log = (self.workdir / f"{command}.log").open("ab")
        self.processes.append(
            subprocess.Popen(
                [str(BIN / command), "--config-file", str(self.conf)], stdout=log, stderr=log
            )
        )

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)
        self.processes = []

    def request(self, count: int, threads: int = 4) -> None:
        def one(_: int) -> None:
            with unit_of_work(self.runtime.sessions) as session:
                requested = request_execution(session, action_ref="core.noop", user="bench")
            self.runtime.publisher.requested(requested.liveaction_id, requested.execution_id)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(count)))

    def succeeded(self) -> int:
        with self.runtime.sessions() as session:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(LiveActionDB)
                    .where(LiveActionDB.status == "succeeded")
                )
                or 0
            )

    def wait_for(self, total: int, timeout: float = 900) -> float:
        deadline = time.monotonic() + timeout
        while self.succeeded() < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {self.succeeded()} of {total} succeeded")
            time.sleep(0.1)
        return time.monotonic()

    def run_phase(self, runners: int, count: int) -> float:
        already = self.succeeded()
        self.spawn("st2scheduler")
        for _ in range(runners):
            self.spawn("st2actionrunner")
        time.sleep(2)
        started = time.monotonic()
        submitter = threading.Thread(target=self.request, args=(count,))
        submitter.start()
        finished = self.wait_for(already + count)
        submitter.join()
        self.stop_all()
        return count / (finished - started)

    def backlog_phase(self, backlog: int, runners: int) -> tuple[float, float]:
        already = self.succeeded()
        started = time.monotonic()
        self.request(backlog, threads=8)
        submitted = time.monotonic() - started
        self.spawn("st2scheduler")
        for _ in range(runners):
            self.spawn("st2actionrunner")
        started = time.monotonic()
        finished = self.wait_for(already + backlog)
        self.stop_all()
        return backlog / submitted, backlog / (finished - started)

    def close(self) -> None:
        self.stop_all()
        self.runtime.close()
        admin(f"DROP DATABASE {self.database}")
        rabbitmqctl("delete_vhost", self.vhost)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(Path(workdir))
        try:
            rows = [
                (f"1 runner, {options.count} executions", bench.run_phase(1, options.count)),
                (f"2 runners, {options.count} executions", bench.run_phase(2, options.count)),
            ]
            request_rate, drain_rate = bench.backlog_phase(options.backlog, 2)
            rows.append((f"requests into a {options.backlog} backlog (no runner up)", request_rate))
            rows.append((f"2 runners draining the {options.backlog} backlog", drain_rate))
        finally:
            bench.close()
    print("engine throughput (core.noop, end to end, executions/s)")
    for label, rate in rows:
        print(f"  {label:<52} {rate:8.1f}")
    if options.json:
        figures = [
            {"figure": label, "value": rate, "unit": "/s", "goal": 200, "better": "higher"}
            for label, rate in rows
            if "no runner up" not in label
        ]
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
