"""Engine throughput: core.noop executions per second, requested through st2api over HTTP.

Starts the engine as processes on a scratch MariaDB database and RabbitMQ vhost (``st2api``,
``st2auth``, ``st2scheduler``, ``st2actionrunner``, ``st2rulesengine``, with the engine's
default settings), then loads it as users do: ``wrk`` (a separate process, with
``bench/wrk/post_json.lua``) POSTs ``/v1/executions`` of ``core.noop`` with an API key over
``--connections`` keep-alive connections until ``--count`` were accepted. Every finished
execution writes a ``core.st2.generic.actiontrigger`` instance that the rules engine processes;
a phase ends when every execution succeeded and every completion trigger was processed. Reported
per phase, from the database's own timestamps: executions/s from the first request to the last
completion, the HTTP request rate and latency (wrk), the trigger backlog's drain, the CPU of wrk
and of every engine process (and per execution), the services' statements, commits and rows
per execution (they connect as a MariaDB user of their own, counted by the server's
``USER_STATISTICS``: figures other work on the machine does not move), and the load average:

* with 1 and with 2 action runner processes;
* a backlog of ``--backlog`` executions requested while no runner was up, then drained by 2.

Usage: .venv/bin/python bench/engine_throughput.py [--count 2000] [--backlog 20000]
Needs MariaDB (root on 127.0.0.1), RabbitMQ (guest on 127.0.0.1) and wrk.
"""

from __future__ import annotations

import argparse
import configparser
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import WrkFigures, load_average, parse_wrk, process_cpu_seconds  # noqa: E402
from bench.statements import ServiceUser, connecting_as, print_statements  # noqa: E402
from tests.e2e.stack import untuned  # noqa: E402
from tests.integration.support.st2cli import (  # noqa: E402
    SERVICES,
    RunningEngine,
    api_key_for,
    running_engine,
)

BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "wrk" / "post_json.lua"
ENGINE_SERVICES = (*SERVICES, "st2rulesengine")
GOAL = 200.0
BODY = json.dumps({"action": "core.noop", "parameters": {}})


@dataclass
class Phase:
    """One measured phase."""

    label: str
    count: int
    seconds: float
    wrk: WrkFigures
    wrk_cpu: float
    cpu: dict[str, float]
    trigger_lag: float
    load: str
    statements: tuple[dict[str, int], dict[str, int]] | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class Bench:
    """The running engine, its database, and the extra runner processes a phase starts."""

    def __init__(self, engine: RunningEngine, key: str, user: ServiceUser) -> None:
        self.engine = engine
        self.key = key
        self.user = user
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(engine.config_path)
        self.database = parser["database"]["db_name"]
        self.extra: list[subprocess.Popen[bytes]] = []

    def sql(self, statement: str) -> tuple[object, ...]:
        with pymysql.connect(host="127.0.0.1", user="root", database=self.database) as db:
            cursor = db.cursor()
            cursor.execute(statement)
            row = cursor.fetchone()
            return tuple(row) if row else ()

    def runner(self) -> subprocess.Popen[bytes]:
        """Start one more ``st2actionrunner``."""
        log = (self.engine.directory / "st2actionrunner-extra.log").open("ab")
        process = subprocess.Popen(
            [str(BIN / "st2actionrunner"), "--config-file", str(self.engine.config_path)],
            stdout=log,
            stderr=log,
        )
        self.extra.append(process)
        return process

    def stop_extra(self) -> None:
        for process in self.extra:
            process.terminate()
        for process in self.extra:
            process.wait(timeout=60)
        self.extra = []

    def processes(self) -> dict[str, int]:
        found = {name: process.pid for name, process in self.engine.processes.items()}
        found.update({f"st2actionrunner-{i + 2}": p.pid for i, p in enumerate(self.extra)})
        return {name: pid for name, pid in found.items() if Path(f"/proc/{pid}").exists()}

    def request(self, since: str, count: int, connections: int) -> tuple[WrkFigures, float]:
        """POST ``count`` executions with wrk; its figures and its CPU seconds.

        The Lua script stops sending after ``count`` answers, but wrk itself runs for its whole
        duration: once the database holds ``count`` executions, wrk is interrupted (SIGINT,
        upon which it reports as usual).
        """
        command = [
            "wrk",
            *("-t1", f"-c{connections}", "-d3600s", "--timeout", "60s"),
            *("-s", str(LUA), f"{self.engine.api_url}/executions"),
            *("--", "St2-Api-Key", self.key, BODY, "0", str(count)),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = subprocess.Popen(
            command, cwd=LUA.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            while self.requested_since(since) < count and wrk.poll() is None:
                time.sleep(0.1)
            wrk.send_signal(signal.SIGINT)
            stdout, stderr = wrk.communicate(timeout=120)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if wrk.returncode != 0:
            raise SystemExit(f"wrk exited {wrk.returncode}: {stderr}{stdout}")
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return parse_wrk(stdout), cpu

    def requested_since(self, since: str) -> int:
        """Executions created since ``since`` (a POST answers 201 once its row is committed)."""
        found = self.sql(f"SELECT COUNT(*) FROM execution_db WHERE start_timestamp > '{since}'")
        return int(str(found[0]))

    def finished_after(self, since: str) -> tuple[int, int, float, float]:
        """Executions requested since ``since``: succeeded, completion triggers processed, and
        the first start and last end (epoch seconds, from the database's timestamps)."""
        executions = self.sql(
            "SELECT COUNT(*), COALESCE(UNIX_TIMESTAMP(MIN(start_timestamp)), 0), "
            "COALESCE(UNIX_TIMESTAMP(MAX(end_timestamp)), 0) FROM execution_db "
            f"WHERE status = 'succeeded' AND start_timestamp > '{since}'"
        )
        triggers = self.sql(
            "SELECT COUNT(*) FROM trigger_instance_db WHERE status = 'processed' "
            f"AND `trigger` = 'core.st2.generic.actiontrigger' AND occurrence_time > '{since}'"
        )
        succeeded, first, last = (float(str(value)) for value in executions)
        return int(succeeded), int(str(triggers[0])), first, last

    def wait_done(
        self, since: str, count: int, timeout: float = 1800
    ) -> tuple[float, float, float]:
        """Wait for ``count`` successes and their processed completion triggers.

        Returns the first start and last end (epoch seconds) and how long after the last
        success the last trigger was seen processed (the poll's 0.2 s is its resolution).
        """
        deadline = time.monotonic() + timeout
        all_succeeded_at = None
        while True:
            succeeded, processed, first, last = self.finished_after(since)
            if succeeded >= count and all_succeeded_at is None:
                all_succeeded_at = time.monotonic()
            if succeeded >= count and processed >= count:
                assert all_succeeded_at is not None
                return first, last, time.monotonic() - all_succeeded_at
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"timed out: {succeeded} of {count} succeeded, {processed} triggers processed"
                )
            time.sleep(0.2)

    def now(self) -> str:
        return str(self.sql("SELECT UTC_TIMESTAMP(6)")[0])

    def phase(self, label: str, count: int, connections: int, runners: int) -> Phase:
        for _ in range(runners - 1):
            self.runner()
        since = self.now()
        pids = self.processes()
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        counted = self.user.counts()
        figures, wrk_cpu = self.request(since, count, connections)
        first, last, lag = self.wait_done(since, count)
        cpu = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        statements = (counted, self.user.counts())
        load = load_average()
        self.stop_extra()
        return Phase(label, count, last - first, figures, wrk_cpu, cpu, lag, load, statements)

    def backlog_phase(self, count: int, connections: int) -> tuple[Phase, Phase]:
        """Request ``count`` with no runner up, then drain with two."""
        runner = self.engine.processes.pop("st2actionrunner")
        runner.terminate()
        runner.wait(timeout=60)
        since = self.now()
        figures, wrk_cpu = self.request(since, count, connections)
        requested = Phase(
            f"requests into a {count} backlog (no runner up)",
            count,
            figures.seconds,
            figures,
            wrk_cpu,
            {},
            0.0,
            load_average(),
        )
        pids = {name: process.pid for name, process in self.engine.processes.items()}
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        counted = self.user.counts()
        started = time.time()
        self.runner()
        self.runner()
        _, last, lag = self.wait_done(since, count)
        cpu = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu.update(
            {
                f"st2actionrunner-{i + 2}": process_cpu_seconds(p.pid)
                for i, p in enumerate(self.extra)
            }
        )
        statements = (counted, self.user.counts())
        drained = Phase(
            f"2 runners draining the {count} backlog",
            count,
            last - started,
            figures,
            0.0,
            cpu,
            lag,
            load_average(),
            statements,
        )
        self.stop_extra()
        return requested, drained


def show(phase: Phase) -> None:
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(phase.cpu.items()))
    print(
        f"  {phase.label:<46} {phase.rate:8.1f}/s  HTTP {phase.wrk.requests_per_second:7.1f} req/s "
        f"p50 {phase.wrk.p50_ms:.0f} ms p99 {phase.wrk.p99_ms:.0f} ms, non-2xx "
        f"{phase.wrk.non_2xx}; triggers processed {phase.trigger_lag:.1f} s after the last "
        f"execution; CPU s: wrk {phase.wrk_cpu:.2f}{', ' + cpu if cpu else ''}; {phase.load}",
        flush=True,
    )
    if phase.cpu:
        engine_cpu = sum(phase.cpu.values())
        print(
            f"    CPU of the engine's processes: {engine_cpu / phase.count * 1e3:.2f} ms"
            " per execution"
        )
    if phase.statements is not None:
        print_statements(*phase.statements, phase.count, "execution")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    phases: list[Phase] = []
    print(f"engine throughput (core.noop through st2api, end to end); {load_average()}")
    user = ServiceUser()
    with (
        tempfile.TemporaryDirectory(prefix="bench-engine-") as directory,
        running_engine(
            Path(directory),
            services=ENGINE_SERVICES,
            service_config=connecting_as(user, untuned),
        ) as engine,
    ):
        bench = Bench(engine, api_key_for(engine), user)
        try:
            for runners in (1, 2):
                label = f"{runners} runner{'s' if runners > 1 else ''}, {options.count} executions"
                phases.append(bench.phase(label, options.count, options.connections, runners))
                show(phases[-1])
            for phase in bench.backlog_phase(options.backlog, options.connections):
                phases.append(phase)
                show(phase)
        finally:
            bench.stop_extra()
            user.drop()
    if options.json:
        figures = [
            {"figure": phase.label, "value": phase.rate, "unit": "/s", "goal": GOAL}
            | {"better": "higher"}
            for phase in phases
            if "no runner up" not in phase.label
        ]
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
