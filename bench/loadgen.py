"""Pure helpers the benchmarks share: wrk's figures, process CPU, mixed-byte output, percentiles.

Nothing here starts a server; ``tests/unit/test_bench_loadgen.py`` covers it.
"""

from __future__ import annotations

import os
import re
import resource
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LINE_CHARACTERS = 80
"""Characters in each line of ``mixed_lines`` (79 and the newline)."""

_FRAGMENTS = (
    'status="ok" ',
    "it's ",
    "température ",
    "\\path\\to ",
    "→ ",
    "日本語 ",
    '{"k": [1, 2]} ',
    "naïve ",
    "🙂 ",
    "tab\there ",
)


def mixed_line(number: int) -> str:
    """Line ``number`` of a log-like output: 79 characters of ASCII, quotes and UTF-8, newline."""
    text = f"{number:08d} "
    index = number
    while len(text) < LINE_CHARACTERS - 1:
        text += _FRAGMENTS[index % len(_FRAGMENTS)]
        index += 3
    return text[: LINE_CHARACTERS - 1] + "\n"


def encoded_mixed_lines(size: int) -> Iterator[bytes]:
    """Lines 0, 1, ... in UTF-8: as many whole lines as fit in ``size`` bytes, at least one."""
    used = 0
    number = 0
    while True:
        encoded = mixed_line(number).encode()
        if number and used + len(encoded) > size:
            return
        yield encoded
        used += len(encoded)
        number += 1


def mixed_lines(size: int) -> str:
    """The text ``encoded_mixed_lines(size)`` makes: what a command printing them outputs."""
    return b"".join(encoded_mixed_lines(size)).decode()


def write_mixed_lines(size: int) -> None:
    """Write ``encoded_mixed_lines(size)`` to stdout one line per write, as a chatty command."""
    out = sys.stdout.buffer
    for line in encoded_mixed_lines(size):
        out.write(line)
    out.flush()


@dataclass(frozen=True)
class WrkFigures:
    """What one ``wrk`` run reports, read from the ``done`` hook of ``bench/wrk/common.lua``."""

    requests: int
    seconds: float
    non_2xx: int
    server_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    late: int = 0
    max_late_ms: float = 0.0

    @property
    def requests_per_second(self) -> float:
        """Requests answered 2xx per second."""
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0


_FIGURE = re.compile(r"^BENCH (\w+) (-?[\d.]+)$", re.MULTILINE)


def parse_wrk(output: str) -> WrkFigures:
    """The figures the Lua ``done`` hook prints as ``BENCH <name> <number>`` lines."""
    found = {name: float(value) for name, value in _FIGURE.findall(output)}
    missing = {
        "requests",
        "seconds",
        "non_2xx",
        "server_errors",
        "socket_errors",
        "p50_ms",
        "p99_ms",
        "max_ms",
    } - set(found)
    if missing:
        raise ValueError(f"wrk printed no {sorted(missing)}: {output[-500:]!r}")
    return WrkFigures(
        requests=int(found["requests"]),
        seconds=found["seconds"],
        non_2xx=int(found["non_2xx"]),
        server_errors=int(found["server_errors"]),
        socket_errors=int(found["socket_errors"]),
        p50_ms=found["p50_ms"],
        p99_ms=found["p99_ms"],
        max_ms=found["max_ms"],
        late=int(found.get("late", 0)),
        max_late_ms=found.get("max_late_ms", 0.0),
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (a bench that is its own load
    generator prints what it used)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as a figure's note."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"
