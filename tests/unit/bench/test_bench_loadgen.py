"""The benchmarks' pure helpers: the mixed-byte output, wrk's figures, percentiles."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bench.loadgen import (
    LINE_CHARACTERS,
    encoded_mixed_lines,
    mixed_line,
    mixed_lines,
    own_cpu_seconds,
    parse_wrk,
    percentile,
    process_cpu_seconds,
)

from tests.paths import REPOSITORY

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:1/api/v1/webhook
  1 threads and 16 connections
BENCH requests 1200
BENCH seconds 2.000000
BENCH non_2xx 200
BENCH server_errors 3
BENCH socket_errors 0
BENCH p50_ms 4.250
BENCH p99_ms 31.000
BENCH max_ms 45.500
BENCH late 7
BENCH max_late_ms 12.000
"""


def test_each_line_is_80_characters_of_mixed_bytes() -> None:
    lines = [mixed_line(number) for number in range(200)]
    assert {len(line) for line in lines} == {LINE_CHARACTERS}
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    text = "".join(lines)
    assert '"' in text and "'" in text and "\\" in text and "\t" in text
    widths = {len(character.encode()) for character in text}
    assert widths == {1, 2, 3, 4}
    assert len(set(lines)) == len(lines)


def test_mixed_lines_fill_the_size_with_whole_lines() -> None:
    size = 100_000
    text = mixed_lines(size)
    encoded = text.encode()
    assert size - 4 * LINE_CHARACTERS < len(encoded) <= size
    assert text.endswith("\n")
    assert b"".join(encoded_mixed_lines(size)) == encoded
    assert mixed_lines(1) == mixed_line(0)


def test_the_writer_prints_exactly_mixed_lines() -> None:
    program = "from bench.loadgen import write_mixed_lines; write_mixed_lines(50_000)"
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    printed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, check=True, env=environment
    ).stdout
    assert printed == mixed_lines(50_000).encode()


def test_wrk_figures_are_read_from_the_lua_report() -> None:
    figures = parse_wrk(WRK_OUTPUT)
    assert figures.requests == 1200
    assert figures.requests_per_second == 500.0
    assert (figures.non_2xx, figures.server_errors, figures.late) == (200, 3, 7)
    assert (figures.p50_ms, figures.p99_ms, figures.max_ms) == (4.25, 31.0, 45.5)


def test_wrk_output_without_the_report_is_refused() -> None:
    with pytest.raises(ValueError, match="p99_ms"):
        parse_wrk(WRK_OUTPUT.replace("BENCH p99_ms 31.000\n", ""))


def test_percentile_is_nearest_rank() -> None:
    values = [float(number) for number in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) != percentile([], 0.5)


def test_process_cpu_seconds_grows_with_work() -> None:
    before = process_cpu_seconds(os.getpid())
    for _ in range(100_000):
        if process_cpu_seconds(os.getpid()) >= before + 0.05:
            break
        sum(range(10_000))
    assert process_cpu_seconds(os.getpid()) >= before + 0.05


def test_own_cpu_seconds_counts_this_process() -> None:
    before, reference = own_cpu_seconds(), process_cpu_seconds(os.getpid())
    for _ in range(100_000):
        if process_cpu_seconds(os.getpid()) >= reference + 0.1:
            break
        sum(range(10_000))
    assert own_cpu_seconds() - before >= 0.08
