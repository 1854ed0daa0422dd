"""An 8 MB execution result through the engine: the runner stores it, the API serves it.

Starts real ``st2api``, ``st2auth``, ``st2scheduler`` and ``st2actionrunner`` processes on a
scratch MariaDB database (as the integration tests do), requests ``core.local`` executions whose
command prints ``--megabytes`` of log-like output (``bench.loadgen.mixed_lines``: 80-character
lines with quotes, backslashes, tabs and 2-, 3- and 4-byte UTF-8, one write per line, so the
runner's per-line path and the output writer see about 100,000 lines), and reports:

* the time from ``POST /v1/executions`` to the execution recorded ``succeeded`` with its whole
  result (the runner reads the output, builds the result, writes it to ``execution_db``);
* the latency of ``GET /v1/executions/<id>`` for it (``--requests`` times; p50, p99, max) and
  the bytes served;
* the peak resident memory (``VmHWM``) of ``st2actionrunner`` and ``st2api`` above what each
  used before the first large result, as a multiple of the result size.

The stored and served ``stdout`` is checked to be exactly the text the command printed.

Usage: .venv/bin/python bench/results_8mb.py [--megabytes 8] [--executions 3] [--requests 20]
Needs MariaDB (root on 127.0.0.1) and RabbitMQ (guest on 127.0.0.1) like the test suite.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import load_average, mixed_lines, percentile  # noqa: E402
from tests.integration.support.st2cli import (  # noqa: E402
    RunningEngine,
    api_key_for,
    eventually,
    running_engine,
)

STORE_GOAL_SECONDS = 5.0
GET_P99_GOAL_MS = 1000.0
MEMORY_GOAL_MULTIPLE = 4.0
TERMINAL = {"succeeded", "failed", "timeout", "abandoned", "canceled"}


def memory_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory figure (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def run_one(client: httpx.Client, size: int) -> tuple[str, float]:
    """Request one execution printing ``size`` bytes; (its id, seconds until it is stored)."""
    program = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from bench.loadgen import write_mixed_lines; write_mixed_lines({size})"
    )
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(program)}"
    started = time.perf_counter()
    response = client.post(
        "/executions", json={"action": "core.local", "parameters": {"cmd": command}}
    )
    assert response.status_code == 201, response.text
    execution_id = str(response.json()["id"])

    def done() -> dict[str, Any] | None:
        found = client.get(f"/executions/{execution_id}", params={"include_attributes": "status"})
        status = found.json().get("status")
        return found.json() if status in TERMINAL else None

    finished = eventually(done, f"execution {execution_id}", timeout=300)
    seconds = time.perf_counter() - started
    assert finished["status"] == "succeeded", finished
    return execution_id, seconds


def fetch(
    client: httpx.Client, execution_id: str, requests: int, size: int
) -> tuple[list[float], int]:
    """Latencies (ms) of ``GET /v1/executions/<id>`` and the bytes of one answer."""
    latencies = []
    served = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(f"/executions/{execution_id}")
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:200]
        served = len(response.content)
    stdout = response.json()["result"]["stdout"]
    expected = mixed_lines(size).removesuffix("\n")
    assert stdout == expected and not response.json().get("result_truncated"), len(stdout)
    return latencies, served


def measure(engine: RunningEngine, options: argparse.Namespace) -> list[dict[str, Any]]:
    size = int(options.megabytes * 1024 * 1024)
    headers = {"St2-Api-Key": api_key_for(engine)}
    pids = {name: engine.processes[name].pid for name in ("st2actionrunner", "st2api")}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=120) as client:
        run_one(client, 1024)
        baseline = {name: memory_kib(pid, "VmRSS") for name, pid in pids.items()}
        stored = [run_one(client, size) for _ in range(options.executions)]
        latencies, served = fetch(client, stored[-1][0], options.requests, size)
    peaks = {name: memory_kib(pid, "VmHWM") - baseline[name] for name, pid in pids.items()}
    seconds = [value for _, value in stored]
    print(
        f"{options.megabytes:g} MB results ({size // 80:,} lines of 80 characters, mixed bytes): "
        f"{options.executions} executions, {served:,} bytes served; {load_average()}"
    )
    print(
        f"  POST -> succeeded (stored)    median {statistics.median(seconds):7.2f} s, "
        f"max {max(seconds):.2f} s"
    )
    print(
        f"  GET /v1/executions/<id>       p50 {statistics.median(latencies):7.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )
    for name, kib in peaks.items():
        print(
            f"  {name} peak memory above baseline {kib / 1024:7.1f} MB "
            f"({kib * 1024 / size:.1f}x the result)"
        )
    figures = [
        (
            f"{options.megabytes:g} MB result: POST -> stored, median",
            statistics.median(seconds),
            "s",
            STORE_GOAL_SECONDS,
        ),
        (
            f"{options.megabytes:g} MB result: GET p99",
            percentile(latencies, 0.99),
            "ms",
            GET_P99_GOAL_MS,
        ),
    ]
    figures += [
        (
            f"{options.megabytes:g} MB result: {name} peak memory / result",
            kib * 1024 / size,
            "x",
            MEMORY_GOAL_MULTIPLE,
        )
        for name, kib in peaks.items()
    ]
    keys = ("figure", "value", "unit", "goal")
    return [dict(zip(keys, row, strict=True)) | {"better": "lower"} for row in figures]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=8, help="size of each result")
    parser.add_argument("--executions", type=int, default=3, help="large executions to store")
    parser.add_argument("--requests", type=int, default=20, help="GETs of the last one")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-results-8mb-") as directory:
        print("starting st2api, st2auth, st2scheduler and st2actionrunner ...", flush=True)
        with running_engine(Path(directory)) as engine:
            figures = measure(engine, options)
    if options.json:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
