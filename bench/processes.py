"""The processes a benchmark watches: servers found by name, CPU per process tree, py-spy.

A product's service may work in child processes (Celery's prefork pool, the engine's sensor
wrappers), so a service's CPU is that of its whole tree of live processes plus what its reaped
children used.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.loadgen import process_cpu_seconds

SERVERS = {
    "mariadbd": "MariaDB",
    "mysqld": "MariaDB",
    "beam.smp": "RabbitMQ",
    "redis-server": "Redis",
}


def server_pids() -> dict[str, int]:
    """MariaDB's, RabbitMQ's and Redis's processes on this machine, by name."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in SERVERS:
            found[SERVERS[name]] = int(entry.name)
    return found


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int, children: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of ``pid`` and every live descendant (each counting its reaped children)."""
    children = _children() if children is None else children
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_cpu_seconds(current)
        except OSError:
            continue
        pending.extend(children.get(current, []))
    return total


def cpu_of(pids: dict[str, int], *, trees: bool = True) -> dict[str, float]:
    """CPU seconds of each named process that is still alive: with ``trees`` its whole tree,
    else the process alone (its threads)."""
    children = _children() if trees else {}
    found = {}
    for name, pid in pids.items():
        if Path(f"/proc/{pid}").exists():
            found[name] = tree_cpu_seconds(pid, children)
    return found


def print_cpu(
    before: dict[str, float], after: dict[str, float], seconds: float, per: int, unit: str
) -> None:
    """Each process's CPU between two ``cpu_of`` readings, busiest first."""
    used = {name: after[name] - before.get(name, after[name]) for name in after}
    print(f"CPU seconds over {seconds:.1f} s:")
    for name, value in sorted(used.items(), key=lambda item: -item[1]):
        print(
            f"  {name:<24} {value:>7.1f} s  ({value / seconds * 100:>5.1f}% of one core, "
            f"{value / max(per, 1) * 1e3:>6.2f} ms per {unit})"
        )


@contextmanager
def profiled(
    pids: dict[str, int],
    directory: Path | None,
    form: str,
    *,
    subprocesses: bool = True,
    idle: bool = False,
) -> Iterator[None]:
    """Sample each process (with ``subprocesses``, its children too) with py-spy while the block
    runs: where it spends its CPU (samples of the thread holding the GIL), or with ``idle`` its
    wall time (every thread, waits included)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        raise SystemExit(
            f"--profile needs py-spy, which is not a dependency: "
            f"{sys.executable} -m pip install py-spy"
        )
    suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[form]
    samplers = [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--idle" if idle else "--gil",
                *(["--subprocesses"] if subprocesses else []),
                "--nonblocking",
                "--format",
                form,
                "--output",
                str(directory / f"{name}.{suffix}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        for sampler in samplers:
            sampler.wait(timeout=120)
    print(f"py-spy profiles ({form}) in {directory}")
