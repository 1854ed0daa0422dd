"""Helpers for the shell runner tests: a recording output sink and process liveness checks."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class RecordingSink:
    """An output sink that keeps every call and lets a test wait for some output."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, output_type: str, data: str) -> None:
        with self._changed:
            self.calls.append((output_type, data))
            self._changed.notify_all()

    def text(self, output_type: str) -> str:
        with self._changed:
            return "".join(data for kind, data in self.calls if kind == output_type)

    def wait_for(self, output_type: str, needle: str, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        with self._changed:
            while needle not in "".join(d for k, d in self.calls if k == output_type):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{needle!r} never arrived on {output_type}")
                self._changed.wait(remaining)


def process_is_alive(pid: int) -> bool:
    """Tell whether ``pid`` runs; a zombie (killed, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    """Wait for ``pid`` to be gone; return whether it went."""
    deadline = time.monotonic() + seconds
    while process_is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def read_pid(path: Path, seconds: float = 10.0) -> int:
    """Wait for a pid file to be written and return the pid in it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip().isdigit():
            return int(path.read_text().strip())
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")
