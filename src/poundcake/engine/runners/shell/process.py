"""One local child process in its own process group: started, streamed, waited for or killed.

The child gets a new session (``start_new_session=True``), so its process group holds it and
everything it spawns; on timeout or cancel the whole group gets SIGTERM and, after a short grace,
SIGKILL. Two reader threads pass stdout and stderr to the sink as they arrive, so a chatty
child never blocks on a full pipe.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, cast

from poundcake.engine.executions.results import EncodedText
from poundcake.engine.runners.base import OutputSink
from poundcake.engine.runners.shell.output import LineStream, SerializedSink
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 2.0
"""How long a process group has to exit after SIGTERM before it gets SIGKILL."""

READER_DRAIN_SECONDS = 1.0
"""How long to wait for output still in flight once the process group is dead."""

_POLL_SECONDS = 0.05
_CHUNK_BYTES = 64 * 1024


class Ending(Enum):
    """How a process run ended."""

    EXITED = "exited"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


@dataclass(frozen=True)
class ProcessOutcome:
    """What a finished process run produced."""

    ending: Ending
    return_code: int
    stdout: str | EncodedText
    stderr: str | EncodedText


class ProcessRun:
    """Runs one argv to the end, a timeout or a cancel; ``cancel()`` is safe from any thread."""

    def __init__(self, output: OutputSink) -> None:
        self._sink = SerializedSink(output)
        self._lock = threading.Lock()
        self._canceled = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None

    def cancel(self) -> None:
        """Kill the process group (if started) and make :meth:`run` end as canceled."""
        with self._lock:
            already = self._canceled.is_set()
            self._canceled.set()
            process = self._process
        if process is not None and not already:
            _signal_group(process.pid, signal.SIGTERM)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        stdin_data: str | None = None,
        timeout: float | None = None,
    ) -> ProcessOutcome:
        """Run ``argv`` once and wait for it; a ``timeout`` of ``None`` or 0 means no limit.

        Raises :class:`OSError` when the process cannot be started at all, and ValidationError
        when an argument or environment value holds a NUL byte (no process can receive one).
        """
        if any("\x00" in part for part in (*argv, *env.keys(), *env.values())):
            raise ValidationError(
                "a command argument or environment value contains a NUL byte, "
                "which cannot be passed to a process"
            )
        deadline = time.monotonic() + timeout if timeout else None
        stdout = LineStream("stdout", self._sink)
        stderr = LineStream("stderr", self._sink)
        with self._lock:
            if self._canceled.is_set():
                return ProcessOutcome(Ending.CANCELED, -signal.SIGTERM, "", "")
            process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                list(argv),
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
            self._process = process
        readers = [_start_reader(process.stdout, stdout), _start_reader(process.stderr, stderr)]
        _feed_stdin(process, stdin_data or "")
        ending = self._wait(process, readers, deadline)
        if ending is not Ending.EXITED:
            _kill_group(process, readers)
        return_code = process.wait()
        return ProcessOutcome(ending, return_code, stdout.result_text(), stderr.result_text())

    def _wait(
        self,
        process: subprocess.Popen[bytes],
        readers: list[threading.Thread],
        deadline: float | None,
    ) -> Ending:
        """Wait for the process to exit and its output to close, a cancel or the deadline."""
        while process.poll() is None or any(reader.is_alive() for reader in readers):
            pause = _POLL_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Ending.TIMED_OUT
                pause = min(pause, remaining)
            if self._canceled.wait(pause):
                return Ending.CANCELED
        return Ending.CANCELED if self._canceled.is_set() else Ending.EXITED


def _feed_stdin(process: subprocess.Popen[bytes], data: str) -> None:
    if process.stdin is None:
        return
    try:
        with process.stdin:
            process.stdin.write(data.encode())
    except BrokenPipeError:
        logger.debug("process closed stdin before reading it")


def _start_reader(pipe: IO[bytes] | None, stream: LineStream) -> threading.Thread:
    def pump() -> None:
        reader = cast(io.BufferedReader, pipe)
        with reader:
            while chunk := reader.read1(_CHUNK_BYTES):
                stream.feed(chunk)
        stream.close()

    thread = threading.Thread(target=pump, name=f"{stream.output_type}-reader", daemon=True)
    thread.start()
    return thread


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        logger.warning("not allowed to signal process group %s", pgid)


def _kill_group(process: subprocess.Popen[bytes], readers: list[threading.Thread]) -> None:
    """SIGTERM the group; once the leader and the output are gone, or after a grace, SIGKILL it.

    Members that closed their output are not waited for: the SIGKILL reaches them regardless.
    """
    _signal_group(process.pid, signal.SIGTERM)
    grace_ends = time.monotonic() + KILL_GRACE_SECONDS
    try:
        process.wait(KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        logger.info("process group %s outlived SIGTERM", process.pid)
    for reader in readers:
        reader.join(max(0.0, grace_ends - time.monotonic()))
    _signal_group(process.pid, signal.SIGKILL)
    drain_ends = time.monotonic() + READER_DRAIN_SECONDS
    for reader in readers:
        reader.join(max(0.0, drain_ends - time.monotonic()))
        if reader.is_alive():
            logger.warning("a process outside group %s still holds its output", process.pid)
