"""A child process in its own process group whose stdout and stderr stream out line by line."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from poundcake.engine.runners.base import OutputSink

logger = logging.getLogger(__name__)

# How long output readers may take to drain once the child has exited before the rest of its
# process group (which may still hold the pipes) is killed.
DRAIN_SECONDS = 2.0


class StreamedProcess:
    """Start a child in a new process group and copy its output to a sink as it arrives."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        output: OutputSink,
        cwd: Path | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._cwd = cwd
        self._pass_fds = tuple(pass_fds)
        self._output = output
        self._output_lock = threading.Lock()
        self._chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers: list[threading.Thread] = []
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the child; raises OSError if it cannot be started."""
        self._process = subprocess.Popen(  # noqa: S603 - argv is built by the runner, no shell
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self._cwd,
            pass_fds=self._pass_fds,
            start_new_session=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr)):
            reader = threading.Thread(
                target=self._pump, args=(name, stream), name=f"output-{name}", daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace")
                with self._output_lock:
                    self._chunks[name].append(line)
                    try:
                        self._output(name, line)
                    except Exception:
                        # Keep draining: a stalled pipe would block the child.
                        logger.exception("The output sink failed on a %s line", name)

    def wait(self, timeout: float | None) -> int | None:
        """Return the exit code, or None if the child is still running after ``timeout``."""
        assert self._process is not None
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Kill the child's whole process group with SIGKILL."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    def finish(self) -> tuple[str, str]:
        """Reap the child, collect what it wrote and return ``(stdout, stderr)``."""
        if self._process is not None:
            self._process.wait()
        for reader in self._readers:
            reader.join(DRAIN_SECONDS)
        if any(reader.is_alive() for reader in self._readers):
            # Something the child started still holds the pipes open.
            self.kill()
            for reader in self._readers:
                reader.join()
        with self._output_lock:
            return "".join(self._chunks["stdout"]), "".join(self._chunks["stderr"])
