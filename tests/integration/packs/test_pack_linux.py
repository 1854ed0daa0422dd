"""The bundled ``linux`` pack through the real engine and the official ``st2`` CLI: listing and
installing bundled packs, and each action against this host (a real SysV init script managing a
real daemon, real processes, files and file systems)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from poundcake.engine.packs.install import bundled_pack_names
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR
from poundcake.engine.packs.sources import resolve_source
from poundcake.exceptions import ValidationError
from tests.integration.support import pack_actions as actions
from tests.integration.support.pack_actions import output
from tests.integration.support.st2cli import (
    STREAM_SERVICES,
    RunningEngine,
    St2,
    logged_in,
    running_engine,
)

PACKS_DIR = "installed-packs"
BUNDLED = ("email", "http", "jenkins", "linux", "network", "slack")
# A SysV init script in the LSB style: start/stop/restart/status of a daemon with a pid file.
INIT_SCRIPT = """\
#!/bin/sh
PIDFILE="{run_dir}/demo.pid"
running() {{ [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }}
start() {{
    running && return 0
    setsid sleep 600 </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    echo "started demo"
}}
stop() {{
    if running; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
    echo "stopped demo"
}}
case "$1" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status)
        if running; then echo "demo is running"; exit 0; fi
        echo "demo is not running"; exit 3 ;;
    *) echo "Usage: $0 {{start|stop|restart|status}}" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("pack-linux")
    (directory / PACKS_DIR).mkdir()
    index = directory / "index.json"
    index.write_text('{"packs": {"unrelated": {"name": "unrelated"}}}')
    extra = f"[content]\npacks_base_paths = {directory / PACKS_DIR}\nindex_url = {index.as_uri()}\n"
    # st2 pack install follows the install on the event stream.
    with running_engine(directory, extra_conf=extra, services=STREAM_SERVICES) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


def succeeded(st2: St2, ref: str, *parameters: str) -> Any:
    return actions.succeeded(st2, ref, *parameters)["result"]


failed = actions.failed


# --- listing and installing bundled packs --------------------------------------------------


def test_bundled_packs_are_registered_and_listed(st2: St2) -> None:
    packs = {pack["ref"] for pack in st2("pack", "list", "-j").json()}
    assert set(BUNDLED) <= packs
    listed = st2("action", "list", "--pack", "linux", "-j")
    assert listed.returncode == 0, output(listed)
    assert {action["ref"] for action in listed.json()} == {
        f"linux.{name}"
        for name in (
            "service",
            "service_status",
            "service_restart",
            "load_average",
            "disk_usage",
            "processes",
            "process_kill",
            "file_touch",
            "file_exists",
            "file_tail",
            "file_rm",
        )
    }
    table = st2("action", "list", "--pack", "linux")
    assert "linux.service_restart" in table.stdout


def test_install_a_bundled_pack_by_name_and_by_path(st2: St2, engine: RunningEngine) -> None:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    sources = {
        "linux": "linux",
        "network": str(BUNDLED_PACKS_DIR / "network"),
        "http": f"file://{BUNDLED_PACKS_DIR}/http",
    }
    for ref, source in sources.items():
        installed = st2("pack", "install", source, timeout=180)
        assert installed.returncode == 0, output(installed)
        [execution] = httpx.get(
            f"{engine.api_url}/executions",
            params={"action": "packs.install", "limit": 1},
            headers=headers,
        ).json()
        assert execution["status"] == "succeeded"
        assert execution["result"]["output"] == {"packs_list": [ref], "warning_list": []}
        pack = httpx.get(f"{engine.api_url}/packs/{ref}", headers=headers).json()
        assert pack["path"] == str(BUNDLED_PACKS_DIR / ref)
    # A bundled pack is registered where it is, not copied.
    assert list((engine.directory / PACKS_DIR).iterdir()) == []
    unknown = st2("pack", "install", "nosuchpack")
    assert unknown.returncode == 1
    assert 'No record of the "nosuchpack" pack in the index.' in output(unknown)


def test_bare_names_the_index_does_not_hold_resolve_to_bundled_packs() -> None:
    assert resolve_source("linux", (), BUNDLED_PACKS_DIR).directory == BUNDLED_PACKS_DIR / "linux"
    assert bundled_pack_names() == list(BUNDLED)
    with pytest.raises(ValidationError, match='No record of the "aws" pack in the index'):
        resolve_source("aws", (), BUNDLED_PACKS_DIR)


# --- services ------------------------------------------------------------------------------


@pytest.fixture
def init_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "init.d"
    folder.mkdir()
    script = folder / "demo"
    script.write_text(INIT_SCRIPT.format(run_dir=tmp_path))
    script.chmod(0o755)
    yield folder
    subprocess.run([str(script), "stop"], capture_output=True, check=False)


def daemon_pid(init_dir: Path) -> int:
    return int((init_dir.parent / "demo.pid").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        status = Path(f"/proc/{pid}/status").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    # A zombie is gone for our purposes.
    return "\nState:\tZ" not in status


def test_service_status_and_restart_with_an_init_script(st2: St2, init_dir: Path) -> None:
    where = f"init_dir={init_dir}"
    stopped = succeeded(st2, "linux.service_status", "name=demo", where)
    assert stopped["running"] is False
    assert stopped["manager"] == "init_script"
    assert stopped["exit_code"] == 3
    assert stopped["stdout"] == "demo is not running"

    restarted = succeeded(st2, "linux.service_restart", "name=demo", where)
    assert restarted["stdout"].endswith("started demo")
    first = daemon_pid(init_dir)
    assert alive(first), "the daemon outlives the action"
    assert succeeded(st2, "linux.service_status", "name=demo", where)["running"] is True

    succeeded(st2, "linux.service", "name=demo", "action=restart", where)
    second = daemon_pid(init_dir)
    assert second != first and alive(second)
    deadline = time.monotonic() + 10
    while alive(first) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(first), "restart stopped the old daemon"

    succeeded(st2, "linux.service", "name=demo", "action=stop", where)
    assert succeeded(st2, "linux.service_status", "name=demo", where)["running"] is False

    unsupported = failed(st2, "linux.service", "name=demo", "action=reload", where)
    assert unsupported["result"]["exit_code"] == 2
    assert "Usage" in unsupported["result"]["stderr"]
    missing = failed(st2, "linux.service_status", "name=nosuch", where)
    assert "has no init script" in missing["stderr"]
    bad_name = failed(st2, "linux.service_status", "name=../../bin/sh", where)
    assert "is not a service name" in bad_name["stderr"]


def test_service_without_init_dir_uses_this_hosts_manager(st2: St2) -> None:
    result = failed(st2, "linux.service_status", "name=poundcake-no-such-service")
    manager = "systemctl" if Path("/run/systemd/system").is_dir() else "service"
    assert f"Service 'poundcake-no-such-service' is unknown to {manager}" in result["stderr"]


# --- load, disk, processes -----------------------------------------------------------------


def test_load_average(st2: St2) -> None:
    load = succeeded(st2, "linux.load_average")
    assert load["cpu_count"] == os.cpu_count()
    assert load["load1"] >= 0 and load["total_tasks"] >= load["running_tasks"] >= 1
    assert abs(load["load15"] - os.getloadavg()[2]) < 1
    too_busy = failed(st2, "linux.load_average", "max_per_cpu=-1")
    assert "above the limit of -1" in too_busy["result"]["error"]


def test_disk_usage(st2: St2, tmp_path: Path) -> None:
    usage = succeeded(st2, "linux.disk_usage", f"path={tmp_path}")
    stats = os.statvfs(tmp_path)
    assert usage["total_bytes"] == stats.f_blocks * stats.f_frsize
    assert 0 < usage["used_percent"] <= 100
    full = failed(st2, "linux.disk_usage", f"path={tmp_path}", "max_percent=0")
    assert "full, above the limit of 0" in full["result"]["error"]
    missing = failed(st2, "linux.disk_usage", f"path={tmp_path / 'nope'}")
    assert "Cannot read the file system" in missing["stderr"]


def test_processes_and_kill(st2: St2, tmp_path: Path) -> None:
    marker = f"poundcake-test-{tmp_path.name}"
    sleeper = subprocess.Popen(["sleep", "600"], env={"PATH": os.environ["PATH"]})
    named = subprocess.Popen(["bash", "-c", f"exec -a {marker} sleep 600"])
    try:
        found = succeeded(st2, "linux.processes", f"pattern=^{marker}", "min_count=1")
        assert [process["pid"] for process in found["processes"]] == [named.pid]
        assert found["processes"][0]["user"]
        none = failed(st2, "linux.processes", f"pattern=^{marker}-absent", "min_count=1")
        assert none["result"]["count"] == 0

        killed = succeeded(st2, "linux.process_kill", f"pid={sleeper.pid}", "signal_name=KILL")
        assert killed == {"pid": sleeper.pid, "signal": "SIGKILL"}
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
        gone = failed(st2, "linux.process_kill", f"pid={sleeper.pid}")
        assert f"No process has pid {sleeper.pid}" in gone["stderr"]
    finally:
        for process in (sleeper, named):
            process.kill()
            process.wait()


# --- files ---------------------------------------------------------------------------------


def test_file_touch_exists_tail_and_rm(st2: St2, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "app.log"
    assert succeeded(st2, "linux.file_exists", f"path={target}") == {
        "path": str(target),
        "exists": False,
    }
    assert (
        "does not exist"
        in failed(st2, "linux.file_exists", f"path={target}", "must_exist=true")["result"]["error"]
    )
    no_parent = failed(st2, "linux.file_touch", f"path={target}")
    assert "No such file or directory" in no_parent["stderr"]
    assert succeeded(st2, "linux.file_touch", f"path={target}", "create_parents=true")["created"]
    assert target.is_file()

    target.write_text("".join(f"line {number}\n" for number in range(1, 2001)))
    info = succeeded(st2, "linux.file_exists", f"path={target}", "must_exist=true")
    assert (info["type"], info["size"]) == ("file", target.stat().st_size)
    tail = succeeded(st2, "linux.file_tail", f"path={target}", "lines=3")
    assert tail["lines"] == ["line 1998", "line 1999", "line 2000"]
    assert succeeded(st2, "linux.file_tail", f"path={target}", "lines=5000")["lines"][0] == "line 1"
    assert "is not a file" in failed(st2, "linux.file_tail", f"path={tmp_path}")["stderr"]

    directory = target.parent
    refused = failed(st2, "linux.file_rm", f"path={directory}")
    assert "set recursive to remove it" in refused["stderr"]
    assert succeeded(st2, "linux.file_rm", f"path={target}") == {
        "path": str(target),
        "removed": True,
    }
    assert not target.exists()
    assert "does not exist" in failed(st2, "linux.file_rm", f"path={target}")["stderr"]
    assert succeeded(st2, "linux.file_rm", f"path={target}", "force=true")["removed"] is False
    assert succeeded(st2, "linux.file_rm", f"path={directory}", "recursive=true")["removed"]
    assert not directory.exists()
    assert (
        "Refusing to remove /" in failed(st2, "linux.file_rm", "path=/", "recursive=true")["stderr"]
    )
