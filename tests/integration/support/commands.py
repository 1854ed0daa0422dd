"""Our console scripts run the way a user runs them: from this virtualenv, with a clean
environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def command_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment for our commands: no stray settings from the developer's shell."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["POUNDCAKE_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "300"
    env.update(variables)
    return env


def run_command(
    name: str, *args: str, env: dict[str, str], cwd: Path | None = None
) -> CommandResult:
    """Run one of our console scripts the way a user would."""
    executable = BIN / name
    if not executable.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        executable = Path(found)
    completed = subprocess.run(
        [str(executable), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)
