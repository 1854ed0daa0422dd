"""``linux.service``: start, stop, restart, reload or query a service.

The service manager is systemd (``systemctl``) when the host was booted with it, else the
``service`` command, else the SysV init script itself. Given ``init_dir``, the init script
``<init_dir>/<name>`` is run directly, whatever the host uses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action

ACTIONS = ("start", "stop", "restart", "reload", "status")
MANAGERS = ("auto", "systemctl", "service", "init_script")
DEFAULT_INIT_DIR = "/etc/init.d"
SYSTEMD_RUNTIME = Path("/run/systemd/system")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9@_.:-]+$")
# LSB: "status" exits 3 for a stopped service and 4 for an unknown one; systemctl exits 4 too.
UNKNOWN_SERVICE = 4


def detect_manager() -> str:
    """Return the service manager of this host."""
    if SYSTEMD_RUNTIME.is_dir() and shutil.which("systemctl"):
        return "systemctl"
    if shutil.which("service"):
        return "service"
    return "init_script"


def command_for(manager: str, name: str, action: str, init_dir: str) -> list[str]:
    """Return the command that applies ``action`` to the service ``name``."""
    if manager == "systemctl":
        return ["systemctl", action, "--no-pager", name]
    if manager == "service":
        return ["service", name, action]
    script = Path(init_dir or DEFAULT_INIT_DIR) / name
    if not script.is_file():
        raise ValueError(f"Service {name!r} has no init script: {script} does not exist.")
    if not os.access(script, os.X_OK):
        raise ValueError(f"Init script {script} is not executable.")
    return [str(script), action]


def run_manager(command: list[str], command_timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the service manager in a session of its own, its output going to files.

    A daemon the manager starts may keep its inherited stdout open; with files instead of pipes
    the action does not wait for it, and its own session keeps it out of the action's group.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            completed = subprocess.run(  # noqa: S603 - the name is checked, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                timeout=command_timeout,
                check=False,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ValueError(f"{command[0]} is not installed on this host.") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{' '.join(command)} did not finish within {command_timeout} seconds."
            ) from None
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(
            command,
            completed.returncode,
            stdout.read().decode("utf-8", errors="replace"),
            stderr.read().decode("utf-8", errors="replace"),
        )


class ServiceAction(Action):
    """Apply a service action and report the manager's answer."""

    def run(
        self,
        name: str,
        action: str = "status",
        manager: str = "auto",
        init_dir: str | None = None,
        command_timeout: float = 60,
    ) -> tuple[bool, dict[str, Any]]:
        if not SERVICE_NAME.match(name or ""):
            raise ValueError(f"{name!r} is not a service name.")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}.")
        if manager not in MANAGERS:
            raise ValueError(f"manager must be one of {', '.join(MANAGERS)}, not {manager!r}.")
        if init_dir:
            manager = "init_script"
        elif manager == "auto":
            manager = detect_manager()
        command = command_for(manager, name, action, init_dir or DEFAULT_INIT_DIR)
        completed = run_manager(command, command_timeout)
        result: dict[str, Any] = {
            "service": name,
            "action": action,
            "manager": manager,
            "command": command,
            "exit_code": completed.returncode,
            "stdout": completed.stdout.strip(),
            "stderr": completed.stderr.strip(),
        }
        if action == "status":
            said = f"{completed.stdout}\n{completed.stderr}".lower()
            if completed.returncode == UNKNOWN_SERVICE or "unrecognized service" in said:
                raise ValueError(
                    f"Service {name!r} is unknown to {manager}: "
                    f"{(completed.stderr or completed.stdout).strip()}"
                )
            result["running"] = completed.returncode == 0
            return True, result
        if completed.returncode != 0:
            self.logger.error("%s %s failed with exit code %s", action, name, completed.returncode)
            return False, result
        return True, result
