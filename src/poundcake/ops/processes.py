"""Start, stop and inspect PoundCake's long-running processes with pid files and log files.

``st2ctl`` and ``poundcake`` use this for their services. A service is a console script of this
package started detached (its own session), with stdout and stderr appended to
``<log_dir>/<name>.log`` and its pid in ``<run_dir>/<name>.pid``. A pid file whose process is gone
or is not ours is stale and ignored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from poundcake.exceptions import ConfigurationError

STARTUP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name (also the console script) and extra arguments."""

    name: str
    args: tuple[str, ...] = ()
    instances: int = 1

    def instance_names(self) -> list[str]:
        """``st2actionrunner`` or ``st2actionrunner.1``, ``st2actionrunner.2``..."""
        if self.instances == 1:
            return [self.name]
        return [f"{self.name}.{number}" for number in range(1, self.instances + 1)]


@dataclass(frozen=True)
class ServiceState:
    """One service instance as ``status`` sees it."""

    name: str
    pid: int | None

    @property
    def running(self) -> bool:
        """Tell whether the process is alive."""
        return self.pid is not None


class ProcessManager:
    """Pid files in ``run_dir``, logs in ``log_dir``."""

    def __init__(self, run_dir: Path, log_dir: Path, bin_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.bin_dir = bin_dir or Path(sys.executable).parent

    def pid_file(self, name: str) -> Path:
        """Where ``name`` keeps its pid."""
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """Where ``name`` writes its log."""
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """Return the pid of a live instance of ``name``, or None (removing a stale pid file)."""
        path = self.pid_file(name)
        try:
            pid = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and _is_ours(pid, name.split(".")[0]):
            return pid
        path.unlink(missing_ok=True)
        return None

    def start(self, spec: ServiceSpec, name: str, extra_args: Sequence[str] = ()) -> int:
        """Start one instance unless it runs already; return its pid."""
        running = self.pid(name)
        if running is not None:
            return running
        executable = self.bin_dir / spec.name
        if not executable.exists():
            raise ConfigurationError(spec.name, f"command not found at {executable}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own console script
                [str(executable), *spec.args, *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file(name).write_text(f"{process.pid}\n")
        deadline = time.monotonic() + STARTUP_GRACE_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is not None:
            self.pid_file(name).unlink(missing_ok=True)
            raise ConfigurationError(
                name, f"exited at start with code {process.returncode}; see {self.log_file(name)}"
            )
        return process.pid

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; tell whether it was running."""
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    def state(self, name: str) -> ServiceState:
        """Return whether ``name`` runs and its pid."""
        return ServiceState(name=name, pid=self.pid(name))


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        fields = stat.read_text().rsplit(")", 1)[-1].split()
        return not (fields and fields[0] == "Z")
    return True


def _is_ours(pid: int, command: str) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True
    return command in cmdline.read_bytes().decode("utf-8", "replace")
