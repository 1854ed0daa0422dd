"""``poundcake install``: lay a host out as StackStorm's packages do, so the install guide's
``systemctl enable st2api st2stream ...`` and ``tail -f /var/log/st2/*.log`` work as written.

What it does, each step reported and none repeated needlessly (running it again changes
nothing):

1. the system user the services run as (``stanley``), created only when asked;
2. ``/etc/st2/st2.conf`` and ``/etc/poundcake/poundcake.env`` from the examples in ``deploy/``
   (never overwriting an existing file), with the data directories pinned (``[system] data_dir =
   /opt/stackstorm``, ``POUNDCAKE_DATA_DIR=/var/lib/poundcake``) so ``sudo st2ctl`` and the
   services read the same packs, keys and datastore key;
3. ``/var/log/st2``, ``/var/run/st2``, ``/var/log/poundcake`` and the data directories, owned by
   that user;
4. the systemd units from ``deploy/systemd`` with this installation's ``bin`` directory and
   user, every unit the guide names among them;
5. the commands (``st2ctl``, ``st2-setup-db``, ``st2-setup-auth``, ``poundcake``, ...) linked
   into ``/usr/local/bin``, which ``sudo`` searches, so ``sudo st2ctl start`` works as written;
6. ``systemctl enable`` of every unit (``daemon-reload`` first when systemd runs the host).

``root`` stages all of it under another directory (an image build, or a test) instead of ``/``:
``useradd --prefix`` and ``systemctl --root`` then work on that tree.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import distribution
from pathlib import Path

from poundcake.exceptions import PoundCakeError

# The units the install guide enables (step 4), in its order.
GUIDE_UNITS = (
    "st2api",
    "st2stream",
    "st2auth",
    "st2actionrunner",
    "st2notifier",
    "st2resultstracker",
    "st2rulesengine",
    "st2sensorcontainer",
    "st2garbagecollector",
    "st2scheduler",
)
# Where the unit files in deploy/systemd expect the installation and the user.
TEMPLATE_BIN_DIR = "/opt/poundcake/.venv/bin/"
TEMPLATE_USER = "stanley"
LAYOUTS = ("separate", "shared")
ENGINE_DATA_DIR = "/opt/stackstorm"
POUNDCAKE_DATA_DIR = "/var/lib/poundcake"
COMMANDS_DIR = "/usr/local/bin"
# Owned by the service user: logs, pid files and data.
SERVICE_DIRS = ("/var/log/st2", "/var/run/st2", "/var/log/poundcake")


class InstallError(PoundCakeError):
    """A step of ``poundcake install`` could not be done; nothing after it was tried."""


@dataclass(frozen=True)
class InstallPlan:
    """What to install, and where."""

    root: Path = Path("/")
    user: str = TEMPLATE_USER
    create_user: bool = False
    layout: str = "separate"
    enable: bool = True
    deploy_dir: Path = field(default_factory=lambda: default_deploy_dir())
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    def at(self, path: str) -> Path:
        """``path`` (absolute on the host) inside the root being installed."""
        return self.root / path.lstrip("/")


def default_deploy_dir() -> Path:
    """``deploy/`` of the checkout this package runs from."""
    return Path(__file__).resolve().parents[3] / "deploy"


def install(plan: InstallPlan) -> list[str]:
    """Carry out ``plan``; one line per step, saying what changed or that nothing did."""
    if plan.layout not in LAYOUTS:
        raise InstallError(f"--layout {plan.layout!r}: choose one of {', '.join(LAYOUTS)}")
    if not (plan.deploy_dir / "systemd").is_dir():
        raise InstallError(
            f"no systemd units in {plan.deploy_dir}: run from a PoundCake checkout or give "
            "--deploy-dir"
        )
    report = [_system_user(plan)]
    owner = _owner(plan)
    report += _configuration(plan, owner)
    report += _directories(plan, owner)
    units, lines = _units(plan)
    report += lines
    report += _commands(plan)
    if plan.enable:
        report += _enable(plan, units)
    return report


def _system_user(plan: InstallPlan) -> str:
    if _passwd_entry(plan, plan.user) is not None:
        return f"system user {plan.user!r}: exists"
    if not plan.create_user:
        raise InstallError(
            f"system user {plan.user!r} does not exist: give --create-user, or --user with one "
            "that does"
        )
    command = ["useradd", "--system", "--user-group", "--create-home"]
    command += ["--home-dir", f"/home/{plan.user}", "--shell", "/bin/bash"]
    if plan.root != Path("/"):
        command += ["--prefix", str(plan.root)]
    _run([*command, plan.user], "creating the system user")
    return f"system user {plan.user!r}: created"


def _passwd_entry(plan: InstallPlan, user: str) -> tuple[int, int] | None:
    """The user's uid and gid: from the system's user database on this host, else from the
    staged root's ``/etc/passwd``."""
    if plan.root == Path("/"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid
    passwd = plan.at("/etc/passwd")
    if not passwd.is_file():
        return None
    for line in passwd.read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == user:
            return int(fields[2]), int(fields[3])
    return None


def _owner(plan: InstallPlan) -> tuple[int, int] | None:
    """Whom the service directories belong to; None when this process cannot give them away."""
    if os.geteuid() != 0:
        return None
    entry = _passwd_entry(plan, plan.user)
    assert entry is not None  # _system_user made sure
    return entry


def _configuration(plan: InstallPlan, owner: tuple[int, int] | None) -> list[str]:
    st2_example = plan.deploy_dir / f"st2.conf.{plan.layout}.example"
    env_example = plan.deploy_dir / "poundcake.env.example"
    st2_pinned = f"[system]\ndata_dir = {ENGINE_DATA_DIR}\n"
    env_pinned = f"POUNDCAKE_DATA_DIR={POUNDCAKE_DATA_DIR}\n"
    return [
        _from_example(plan, st2_example, "/etc/st2/st2.conf", st2_pinned, owner),
        _from_example(plan, env_example, "/etc/poundcake/poundcake.env", env_pinned, owner),
    ]


def _from_example(
    plan: InstallPlan, example: Path, path: str, pinned: str, owner: tuple[int, int] | None
) -> str:
    """Write ``path`` from ``example`` plus ``pinned`` (whose first line must not be in the
    example: a second ``[system]`` section would not parse) unless it exists; readable by root
    and the service user only (it holds database passwords)."""
    target = plan.at(path)
    if target.exists():
        return f"{path}: exists, kept as it is"
    text = example.read_text(encoding="utf-8")
    first = pinned.splitlines()[0].split("=")[0]
    if any(line.startswith(first) for line in text.splitlines()):
        raise InstallError(f"{example} already sets {first!r}; remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{text}\n# Pinned by poundcake install\n{pinned}", encoding="utf-8")
    target.chmod(0o640)
    if owner is not None:
        os.chown(target, 0, owner[1])
    return f"{path}: written from {example.name}; edit its passwords and hosts"


def _directories(plan: InstallPlan, owner: tuple[int, int] | None) -> list[str]:
    lines = []
    for path in (*SERVICE_DIRS, ENGINE_DATA_DIR, POUNDCAKE_DATA_DIR):
        directory = plan.at(path)
        existed = directory.is_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(directory, *owner)
        state = "exists" if existed else "created"
        whose = f"owned by {plan.user}" if owner is not None else "not given away (not root)"
        lines.append(f"{path}: {state}, {whose}")
    return lines


def _units(plan: InstallPlan) -> tuple[list[str], list[str]]:
    """Write every unit of deploy/systemd; the names to enable and one line per unit."""
    units_dir = plan.at("/etc/systemd/system")
    units_dir.mkdir(parents=True, exist_ok=True)
    enable: list[str] = []
    lines: list[str] = []
    for template in sorted((plan.deploy_dir / "systemd").glob("*.service")):
        text = template.read_text(encoding="utf-8")
        text = text.replace(TEMPLATE_BIN_DIR, f"{plan.bin_dir}/")
        text = text.replace(f"User={TEMPLATE_USER}\n", f"User={plan.user}\n")
        text = text.replace(f"Group={TEMPLATE_USER}\n", f"Group={plan.user}\n")
        target = units_dir / template.name
        unchanged = target.is_file() and target.read_text(encoding="utf-8") == text
        if not unchanged:
            target.write_text(text, encoding="utf-8")
            target.chmod(0o644)
        lines.append(
            f"/etc/systemd/system/{template.name}: {'unchanged' if unchanged else 'written'}"
        )
        if "@" not in template.name:
            enable.append(template.stem)
    missing = [name for name in GUIDE_UNITS if name not in enable]
    if missing:
        raise InstallError(f"{plan.deploy_dir / 'systemd'} has no unit for {', '.join(missing)}")
    return enable, lines


def _commands(plan: InstallPlan) -> list[str]:
    """Link this package's commands into /usr/local/bin; a file there that is not our link is
    left alone and named."""
    links = plan.at(COMMANDS_DIR)
    links.mkdir(parents=True, exist_ok=True)
    names = sorted(
        entry.name
        for entry in distribution("poundcake").entry_points
        if entry.group == "console_scripts"
    )
    linked, kept = [], []
    for name in names:
        link, command = links / name, plan.bin_dir / name
        if link.is_symlink() and Path(os.readlink(link)) == command:
            continue
        if link.exists() or link.is_symlink():
            kept.append(name)
            continue
        link.symlink_to(command)
        linked.append(name)
    lines = [f"{COMMANDS_DIR}: linked {' '.join(linked) or 'nothing new'}"]
    if kept:
        lines.append(f"{COMMANDS_DIR}: left alone (not our links): {' '.join(kept)}")
    return lines


def _enable(plan: InstallPlan, units: list[str]) -> list[str]:
    if shutil.which("systemctl") is None:
        return ["systemctl not found: the units are installed, not enabled"]
    staged = plan.root != Path("/")
    systemctl = ["systemctl", f"--root={plan.root}"] if staged else ["systemctl"]
    lines = []
    if not staged and Path("/run/systemd/system").is_dir():
        _run([*systemctl, "daemon-reload"], "reloading systemd")
        lines.append("systemd: reloaded")
    _run([*systemctl, "enable", *units], "enabling the units")
    lines.append(f"enabled: {' '.join(units)}")
    return lines


def _run(command: list[str], doing: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed tools, our own arguments
            command, capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise InstallError(f"{doing}: {command[0]} is not installed") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise InstallError(
            f"{doing}: {' '.join(command)} failed: {said[-1] if said else done.returncode}"
        )
