#!/usr/bin/env python
"""Run every benchmark in ``bench/`` one after the other and print one table against the goals.

Each script runs as its own process with ``--json`` and writes its figures (figure, value, unit,
goal, whether higher or lower is better); its own output goes to ``<logs>/<script>.log``. The
table gives each figure, its goal, the ratio value / goal from this same run, whether the goal
is met, and the previous figure beside the new one: the same benchmark and figure in
``--previous`` (default ``bench/figures.json``, the figures of the last run saved with
``--save``; a ``--json`` file of an earlier run works too). ``--save`` writes this run's figures
there, keeping those of the benchmarks it did not run. ``--quick`` runs every script with small
sizes (a few minutes in all); without it the sizes are those in ``bench/README.md``. Exits 1 if
a script failed or wrote no figures (an unmet goal is reported, not an error).

Usage: .venv/bin/python bench/run_all.py [--quick] [--only NAME] [--logs DIR] [--json FILE]
                                         [--previous FILE] [--save]
Needs MariaDB, RabbitMQ and Redis like the test suite (./test.sh starts them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.loadgen import load_average  # noqa: E402

FIGURES = BENCH / "figures.json"


@dataclass(frozen=True)
class Benchmark:
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


BENCHMARKS = (
    Benchmark("rules_eval.py", ("--seconds", "3"), ("--seconds", "0.5")),
    Benchmark("workflow_expressions.py", ("--seconds", "2"), ("--seconds", "0.5")),
    Benchmark("intake.py", ("--seconds", "10"), ("--seconds", "2", "--rounds", "1")),
    Benchmark(
        "engine_throughput.py",
        ("--count", "2000", "--backlog", "20000"),
        ("--count", "200", "--backlog", "1000"),
    ),
    Benchmark(
        "api_list.py",
        ("--rows", "1000000", "--requests", "300"),
        ("--rows", "20000", "--requests", "50"),
    ),
    Benchmark(
        "alert_to_action.py",
        ("--rate", "50", "--seconds", "12", "--guarded"),
        ("--rate", "10", "--seconds", "5"),
    ),
    Benchmark("results_8mb.py", (), ("--executions", "1", "--requests", "5")),
    Benchmark("orquesta.py", ("--large", "--runs", "3"), ("--sizes", "50", "500", "--runs", "1")),
    Benchmark(
        "sensors.py", ("--rate", "1000", "--seconds", "30"), ("--rate", "200", "--seconds", "5")
    ),
)


def run(benchmark: Benchmark, quick: bool, logs: Path) -> tuple[list[dict[str, Any]], str]:
    """Run one script; its figures and a note ("" when it went well)."""
    name = benchmark.script.removesuffix(".py")
    output = logs / f"{name}.json"
    output.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(BENCH / benchmark.script),
        *(benchmark.quick if quick else benchmark.full),
        "--json",
        str(output),
    ]
    print(f"{name}: {' '.join(command[2:])} ...", end=" ", flush=True)
    started = time.monotonic()
    with (logs / f"{name}.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(f"{time.monotonic() - started:.0f} s", flush=True)
    if done.returncode != 0:
        return [], f"exited {done.returncode}, see {logs / name}.log"
    if not output.exists():
        return [], f"wrote no figures, see {logs / name}.log"
    figures: list[dict[str, Any]] = json.loads(output.read_text())
    return figures, ""


def judge(figure: dict[str, Any]) -> tuple[str, str]:
    """(value / goal, met) for one figure."""
    value, goal = float(figure["value"]), figure.get("goal")
    if goal is None:
        return "", ""
    higher = figure.get("better", "higher") == "higher"
    met = value >= goal if higher else value <= goal
    ratio = f"{value / goal:.2f}" if goal else ""
    return ratio, "yes" if met else "NO"


def shown(value: float, unit: str) -> str:
    number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{number} {unit}".strip()


Previous = dict[tuple[str, str], dict[str, Any]]


def load_previous(path: Path | None) -> Previous:
    """Figures of an earlier run by (benchmark, figure); none if there is no such file."""
    if path is None or not path.exists():
        return {}
    rows: list[dict[str, Any]] = json.loads(path.read_text())
    return {(row["benchmark"], row["figure"]): row for row in rows}


def save_figures(path: Path, previous: Previous, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` over ``previous`` (figures of benchmarks not run stay) to ``path``."""
    merged = dict(previous)
    for name in {row["benchmark"] for row in rows}:
        merged = {key: row for key, row in merged.items() if key[0] != name}
    merged.update({(row["benchmark"], row["figure"]): row for row in rows})
    path.write_text(json.dumps(list(merged.values()), indent=2) + "\n")


def before(previous: Previous, name: str, figure: dict[str, Any]) -> str:
    """The previous value of a figure, or "-"."""
    row = previous.get((name, figure["figure"]))
    if row is None:
        return "-"
    quick = " (quick)" if row.get("quick") else ""
    return shown(float(row["value"]), figure.get("unit", "")) + quick


def table(results: list[tuple[str, list[dict[str, Any]], str]], previous: Previous) -> None:
    print()
    header = (
        f"{'benchmark':<18} {'figure':<58} {'previous':>21} {'value':>13} {'goal':>13}"
        f" {'v/goal':>7} met"
    )
    print(header)
    print("-" * len(header))
    for name, figures, note in results:
        if note:
            print(f"{name:<18} FAILED: {note}")
        for figure in figures:
            ratio, met = judge(figure)
            unit = figure.get("unit", "")
            goal = figure.get("goal")
            better = ">=" if figure.get("better", "higher") == "higher" else "<="
            goal_text = f"{better} {shown(float(goal), unit)}" if goal is not None else ""
            print(
                f"{name:<18} {figure['figure'][:58]:<58} {before(previous, name, figure):>21}"
                f" {shown(float(figure['value']), unit):>13} {goal_text:>13} {ratio:>7} {met}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    parser.add_argument("--only", action="append", help="run only this script (repeatable)")
    parser.add_argument("--logs", type=Path, help="keep each script's output and figures here")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--previous", type=Path, default=FIGURES, help="figures to show beside the new ones"
    )
    parser.add_argument(
        "--save", action="store_true", help=f"write this run's figures to {FIGURES.name}"
    )
    options = parser.parse_args()
    chosen = [
        benchmark
        for benchmark in BENCHMARKS
        if not options.only or benchmark.script.removesuffix(".py") in options.only
    ]
    if not chosen:
        parser.error(f"--only names none of {[b.script.removesuffix('.py') for b in BENCHMARKS]}")
    logs = options.logs or Path(tempfile.mkdtemp(prefix="poundcake-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{'quick' if options.quick else 'full'} run, logs in {logs}; {load_average()}")
    measured = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = []
    for benchmark in chosen:
        figures, note = run(benchmark, options.quick, logs)
        results.append((benchmark.script.removesuffix(".py"), figures, note))
    previous = load_previous(options.previous)
    table(results, previous)
    print(f"\nmachine: {load_average()}; previous figures from {options.previous}")
    everything = [
        {"benchmark": name, **figure, "measured": measured, "quick": options.quick}
        for name, figures, _ in results
        for figure in figures
    ]
    if options.json:
        options.json.write_text(json.dumps(everything, indent=2))
    if options.save:
        save_figures(FIGURES, load_previous(FIGURES), everything)
    if any(note for _, _, note in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
