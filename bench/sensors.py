"""A passive sensor dispatching 1,000 trigger instances a second for 30 s into a rule.

Starts the product as deployed: real ``st2api``, ``st2auth``, ``st2scheduler``,
``st2actionrunner``, ``st2rulesengine`` and ``st2sensorcontainer`` processes on a scratch
MariaDB database and a RabbitMQ vhost of their own (created and removed), with the engine's
default settings. A pack written into a temporary directory holds:

* ``sensorbench.LoadSensor``, a passive sensor (the load generator), registered disabled. The
  bench sets ``sensorbench.rate`` and ``sensorbench.seconds`` in the datastore and enables it
  through the API; it then dispatches ``sensorbench.tick`` (payload ``{seq, sent}``, checked
  against the trigger type's payload schema) at that rate, paced on the clock, and stores what it
  dispatched and its own CPU time in ``sensorbench.done``;
* the rule ``sensorbench.on_tick``: every tick runs ``core.noop`` (the ``noop`` runner: no
  process, no output, the cheapest action there is).

It prints how many ticks were dispatched, trigger instances stored, rule enforcements and
executions requested (none may be lost), p50/p99/max from dispatch (the instance's
``occurrence_time``, taken in ``sensor_service.dispatch``) to the rule's execution being
requested (its ``start_timestamp``, taken in the rules engine's transaction), and the CPU seconds
of each process during the run: the services, the sensor process, MariaDB and RabbitMQ.

The services connect as a MariaDB user of their own, made for the run, so the server's
``information_schema.USER_STATISTICS`` (the ``userstat`` switch is turned on for the run and
restored after) counts their statements alone: the bench prints statements, commits and rows
per trigger instance, figures that other work on the machine does not move, beside CPU seconds
per trigger instance. It then waits until every execution ended and every completion trigger was
processed, and prints the CPU seconds and statements of the whole pipeline per tick.

``--profile DIR`` samples every service with ``py-spy`` (``.venv/bin/py-spy``) while the sensor
dispatches and until the last execution is requested, one file per service in DIR: flame graphs
(``--profile-format flamegraph``, the default) or py-spy's ``raw`` collapsed stacks, with idle
time (waits on the database or the broker) included.

Usage: .venv/bin/python bench/sensors.py [--rate 1000] [--seconds 30] [--rules-batch-size N]
                                         [--profile DIR] [--json FILE]
Needs MariaDB (root on 127.0.0.1) and RabbitMQ (guest on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orquesta import deployed_settings, percentile
from processes import cpu_of, profiled, server_pids
from statements import ServiceUser, connecting_as, print_statements
from tests.integration.support.sensor_stack import SENSOR_SERVICES
from tests.integration.support.st2cli import (
    RunningEngine,
    api_key_for,
    eventually,
    running_engine,
)

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.rules.models import RuleEnforcementDB
from poundcake.engine.triggers.models import TriggerInstanceDB

PACK = "sensorbench"
TRIGGER = f"{PACK}.tick"
SERVICES = SENSOR_SERVICES
P99_GOAL_MS = 500.0

SENSOR_YAML = f"""\
---
class_name: LoadSensor
entry_point: load_sensor.py
description: Dispatches {TRIGGER} at the rate the bench sets in the datastore.
enabled: false
trigger_types:
  - name: tick
    description: One tick of the load sensor.
    payload_schema:
      type: object
      properties:
        seq:
          type: integer
          required: true
        sent:
          type: number
"""

SENSOR_PY = f"""\
import json
import threading
import time

from st2reactor.sensor.base import Sensor


class LoadSensor(Sensor):
    def setup(self):
        self._stop = threading.Event()

    def run(self):
        service = self.sensor_service
        rate = float(service.get_value("{PACK}.rate", local=False))
        seconds = float(service.get_value("{PACK}.seconds", local=False))
        total = int(rate * seconds)
        cpu_before = time.process_time()
        started = time.monotonic()
        for seq in range(total):
            due = started + seq / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            service.dispatch(trigger="{TRIGGER}", payload={{"seq": seq, "sent": time.time()}})
        wall = time.monotonic() - started
        done = {{"dispatched": total, "seconds": wall, "cpu": time.process_time() - cpu_before}}
        service.set_value("{PACK}.done", json.dumps(done), local=False)
        self._stop.wait()

    def cleanup(self):
        self._stop.set()

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
"""

RULE_YAML = f"""\
---
name: on_tick
pack: {PACK}
description: Every tick runs core.noop.
enabled: true
trigger:
  type: {TRIGGER}
action:
  ref: core.noop
"""


def write_pack(base: Path) -> Path:
    """The bench's pack under ``base`` (a ``packs_base_paths`` entry)."""
    pack = base / PACK
    (pack / "sensors").mkdir(parents=True)
    (pack / "rules").mkdir()
    (pack / "pack.yaml").write_text(
        f"---\nname: {PACK}\ndescription: The sensor benchmark's load.\nversion: 1.0.0\n"
        "author: PoundCake\nemail: engineering@example.com\n"
    )
    (pack / "sensors" / "load_sensor.yaml").write_text(SENSOR_YAML)
    (pack / "sensors" / "load_sensor.py").write_text(SENSOR_PY)
    (pack / "rules" / "on_tick.yaml").write_text(RULE_YAML)
    return base


def sensor_pid() -> int | None:
    """The load sensor's wrapper process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"poundcake.engine.sensors.green" in command and b"--class-name=LoadSensor" in command:
            return int(entry.name)
    return None


class Counts:
    """Counts and latencies read from the engine's database (as the admin, so that the
    bench's own queries are not counted with the services')."""

    def __init__(self, config_path: Path) -> None:
        self.db_engine = make_st2_engine(load_st2_config(config_path), pool_size=1)

    def close(self) -> None:
        self.db_engine.dispose()

    def scalar(self, statement: Any) -> int:
        with self.db_engine.connect() as connection:
            return int(connection.scalar(statement) or 0)

    def instances(self) -> int:
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(TriggerInstanceDB)
            .where(TriggerInstanceDB.trigger == TRIGGER)
        )

    def processed(self) -> int:
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(TriggerInstanceDB)
            .where(TriggerInstanceDB.trigger == TRIGGER, TriggerInstanceDB.status == "processed")
        )

    def enforcements(self) -> int:
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(RuleEnforcementDB)
            .where(RuleEnforcementDB.rule_ref == f"{PACK}.on_tick")
        )

    def executions(self) -> int:
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(ExecutionDB)
            .join(RuleEnforcementDB, RuleEnforcementDB.execution_id == ExecutionDB.id)
            .where(RuleEnforcementDB.rule_ref == f"{PACK}.on_tick")
        )

    def settled(self) -> int:
        """Executions of the rule that ended."""
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(ExecutionDB)
            .where(ExecutionDB.rule_ref == f"{PACK}.on_tick", ExecutionDB.status == "succeeded")
        )

    def pending(self) -> int:
        """Trigger instances (ticks and completion triggers) not processed yet."""
        return self.scalar(
            sa.select(sa.func.count())
            .select_from(TriggerInstanceDB)
            .where(TriggerInstanceDB.status.in_(("pending", "processing")))
        )

    def latencies_ms(self) -> list[float]:
        """Dispatch (occurrence_time) to execution requested (start_timestamp), per tick."""
        query = (
            sa.select(TriggerInstanceDB.occurrence_time, ExecutionDB.start_timestamp)
            .join(RuleEnforcementDB, RuleEnforcementDB.trigger_instance_id == TriggerInstanceDB.id)
            .join(ExecutionDB, ExecutionDB.id == RuleEnforcementDB.execution_id)
            .where(TriggerInstanceDB.trigger == TRIGGER)
        )
        with self.db_engine.connect() as connection:
            rows = connection.execute(query).all()
        return [(requested - occurred).total_seconds() * 1000 for occurred, requested in rows]


def run_load(
    engine: RunningEngine,
    rate: float,
    seconds: float,
    user: ServiceUser,
    profile: tuple[Path | None, str],
) -> list[dict[str, Any]]:
    headers = {"St2-Api-Key": api_key_for(engine)}
    counts = Counts(user.admin_config or engine.config_path)
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=60) as client:
        for name, value in (("rate", rate), ("seconds", seconds)):
            answer = client.put(
                f"/keys/{PACK}.{name}", json={"name": f"{PACK}.{name}", "value": str(value)}
            )
            answer.raise_for_status()
        pids = {name: process.pid for name, process in engine.processes.items()}
        pids.update(server_pids())
        sensor = client.get(f"/sensortypes/{PACK}.LoadSensor").json()
        sensor["enabled"] = True
        client.put(f"/sensortypes/{PACK}.LoadSensor", json=sensor).raise_for_status()
        load_pid = eventually(sensor_pid, "the load sensor's process", timeout=60)
        pids["sensor (load generator)"] = load_pid
        services = {name: pids[name] for name in engine.processes}
        services["sensor (load generator)"] = load_pid
        before = cpu_of(pids, trees=False)
        statements_before = user.counts()
        started = time.monotonic()
        with profiled(services, *profile, subprocesses=False, idle=True):
            done_key = eventually(
                lambda: (
                    (found := client.get(f"/keys/{PACK}.done")).status_code == 200 and found.json()
                ),
                "the sensor to finish dispatching",
                timeout=seconds * 4 + 120,
            )
            done = json.loads(done_key["value"])
            total = int(done["dispatched"])
            eventually(
                lambda: counts.executions() >= total and counts.processed() >= total,
                "every tick's execution to be requested",
                timeout=seconds * 10 + 120,
            )
            after = cpu_of(pids, trees=False)
            statements_after = user.counts()
            elapsed = time.monotonic() - started
            eventually(
                lambda: counts.settled() >= total and not counts.pending(),
                "every tick's execution to end and every trigger instance to be processed",
                timeout=seconds * 20 + 300,
            )
            settled = cpu_of(pids, trees=False)
            statements_settled = user.counts()
            settled_elapsed = time.monotonic() - started
    instances, enforcements, executions = (
        counts.instances(),
        counts.enforcements(),
        counts.executions(),
    )
    latencies = counts.latencies_ms()
    counts.close()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"\nrule action: core.noop (noop runner); rate {rate:.0f}/s for {seconds:.0f} s")
    achieved = total / done["seconds"]
    print(
        f"dispatched                 {total:>10,}  in {done['seconds']:.1f} s ({achieved:,.0f}/s)"
    )
    print(f"trigger instances stored   {instances:>10,}")
    print(f"rule enforcements          {enforcements:>10,}")
    print(f"executions requested       {executions:>10,}")
    print(f"lost                       {total - executions:>10,}")
    print(f"dispatch -> requested p50  {p50:>10.1f} ms")
    print(f"dispatch -> requested p99  {p99:>10.1f} ms   (goal <= {P99_GOAL_MS:.0f} ms)")
    print(f"dispatch -> requested max  {max(latencies):>10.1f} ms")
    print(f"\nCPU seconds over {elapsed:.1f} s (from the sensor's start to the last execution):")
    for name in sorted(after):
        used = after[name] - before.get(name, after[name])
        print(
            f"  {name:<26} {used:>7.1f} s  ({used / elapsed * 100:>5.1f}% of one core, "
            f"{used / total * 1e3:>6.2f} ms per trigger instance)"
        )
    print(f"  the sensor's own count     {done['cpu']:>7.1f} s while dispatching")
    print_statements(statements_before, statements_after, total)
    print(
        f"\nThe whole pipeline, until every execution ended and its completion trigger was "
        f"processed ({settled_elapsed:.1f} s):"
    )
    whole = sum(
        settled[name] - before.get(name, settled[name])
        for name in settled
        if name != "sensor (load generator)"
    )
    print(f"  CPU, every process but the load generator  {whole / total * 1e3:>6.2f} ms per tick")
    print_statements(statements_before, statements_settled, total)
    return [
        {
            "figure": "ticks lost (dispatched - executions requested)",
            "value": total - executions,
            "unit": "",
            "goal": 0,
            "better": "lower",
        },
        {"figure": "dispatch -> execution requested p50", "value": p50, "unit": "ms", "goal": None},
        {
            "figure": "dispatch -> execution requested p99",
            "value": p99,
            "unit": "ms",
            "goal": P99_GOAL_MS,
            "better": "lower",
        },
        {
            "figure": "dispatch rate achieved",
            "value": achieved,
            "unit": "/s",
            "goal": rate,
            "better": "higher",
        },
    ]


def tuned(rules_batch_size: int | None, user: ServiceUser) -> Any:
    """The deployed st2.conf, connecting as ``user``, with ``[rulesengine] batch_size`` if
    asked."""
    deployed = deployed_settings(None)

    def batched(path: Path) -> Path:
        written: Path = deployed(path)
        if rules_batch_size is not None:
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(written)
            parser["rulesengine"] = {"batch_size": str(rules_batch_size)}
            with written.open("w") as handle:
                parser.write(handle)
        return written

    return connecting_as(user, batched)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="ticks per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long the sensor dispatches")
    parser.add_argument(
        "--rules-batch-size", type=int, help="[rulesengine] batch_size (default: the engine's)"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs here")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the services here")
    parser.add_argument(
        "--profile-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    load_before = os.getloadavg()[0]
    user = ServiceUser()
    with tempfile.TemporaryDirectory(prefix="bench-sensors-") as directory:
        packs = write_pack(Path(directory) / "packs")
        print(f"starting {', '.join(SERVICES)} ...", flush=True)
        with running_engine(
            Path(directory),
            services=SERVICES,
            extra_conf=f"[content]\npacks_base_paths = {packs}\n",
            service_config=tuned(options.rules_batch_size, user),
        ) as engine:
            try:
                figures = run_load(
                    engine,
                    options.rate,
                    options.seconds,
                    user,
                    (options.profile, options.profile_format),
                )
            finally:
                user.drop()
                if options.keep_logs:
                    options.keep_logs.mkdir(parents=True, exist_ok=True)
                    for service in SERVICES:
                        (options.keep_logs / f"{service}.log").write_text(engine.log(service))
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the run and "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine slows every figure)"
    )
    if options.json:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
