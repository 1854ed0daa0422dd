"""Orquesta workflows end to end: a with-items workflow over N items, and task transitions with a
1 MB context.

Starts the product as deployed: real ``st2api``, ``st2auth``, ``st2scheduler``,
``st2actionrunner`` and ``st2workflowengine`` processes on a scratch MariaDB database and a
RabbitMQ vhost of their own (created and removed), with the engine's default settings (st2.conf
names only the database, broker, ports and packs; ``--runner-concurrency`` sets
``[actionrunner] concurrency`` for a tuned run). A pack written into a temporary directory holds
two workflows of ``core.noop``, registered with ``st2ctl reload --register-all``:

* ``with_items``: one with-items task over ``range(count)`` items at ``concurrency: 50``. For
  each size (100 and 1,000 items; 10,000 with ``--large``) the time from ``POST /v1/executions``
  to the workflow's ``end_timestamp`` (``succeeded``), items per second, the ratio between
  consecutive sizes (linear growth is 10x time for 10x items), each process's CPU seconds, and a
  check that every item ran exactly once (one child execution per item id, all succeeded);
* ``sequence``: 20 tasks one after the other, each publishing a counter, whose input holds a
  1 MB object (1,000 strings of 1 KB). A transition is the time from task k's action execution
  ending (``end_timestamp``) to task k+1's being requested (``start_timestamp``, taken inside the
  workflow engine's transaction) and to its being scheduled (its log: after that transaction
  committed and the scheduler took it), read from the API: p50 and p95 over the 19 transitions
  of ``--runs`` workflows, taking turns with the same workflow over a tiny input, so the
  difference is what the 1 MB costs.

This process is the load generator (it posts and polls through the API); its own CPU is shown
beside the engine's processes'.

Usage: .venv/bin/python bench/orquesta.py [--sizes N ...] [--large] [--rounds 1] [--runs 3]
                                          [--runner-concurrency N] [--profile DIR]
Needs MariaDB (root on 127.0.0.1) and RabbitMQ (guest on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.support.st2cli import (
    RunningEngine,
    api_key_for,
    child_executions,
    running_engine,
)
from tests.integration.support.workflow_pack import write_workflow_pack

PACK = "orqbench"
SERVICES = ("st2api", "st2auth", "st2scheduler", "st2actionrunner", "st2workflowengine")
TASKS = 20
CONCURRENCY = 50
CONTEXT_ENTRIES = 1000
CONTEXT_ENTRY_BYTES = 1024
# The workflow's end is read from its end_timestamp; polling only notices it.
POLL_SECONDS = 0.25
CPU_COLUMNS = {
    "st2api": "api",
    "st2auth": "auth",
    "st2scheduler": "scheduler",
    "st2actionrunner": "runner",
    "st2workflowengine": "wf engine",
    "load generator": "load gen",
}
PROFILED = ("st2workflowengine", "st2actionrunner")
PROFILE_LINES = 15
PY_SPY = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
TERMINAL = {"succeeded", "failed", "timeout", "abandoned", "canceled"}
ITEMS_GOAL_SECONDS = 20.0
ITEMS_GOAL_SIZE = 1000
GROWTH_GOAL = 11.0
TRANSITION_GOAL_MS = 20.0

ITEMS_WORKFLOW = f"""\
version: 1.0
description: core.noop once per item, {CONCURRENCY} at a time.
input:
  - count
tasks:
  each:
    with:
      items: <% range(ctx(count)) %>
      concurrency: {CONCURRENCY}
    action: core.noop
"""


def sequence_workflow(tasks: int) -> str:
    """``tasks`` core.noop tasks in a row, each publishing a counter on success."""
    lines = [
        "version: 1.0",
        f"description: {tasks} core.noop tasks in a row.",
        "input:",
        "  - payload",
        "vars:",
        "  - step: 0",
        "tasks:",
    ]
    for number in range(1, tasks + 1):
        lines += [f"  task{number:02d}:", "    action: core.noop"]
        if number < tasks:
            lines += [
                "    next:",
                "      - when: <% succeeded() %>",
                "        publish:",
                "          - step: <% ctx(step) + 1 %>",
                f"        do: task{number + 1:02d}",
            ]
    lines += ["output:", "  - steps: <% ctx(step) %>"]
    return "\n".join(lines) + "\n"


def write_pack(base: Path) -> Path:
    """The bench's pack under ``base`` (a ``packs_base_paths`` entry)."""
    return write_workflow_pack(
        base,
        PACK,
        {
            "with_items": ({"count": {"type": "integer", "required": True}}, ITEMS_WORKFLOW),
            "sequence": (
                {"payload": {"type": "object", "required": True}},
                sequence_workflow(TASKS),
            ),
        },
    )


def deployed_settings(runner_concurrency: int | None) -> Any:
    """The st2.conf the services run with: the test harness's one without its short sweep and
    lease settings (the engine's defaults apply), plus the tuned runner concurrency if any."""

    def rewrite(path: Path) -> Path:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        for section in ("scheduler", "actionrunner"):
            parser.remove_section(section)
        if runner_concurrency is not None:
            parser["actionrunner"] = {"concurrency": str(runner_concurrency)}
        deployed = path.with_name("st2-deployed.conf")
        with deployed.open("w") as handle:
            parser.write(handle)
        return deployed

    return rewrite


def timestamp(text: str) -> float:
    """An API timestamp (``2026-01-01T00:00:00.000000Z``) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Run:
    """One workflow execution: its id, the seconds from the POST to its end, its CPU use."""

    execution: dict[str, Any]
    seconds: float
    cpu: dict[str, float]


class Bench:
    """Posts workflows to the API and waits for them, measuring the processes' CPU."""

    def __init__(self, engine: RunningEngine, client: httpx.Client) -> None:
        self.engine = engine
        self.client = client
        self.pids = {name: process.pid for name, process in engine.processes.items()}

    def cpu(self) -> dict[str, float]:
        found = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        found["load generator"] = time.process_time()
        return found

    def run(self, action: str, parameters: dict[str, Any], timeout: float) -> Run:
        """Start a workflow as a user would and wait for it to end."""
        before = self.cpu()
        posted = time.time()
        response = self.client.post(
            "/executions", json={"action": f"{PACK}.{action}", "parameters": parameters}
        )
        assert response.status_code == 201, response.text[:500]
        execution_id = str(response.json()["id"])
        deadline = time.monotonic() + timeout
        while True:
            found = self.client.get(
                f"/executions/{execution_id}",
                params={"include_attributes": "id,status,start_timestamp,end_timestamp,result"},
            ).json()
            if found["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                status = found["status"]
                raise SystemExit(f"{action} {execution_id} still {status} after {timeout}s")
            time.sleep(POLL_SECONDS)
        after = self.cpu()
        if found["status"] != "succeeded":
            raise SystemExit(f"{action} {execution_id} ended {found['status']}: {found['result']}")
        seconds = timestamp(found["end_timestamp"]) - posted
        return Run(found, seconds, {name: after[name] - before[name] for name in before})

    def children(self, execution_id: str) -> list[dict[str, Any]]:
        """Every child execution of a workflow, oldest first."""
        return child_executions(
            self.client, execution_id, "id,status,context,start_timestamp,end_timestamp,log"
        )


# --- profiles --------------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` on chosen processes while a phase runs (``--profile DIR``)."""

    def __init__(self, directory: Path | None, pids: dict[str, int]) -> None:
        self.directory = directory
        self.pids = pids
        self.files: dict[str, Path] = {}

    @contextmanager
    def recording(self, phase: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        spies = []
        for name in PROFILED:
            output = self.directory / f"{phase}.{name}.txt"
            self.files[f"{phase}: {name}"] = output
            command = [str(PY_SPY), "record", "--pid", str(self.pids[name]), "--rate", "50"]
            command += ["--format", "raw", "--nonblocking", "--output", str(output)]
            spies.append(
                subprocess.Popen(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(timeout=60)

    def report(self) -> None:
        """For each profile, where the samples are by the innermost PoundCake frame (the line
        of ours that was running, or waiting on the database, broker or JSON decoding)."""
        for label, path in self.files.items():
            by_frame: Counter[str] = Counter()
            for line in path.read_text().splitlines() if path.exists() else []:
                stack, _, samples = line.rpartition(" ")
                ours = [frame for frame in stack.split(";") if "poundcake/" in frame]
                by_frame[_short(ours[-1]) if ours else "(outside poundcake)"] += int(samples)
            total = sum(by_frame.values()) or 1
            print(f"\nprofile {label}: {total} samples ({path})")
            for frame, found in by_frame.most_common(PROFILE_LINES):
                print(f"  {found / total:6.1%}  {frame}")


def _short(frame: str) -> str:
    """``conduct (poundcake/engine/workflows/service.py:252)`` -> ``workflows/service.py:252
    conduct``."""
    function, _, where = frame.partition(" (")
    return f"{where.rstrip(')').split('poundcake/engine/')[-1]} {function}"


# --- with-items ------------------------------------------------------------------------------


@dataclass
class ItemsRuns:
    """The rounds of one with-items size."""

    size: int
    runs: list[Run]
    children: list[int]
    each_once: bool

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    def cpu(self, name: str) -> float:
        return statistics.median(run.cpu[name] for run in self.runs)


def measure_items(bench: Bench, size: int, rounds: int) -> ItemsRuns:
    measured = ItemsRuns(size, [], [], True)
    for _ in range(rounds):
        run = bench.run("with_items", {"count": size}, timeout=max(300.0, size * 0.5))
        children = bench.children(run.execution["id"])
        item_ids = sorted(child["context"]["orquesta"].get("item_id") for child in children)
        measured.runs.append(run)
        measured.children.append(len(children))
        measured.each_once = (
            measured.each_once
            and item_ids == list(range(size))
            and all(child["status"] == "succeeded" for child in children)
        )
    return measured


def report_items(measured: list[ItemsRuns]) -> list[dict[str, Any]]:
    rounds = len(measured[0].runs)
    print(
        f"\nwith-items over core.noop, concurrency {CONCURRENCY}: POST -> workflow succeeded"
        + (f" (median of {rounds} rounds)" if rounds > 1 else "")
    )
    names = list(measured[0].runs[0].cpu)
    print(
        f"  {'items':>7} {'seconds':>8} {'items/s':>8} {'children':>9} {'once':>5}  CPU s:"
        + "".join(f" {CPU_COLUMNS.get(name, name):>9}" for name in names)
    )
    for items in measured:
        print(
            f"  {items.size:>7,} {items.seconds:>8.2f} {items.size / items.seconds:>8.1f}"
            f" {max(items.children):>9,} {'yes' if items.each_once else 'NO':>5}       "
            + "".join(f" {items.cpu(name):>9.2f}" for name in names)
        )
    figures: list[dict[str, Any]] = []
    for items in measured:
        figures += [
            {
                "figure": f"with-items {items.size:,} items: POST -> succeeded",
                "value": items.seconds,
                "unit": "s",
                "better": "lower",
                **({"goal": ITEMS_GOAL_SECONDS} if items.size == ITEMS_GOAL_SIZE else {}),
            },
            {
                "figure": f"with-items {items.size:,} items: st2workflowengine CPU per item",
                "value": items.cpu("st2workflowengine") * 1000 / items.size,
                "unit": "ms",
                "better": "lower",
            },
            {
                "figure": f"with-items {items.size:,} items: items not run exactly once",
                "value": 0 if items.each_once else 1,
                "unit": "",
                "goal": 0,
                "better": "lower",
            },
        ]
    for smaller, larger in itertools.pairwise(measured):
        growth = larger.seconds / smaller.seconds
        scale = larger.size / smaller.size
        print(f"  {larger.size:,} / {smaller.size:,} items: {growth:.2f}x the time")
        figures.append(
            {
                "figure": f"with-items time {larger.size:,} / {smaller.size:,} items",
                "value": growth,
                "unit": "x",
                "goal": GROWTH_GOAL * scale / 10,
                "better": "lower",
            }
        )
    return figures


# --- transitions -----------------------------------------------------------------------------


def transitions(bench: Bench, execution_id: str) -> tuple[list[float], list[float]]:
    """Milliseconds from each task's action ending to the next task's action being requested
    (its ``start_timestamp``, taken while the workflow engine's transaction is still open), and
    to its being scheduled (its log; after that transaction committed and the scheduler took it)."""
    children = bench.children(execution_id)
    by_task = {child["context"]["orquesta"]["task_name"]: child for child in children}
    assert len(by_task) == TASKS == len(children), sorted(by_task)
    requested, scheduled = [], []
    for number in range(1, TASKS):
        ended = timestamp(by_task[f"task{number:02d}"]["end_timestamp"])
        following = by_task[f"task{number + 1:02d}"]
        requested.append((timestamp(following["start_timestamp"]) - ended) * 1000)
        moved = next(e["timestamp"] for e in following["log"] if e["status"] == "scheduled")
        scheduled.append((timestamp(moved) - ended) * 1000)
    return requested, scheduled


def large_payload() -> dict[str, str]:
    return {f"k{index:04d}": "x" * CONTEXT_ENTRY_BYTES for index in range(CONTEXT_ENTRIES)}


@dataclass
class Sequences:
    """The transitions of ``--runs`` sequence workflows over one context (see
    :func:`transitions`)."""

    requested: list[float]
    scheduled: list[float]
    runs: list[Run]

    @property
    def engine_ms_per_task(self) -> float:
        return statistics.median(run.cpu["st2workflowengine"] for run in self.runs) * 1000 / TASKS


def measure_sequences(bench: Bench, runs: int) -> dict[str, Sequences]:
    """``runs`` sequence workflows over each context, taking turns (whatever drifts on the
    machine meanwhile hits both alike)."""
    payloads = {"tiny context": {"k": "x"}, "1 MB context": large_payload()}
    measured = {label: Sequences([], [], []) for label in payloads}
    for _ in range(runs):
        for label, payload in payloads.items():
            run = bench.run("sequence", {"payload": payload}, timeout=300)
            assert run.execution["result"]["output"] == {"steps": TASKS - 1}, run.execution
            requested, scheduled = transitions(bench, run.execution["id"])
            measured[label].requested += requested
            measured[label].scheduled += scheduled
            measured[label].runs.append(run)
    return measured


def report_transitions(measured: dict[str, Sequences]) -> list[dict[str, Any]]:
    size = len(json.dumps(large_payload())) / 1024 / 1024
    print(
        f"\n{TASKS}-task sequence of core.noop (the large input is {size:.2f} MB of JSON): from"
        " task k's action ending to task k+1's requested, and to task k+1's scheduled"
    )
    figures: list[dict[str, Any]] = []
    for label, sequences in measured.items():
        workflow = statistics.median(run.seconds for run in sequences.runs)
        print(
            f"  {label}: workflow {workflow:.2f} s; st2workflowengine"
            f" {sequences.engine_ms_per_task:.1f} CPU ms per task (start and end included)"
        )
        for to, latencies in (
            ("requested", sequences.requested),
            ("scheduled", sequences.scheduled),
        ):
            print(
                f"    -> {to:<9} {len(latencies)} transitions: p50"
                f" {statistics.median(latencies):6.1f} ms, p95 {percentile(latencies, 0.95):6.1f}"
                f" ms, max {max(latencies):6.1f} ms"
            )
            figures += [
                {
                    "figure": f"transition to {to} p{percent}, {label}",
                    "value": value,
                    "unit": "ms",
                    "better": "lower",
                }
                for percent, value in (
                    (50, statistics.median(latencies)),
                    (95, percentile(latencies, 0.95)),
                )
            ]
        figures.append(
            {
                "figure": f"st2workflowengine CPU per task, {label}",
                "value": sequences.engine_ms_per_task,
                "unit": "ms",
                "better": "lower",
            }
        )
    large, tiny = measured["1 MB context"], measured["tiny context"]
    for to in ("requested", "scheduled"):
        added = statistics.median(getattr(large, to)) - statistics.median(getattr(tiny, to))
        print(f"  the 1 MB context adds {added:.1f} ms p50 per transition to {to}")
        figures.append(
            {
                "figure": f"transition to {to} p50 added by a 1 MB context",
                "value": added,
                "unit": "ms",
                "goal": TRANSITION_GOAL_MS,
                "better": "lower",
            }
        )
    added_cpu = large.engine_ms_per_task - tiny.engine_ms_per_task
    print(f"  and {added_cpu:.1f} ms of st2workflowengine CPU per task")
    return figures


# --- the run ---------------------------------------------------------------------------------


def measure(engine: RunningEngine, options: argparse.Namespace) -> list[dict[str, Any]]:
    headers = {"St2-Api-Key": api_key_for(engine)}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=60) as client:
        bench = Bench(engine, client)
        profiler = Profiler(options.profile, bench.pids)
        bench.run("with_items", {"count": 10}, timeout=120)
        bench.run("sequence", {"payload": {"k": "x"}}, timeout=120)
        items = []
        for size in options.sizes:
            with (
                profiler.recording(f"with-items-{size}")
                if size == max(options.sizes)
                else (contextlib.nullcontext())
            ):
                items.append(measure_items(bench, size, options.rounds))
        with profiler.recording("sequences"):
            sequences = measure_sequences(bench, options.runs)
    concurrency = options.runner_concurrency or "8 (default)"
    print(f"\n[actionrunner] concurrency {concurrency}; one process of each service")
    figures = report_items(items)
    figures += report_transitions(sequences)
    profiler.report()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", action="store_true", help="also 10,000 items")
    parser.add_argument("--sizes", type=int, nargs="+", help="item counts (default 100 1000)")
    parser.add_argument("--rounds", type=int, default=1, help="with-items runs per size")
    parser.add_argument("--runs", type=int, default=3, help="sequence workflows per context")
    parser.add_argument(
        "--runner-concurrency", type=int, help="[actionrunner] concurrency (default: the engine's)"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy profiles of st2workflowengine and st2actionrunner here"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the services' logs here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    options.sizes = options.sizes or [100, 1000, *([10000] if options.large else [])]
    if options.profile:
        if PY_SPY is None:
            parser.error("--profile needs py-spy (.venv/bin/pip install py-spy)")
        options.profile.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-orquesta-") as directory:
        packs = write_pack(Path(directory) / "packs")
        print(f"starting {', '.join(SERVICES)} ...", flush=True)
        with running_engine(
            Path(directory),
            services=SERVICES,
            extra_conf=f"[content]\npacks_base_paths = {packs}\n",
            service_config=deployed_settings(options.runner_concurrency),
        ) as engine:
            try:
                figures = measure(engine, options)
            finally:
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
