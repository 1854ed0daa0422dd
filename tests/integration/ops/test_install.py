"""``poundcake install`` lays a host out so the install guide's systemd lines work as written.

This machine has no systemd as PID 1, so the host is staged under a directory: ``useradd
--prefix`` and ``systemctl --root`` work on it, and ``systemd-analyze verify`` checks every
installed unit against this installation's real binaries.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from poundcake.ops.install import GUIDE_UNITS
from tests.integration.support.commands import BIN, command_environment, run_command

# Step 4 of the install guide, as it is written there.
GUIDE_ENABLE = """sudo systemctl enable st2api st2stream st2auth st2actionrunner st2notifier \\
  st2resultstracker st2rulesengine st2sensorcontainer st2garbagecollector st2scheduler"""
HOST_FILES = ("passwd", "group", "shadow", "gshadow", "login.defs")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A staged root holding this machine's account files (so ``useradd --prefix`` works)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.fail("the install test runs as root with useradd, as CI does")
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    for name in HOST_FILES:
        shutil.copy2(Path("/etc") / name, root / "etc" / name)
    return root


def install(root: Path, *args: str) -> tuple[int, str]:
    result = run_command(
        "poundcake", "install", "--root", str(root), *args, env=command_environment(root.parent)
    )
    return result.returncode, result.stdout + result.stderr


def guide_command(root: Path) -> list[str]:
    """The guide's line, run here without sudo (we are root) and on the staged root."""
    words = shlex.split(GUIDE_ENABLE.replace("\\\n", " "))
    assert words[:3] == ["sudo", "systemctl", "enable"]
    return ["systemctl", f"--root={root}", *words[2:]]


def test_install_then_the_guides_systemctl_line_enables_every_unit_it_names(host: Path) -> None:
    refused, said = install(host)
    assert refused != 0
    assert "system user 'stanley' does not exist: give --create-user" in said
    assert not (host / "etc" / "st2").exists()  # nothing was laid out

    code, said = install(host, "--create-user", "--no-enable")
    assert code == 0, said
    assert "system user 'stanley': created" in said
    stanley = next(
        line.split(":")
        for line in (host / "etc" / "passwd").read_text().splitlines()
        if line.startswith("stanley:")
    )
    uid, gid = int(stanley[2]), int(stanley[3])
    for path in ("var/log/st2", "var/run/st2", "var/log/poundcake", "opt/stackstorm"):
        stat = (host / path).stat()
        assert (stat.st_uid, stat.st_gid) == (uid, gid), path
    st2_conf = host / "etc" / "st2" / "st2.conf"
    assert "db_name = stackstorm" in st2_conf.read_text()
    assert "data_dir = /opt/stackstorm" in st2_conf.read_text()
    assert (st2_conf.stat().st_mode & 0o777, st2_conf.stat().st_gid) == (0o640, gid)
    env_file = host / "etc" / "poundcake" / "poundcake.env"
    assert "POUNDCAKE_DATA_DIR=/var/lib/poundcake" in env_file.read_text()
    assert env_file.stat().st_mode & 0o777 == 0o640

    enabled = subprocess.run(guide_command(host), capture_output=True, text=True, check=False)
    assert enabled.returncode == 0, enabled.stderr
    wants = host / "etc" / "systemd" / "system" / "multi-user.target.wants"
    assert sorted(path.stem for path in wants.iterdir()) == sorted(GUIDE_UNITS)

    units = sorted((host / "etc" / "systemd" / "system").glob("*.service"))
    assert {unit.stem for unit in units} >= set(GUIDE_UNITS)
    for unit in units:
        text = unit.read_text()
        assert "/opt/poundcake/.venv" not in text, unit.name  # this installation's binaries
        verified = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
        )
        assert verified.returncode == 0 and not verified.stderr.strip(), unit.name + verified.stderr
    st2ctl = host / "usr" / "local" / "bin" / "st2ctl"  # sudo's PATH: `sudo st2ctl start`
    assert st2ctl.is_symlink() and st2ctl.resolve() == (BIN / "st2ctl").resolve()
    assert not (host / "usr" / "local" / "bin" / "st2").exists()  # the official CLI is not ours
    st2api = (host / "etc/systemd/system/st2api.service").read_text()
    assert "StandardOutput=append:/var/log/st2/st2api.log" in st2api  # tail -f /var/log/st2/*.log
    tracker = (host / "etc/systemd/system/st2resultstracker.service").read_text()
    assert "no work in PoundCake" in tracker

    st2_conf.write_text(st2_conf.read_text() + "# edited by the operator\n")
    code, again = install(host, "--create-user")
    assert code == 0, again
    assert "system user 'stanley': exists" in again
    assert "/etc/st2/st2.conf: exists, kept as it is" in again
    assert "written" not in again  # every unit unchanged, no file rewritten
    assert "/usr/local/bin: linked nothing new" in again
    assert st2_conf.read_text().endswith("# edited by the operator\n")
    assert "enabled: " in again and "st2workflowengine" in again and "poundcake-api" in again


def test_install_refuses_an_unknown_layout_naming_the_option(host: Path) -> None:
    code, said = install(host, "--create-user", "--layout", "mongodb")
    assert code != 0
    assert "--layout 'mongodb': choose one of separate, shared" in said
