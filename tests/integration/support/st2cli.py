"""The engine as a user runs it, for tests that drive the official ``st2`` CLI.

:func:`running_engine` starts real ``st2api``, ``st2auth``, ``st2scheduler`` and
``st2actionrunner`` processes (and ``st2stream`` or ``st2workflowengine`` when asked:
:data:`STREAM_SERVICES`, :data:`WORKFLOW_SERVICES`) on free
loopback ports against a fresh MariaDB database and a RabbitMQ vhost of their own, after
``st2-setup-db``, ``st2ctl reload --register-all`` and ``st2-setup-auth``. :class:`St2` runs
the CLI from ``.venv-st2`` (st2client 3.9.0, installed by ``scripts/install-test-tools.sh``) with
a clean HOME.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.support.commands import BIN, command_environment, run_command
from tests.integration.support.engine_stack import rabbitmq_vhost
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database
from tests.paths import REPOSITORY

ST2 = REPOSITORY / ".venv-st2" / "bin" / "st2"
USER, PASSWORD = "st2admin", "Ch@ngeMe-42"
SERVICES = ("st2api", "st2auth", "st2scheduler", "st2actionrunner")
STREAM_SERVICES = (*SERVICES, "st2stream")
WORKFLOW_SERVICES = (*SERVICES, "st2workflowengine")


def service_command(service: str) -> list[str]:
    """The command that starts ``service``."""
    return [str(BIN / service)]


# Test servers listen below the kernel's ephemeral range (ip_local_port_range). A port the
# kernel hands out for "port 0" comes from that range, and so do the source ports of the many
# outgoing connections the tests make: one freed after the probe could be taken as a source port
# before the server binds it ("address already in use"). Each pytest-xdist worker takes its own
# slice, in order from a random start, so parallel workers never pick the same port.
LOWEST_PORT = 10000


def _port_slice() -> range:
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or 0) % workers
    size = (ephemeral - LOWEST_PORT) // workers
    return range(LOWEST_PORT + worker * size, LOWEST_PORT + (worker + 1) * size)


_PORTS = _port_slice()
_NEXT = itertools.count(int.from_bytes(os.urandom(2), "big"))


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's slice below the ephemeral range."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_NEXT) % len(_PORTS)]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free loopback port in {_PORTS}")


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class RunningEngine:
    """The engine's processes and how to reach them."""

    directory: Path
    config_path: Path
    api_port: int
    auth_port: int
    stream_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.auth_port}"

    @property
    def stream_url(self) -> str:
        return f"http://127.0.0.1:{self.stream_port}/v1"

    def log(self, service: str) -> str:
        path = self.directory / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class St2:
    """The official CLI against a running engine."""

    def __init__(self, engine: RunningEngine, home: Path) -> None:
        assert ST2.exists(), f"{ST2} is missing: run scripts/install-test-tools.sh"
        home.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TERM": "dumb",
            "ST2_CLI_SKIP_CONFIG": "1",
            "ST2_API_URL": engine.api_url,
            "ST2_AUTH_URL": engine.auth_url,
            "ST2_STREAM_URL": engine.stream_url,
            "COLUMNS": "200",
        }

    def __call__(self, *args: str, timeout: float = 120, stdin: str | None = None) -> CliResult:
        completed = subprocess.run(
            [str(ST2), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    def login(self, user: str = USER, password: str = PASSWORD) -> str:
        """Get a token with the CLI and use it for every later call."""
        result = self("auth", user, "-p", password, "-t")
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip()
        self.env["ST2_AUTH_TOKEN"] = token
        return token

    def on_terminal(self, *args: str, answers: list[str], timeout: float = 60) -> CliResult:
        """Run the CLI on a pseudo-terminal, typing each answer once the output is quiet (for
        interactive prompts); stdout and stderr come back together as ``stdout``."""
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [str(ST2), *args], env=self.env, stdin=follower, stdout=follower, stderr=follower
        )
        os.close(follower)
        output = bytearray()
        deadline = time.monotonic() + timeout
        try:
            for answer in [*answers, None]:
                _read_until_quiet(leader, output, deadline)
                if answer is not None:
                    os.write(leader, answer.encode() + b"\r")
            returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            _read_until_quiet(leader, output, deadline, quiet=0.2)
        finally:
            if process.poll() is None:
                process.kill()
            os.close(leader)
        return CliResult(returncode, output.decode(errors="replace"), "")


def _read_until_quiet(leader: int, output: bytearray, deadline: float, quiet: float = 1.0) -> None:
    """Read from a terminal until it has been silent for ``quiet`` seconds (or it closed)."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], quiet)
        if not ready:
            return
        try:
            data = os.read(leader, 4096)
        except OSError:
            return
        if not data:
            return
        output.extend(data)


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def logged_in(engine: RunningEngine, home: Path) -> St2:
    """An ``st2`` CLI with its own home directory, logged in as the test user."""
    cli = St2(engine, home)
    cli.login()
    return cli


def api_key_for(engine: RunningEngine) -> str:
    """Create an engine API key (install guide step 7) with a login token."""
    token = httpx.post(f"{engine.auth_url}/tokens", auth=(USER, PASSWORD), timeout=30)
    assert token.status_code == 201, token.text
    created = httpx.post(
        f"{engine.api_url}/apikeys",
        headers={"X-Auth-Token": token.json()["token"]},
        json={"metadata": {"used_by": "poundcake"}},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


def output(result: CliResult) -> str:
    """What a command printed on both streams."""
    return result.stdout + result.stderr


def run_async(st2: St2, *args: str) -> str:
    """``st2 run ... -a``: the id of the execution it started."""
    result = st2("run", *args, "-a")
    assert result.returncode == 0, output(result)
    found = re.search(r"st2 execution get ([0-9a-f]{24})", result.stdout)
    assert found, result.stdout
    return found.group(1)


def wait_for(
    api: httpx.Client, execution_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    """Poll the execution until its status is one of ``statuses``; return its document."""
    deadline = time.monotonic() + timeout
    while True:
        document: dict[str, Any] = api.get(f"/executions/{execution_id}").json()
        if document["status"] in statuses:
            return document
        assert time.monotonic() < deadline, f"{execution_id} still {document['status']}"
        time.sleep(0.2)


def child_executions(api: httpx.Client, execution_id: str, attributes: str) -> list[dict[str, Any]]:
    """Every child execution of an execution (``GET /v1/executions?parent=``), oldest first, with
    the given attributes."""
    response = api.get(
        "/executions",
        params={
            "parent": execution_id,
            "limit": "-1",
            "sort_asc": "true",
            "include_attributes": attributes,
        },
        timeout=300,
    )
    assert response.status_code == 200, response.text[:500]
    found: list[dict[str, Any]] = response.json()
    return found


def ok(result: CliResult) -> Any:
    """The JSON a successful command printed; fails the test with its output otherwise."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result.json()


def listing(result: CliResult) -> list[Any]:
    """A list command's JSON; the CLI prints a sentence instead of ``[]``."""
    assert result.returncode == 0, result.stdout + result.stderr
    if result.stdout.strip() == "No matching items found":
        return []
    found: list[Any] = result.json()
    return found


def _write_conf(
    directory: Path, database: str, messaging: str, ports: dict[str, int], extra: str = ""
) -> Path:
    path = directory / "st2.conf"
    path.write_text(
        "[database]\nbackend = mysql\nhost = 127.0.0.1\nport = 3306\nusername = root\n"
        f"db_name = {database}\n\n[messaging]\nurl = {messaging}\n\n"
        f"[api]\nport = {ports['api']}\n\n[auth]\nport = {ports['auth']}\n\n"
        f"[stream]\nport = {ports['stream']}\nheartbeat = 2\n\n"
        "[scheduler]\nsweep_interval = 0.5\nlost_after = 2\n\n"
        "[actionrunner]\nlease_seconds = 5\nconcurrency = 4\n\n"
        f"[system]\ndata_dir = {directory / 'data'}\n\n{extra}"
    )
    return path


@contextmanager
def running_engine(
    directory: Path,
    database: str | None = None,
    services: tuple[str, ...] = SERVICES,
    extra_conf: str = "",
    service_config: Callable[[Path], Path] | None = None,
) -> Iterator[RunningEngine]:
    """Set up the schema, content and a login, then run ``services`` until the block ends.

    Without ``database`` a fresh one is created and dropped afterwards; ``extra_conf`` is
    appended to the st2.conf written for the engine. ``service_config``, if given, is called
    with that st2.conf after the setup commands and returns the st2.conf the services run with
    (e.g. with a least-privilege database user).
    """
    if database is None:
        name = f"pctest_cli_{uuid.uuid4().hex[:12]}"
        create_fixture_database(name)
        try:
            with running_engine(directory, name, services, extra_conf, service_config) as engine:
                yield engine
        finally:
            drop_fixture_database(name)
        return
    ports = {"api": free_port(), "auth": free_port(), "stream": free_port()}
    with rabbitmq_vhost() as messaging:
        config = _write_conf(directory, database, messaging, ports, extra_conf)
        env = command_environment(directory)
        for command in (
            ("st2-setup-db", "--config-file", str(config)),
            ("st2ctl", "reload", "--register-all", "--config-file", str(config)),
            ("st2-setup-auth", "-u", USER, "-p", PASSWORD, "--config-file", str(config)),
        ):
            result = run_command(*command, env=env)
            assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        if service_config is not None:
            config = service_config(config)
        engine = RunningEngine(directory, config, ports["api"], ports["auth"], ports["stream"])
        try:
            for service in services:
                log = (directory / f"{service}.log").open("ab")
                engine.processes[service] = subprocess.Popen(
                    [*service_command(service), "--config-file", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            for service, port in (
                ("st2api", ports["api"]),
                ("st2auth", ports["auth"]),
                ("st2stream", ports["stream"]),
            ):
                if service in services:
                    wait_for_port(port)
            yield engine
        finally:
            for process in engine.processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in engine.processes.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
