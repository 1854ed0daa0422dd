"""The whole product as real processes, for end-to-end tests and ``bench/alert_to_action.py``.

One MariaDB database holds the engine's and PoundCake's tables. The engine runs as st2api,
st2auth, st2stream, st2scheduler, st2actionrunner, st2rulesengine, st2notifier and
st2workflowengine (Orquesta workflows); PoundCake as poundcake-api, poundcake-worker and
poundcake-beat on Redis; a real Alertmanager routes alerts to poundcake-api with a bearer token.
CAB files are applied with ``poundcake cabs apply``.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from poundcake.cli.st2ctl_services import engine_services
from poundcake.config import load_st2_config
from poundcake.ops.key_rotation import write_key_file
from tests.integration.support.commands import BIN, command_environment
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database
from tests.integration.support.rbac import assign_roles
from tests.integration.support.redis_db import claim_redis_database, redis_url
from tests.integration.support.st2cli import (
    SERVICES,
    USER,
    RunningEngine,
    api_key_for,
    eventually,
    free_port,
    running_engine,
    service_command,
)

ENGINE_SERVICES = (
    *SERVICES,
    "st2rulesengine",
    "st2notifier",
    "st2stream",
    "st2workflowengine",
)
# The sections of the engine's test st2.conf that tune it for short tests.
TUNED_SECTIONS = ("scheduler", "actionrunner")
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TOKEN = "e2e-alertmanager-bearer-9c4f1a7d"
RBAC_ON = "[rbac]\nenable = True\nbackend = default\n"


@dataclass
class Product:
    """Everything running; helpers to drive and inspect it."""

    directory: Path
    database: str
    engine: RunningEngine
    api_key: str
    env: dict[str, str]
    api_port: int
    alertmanager_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    engine_key_output: str = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.directory / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            env=env or self.env,
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None) or self.engine.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_engine_runner(self) -> None:
        """Stop ``st2actionrunner`` (work then waits in the engine, nothing runs)."""
        self.stop("st2actionrunner")

    def start_engine_runner(self) -> None:
        """Start ``st2actionrunner`` again."""
        self.start_engine_service("st2actionrunner")

    def start_engine_service(self, name: str) -> None:
        """Start one of the engine's services again (after :meth:`stop`)."""
        config = self.engine.config_path
        self.start(
            name,
            [*service_command(name), "--config-file", str(config)],
            env=command_environment(self.engine.directory),
        )

    def poundcake(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``poundcake`` command with the product's settings."""
        return subprocess.run(
            [str(BIN / "poundcake"), *args],
            env=self.env,
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call poundcake-api with the bearer token."""
        headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def engine_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the engine's API with PoundCake's key."""
        headers = {"St2-Api-Key": self.api_key}
        return httpx.request(
            method, self.engine.api_url + path, headers=headers, timeout=30, **kwargs
        )

    def start_execution(self, action: str, parameters: dict[str, Any]) -> str:
        """Run ``action`` through the engine's API; the new execution's id."""
        response = self.engine_api(
            "POST", "/executions", json={"action": action, "parameters": parameters}
        )
        assert response.status_code == 201, response.text
        execution_id: str = response.json()["id"]
        return execution_id

    def alerts(self, name: str) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/v1/alerts", params={"name": name, "limit": 50})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["alerts"]
        return found

    def alert_in_state(self, name: str, *states: str, timeout: float = 90) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found = [alert for alert in self.alerts(name) if alert["state"] in states]
            return found[0] if found else None

        alert: dict[str, Any] = eventually(check, f"{name} in {states}", timeout)
        return alert

    def episode(self, instance: str) -> dict[str, Any] | None:
        """The episode of the alert with this ``instance`` label, in detail."""
        response = self.api("GET", "/api/v1/alerts", params={"limit": 200})
        assert response.status_code == 200, response.text
        for alert in response.json()["alerts"]:
            if alert["labels"].get("instance") == instance:
                detail = self.api("GET", f"/api/v1/alerts/{alert['id']}")
                assert detail.status_code == 200, detail.text
                found: dict[str, Any] = detail.json()["alert"]
                return found
        return None

    def episode_where(
        self, instance: str, what: str, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Wait until the episode of ``instance`` exists and passes ``check``; return it."""

        def look() -> dict[str, Any] | None:
            found = self.episode(instance)
            return found if found is not None and check(found) else None

        result: dict[str, Any] = eventually(look, what, timeout=180)
        return result

    def fire_through_alertmanager(self, labels: dict[str, str], **extra: Any) -> None:
        """Post an alert to Alertmanager's API (as Prometheus does)."""
        alert = {"labels": labels, "annotations": {"summary": "e2e"}, **extra}
        response = httpx.post(f"{self.alertmanager_url}/api/v2/alerts", json=[alert], timeout=30)
        assert response.status_code == 200, response.text


def alertmanager_now() -> str:
    """Now, as Alertmanager's API takes a time (``endsAt=alertmanager_now()`` resolves)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_config(api_port: int) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "poundcake",
            "group_by": ["alertname", "instance"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "poundcake",
                "webhook_configs": [
                    {
                        "url": f"http://127.0.0.1:{api_port}/api/v1/webhook",
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                    }
                ],
            }
        ],
    }


def wait_for_health(url: str, timeout: float = 60) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(healthy, url, timeout)


def start_alertmanager(
    directory: Path, config: Path, attempts: int = 3
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a real Alertmanager on a free loopback port; the process and its port.

    The port is chosen just before the start. If another process binds it first, Alertmanager
    exits ("address already in use") and a new port is tried, up to ``attempts`` times.
    """
    for _ in range(attempts):
        port = free_port()
        with (directory / "alertmanager.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={config}",
                    f"--storage.path={directory / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
                start_new_session=True,
            )
        if _ready_or_exited(process, f"http://127.0.0.1:{port}/-/ready"):
            return process, port
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    log_text = (directory / "alertmanager.log").read_text(errors="replace")
    raise AssertionError(f"Alertmanager did not start in {attempts} attempts:\n{log_text[-2000:]}")


def _ready_or_exited(process: subprocess.Popen[bytes], url: str, timeout: float = 60) -> bool:
    """True once ``url`` answers 200; False as soon as ``process`` has exited."""

    def settled() -> bool | None:
        if process.poll() is not None:
            return False
        try:
            return True if httpx.get(url, timeout=2).status_code == 200 else None
        except httpx.HTTPError:
            return None

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = settled()
        if outcome is not None:
            return outcome
        time.sleep(0.1)
    return False


TUNED_POUNDCAKE = {"POUNDCAKE_RELAY_AFTER_SECONDS": "2", "POUNDCAKE_WORKER_CONCURRENCY": "4"}


def make_login_user_system_admin(config_path: Path) -> None:
    """Assign ``system_admin`` to the engine's login user in the RBAC definitions and apply."""
    assign_roles(config_path, USER, ["system_admin"])


def shipped_engine_services(directory: Path) -> tuple[str, ...]:
    """What ``st2ctl start`` starts with a default st2.conf: the product's own list."""
    probe = directory / "st2-defaults-probe.conf"
    probe.write_text("[database]\nbackend = mysql\nhost = 127.0.0.1\ndb_name = probe\n")
    return tuple(
        spec.name for spec in engine_services(load_st2_config(probe)) for _ in range(spec.instances)
    )


def untuned(config_path: Path) -> Path:
    """A copy of ``config_path`` without the sections tuned for tests: the engine's defaults."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_path)
    for section in TUNED_SECTIONS:
        parser.remove_section(section)
    shipped = config_path.with_name(f"{config_path.stem}-defaults.conf")
    with shipped.open("w") as handle:
        parser.write(handle)
    return shipped


@contextmanager
def running_product(
    directory: Path,
    cabs: dict[str, dict[str, Any]],
    *,
    redis: str | None = None,
    database_users: Callable[[Path, str], tuple[Path, str]] | None = None,
    key_in_file: bool = False,
    packs: Sequence[Path] = (),
    shipped_defaults: bool = False,
    rbac: bool = False,
) -> Iterator[Product]:
    """Start everything, apply ``cabs`` (name -> CAB document), yield, stop everything.

    ``redis`` is the URL of a Redis of the caller's (a private server a test restarts); without
    it a database of the shared one is claimed. ``database_users``, if given, is called after
    ``st2-setup-db`` with the engine's (root) st2.conf and the database name; it returns the
    st2.conf the engine services use and the ``DATABASE_URL`` PoundCake's services use, so both
    can run as least-privilege users. With ``key_in_file`` PoundCake reads its engine API key
    from the default key file (``<data_dir>/secrets/st2-api-key``) instead of ``ST2_API_KEY``,
    and its processes' pid files are written where ``poundcake reload`` looks for them.
    ``packs`` are pack directories copied into the engine's packs path before it registers
    its content. With ``shipped_defaults`` (the benchmarks) nothing is tuned for short tests:
    every service ``st2ctl start`` starts, the engine's default scheduler, runner and rules
    engine settings, and PoundCake's default relay delay and worker concurrency. With ``rbac``
    the engine enforces RBAC (``[rbac] enable = True``), the login user is a ``system_admin``
    (``Product.api_key`` is its key) and PoundCake's processes use the key ``poundcake
    engine-key`` creates in the default key file, holding only the ``poundcake`` role
    (``Product.engine_key_output`` is what the command printed).
    """
    database = f"pctest_e2e_{uuid.uuid4().hex[:10]}"
    create_fixture_database(database)
    poundcake_url = [f"mysql+pymysql://root@127.0.0.1:3306/{database}"]

    def service_config(admin_config: Path) -> Path:
        config = admin_config
        if rbac:
            make_login_user_system_admin(admin_config)
        if database_users is not None:
            config, poundcake_url[0] = database_users(admin_config, database)
        return untuned(config) if shipped_defaults else config

    packs_dir = directory / "packs"
    packs_dir.mkdir(parents=True, exist_ok=True)
    for pack in packs:
        shutil.copytree(pack, packs_dir / pack.name)
    (directory / "engine").mkdir(exist_ok=True)
    extra = f"[content]\npacks_base_paths = {packs_dir}\n\n"
    if not shipped_defaults:
        extra += "[rulesengine]\npoll_interval = 0.3\n\n[garbagecollector]\n"
        extra += "action_executions_output_ttl = 7\n"
    if rbac:
        extra += f"\n{RBAC_ON}"
    try:
        with ExitStack() as stack:
            engine = stack.enter_context(
                running_engine(
                    directory / "engine",
                    database,
                    shipped_engine_services(directory) if shipped_defaults else ENGINE_SERVICES,
                    extra,
                    service_config if database_users or shipped_defaults or rbac else None,
                )
            )
            key = api_key_for(engine)
            broker = redis or redis_url(stack.enter_context(claim_redis_database()))
            api_port = free_port()
            cabs_dir = directory / "cabs"
            cabs_dir.mkdir(exist_ok=True)
            for name, document in cabs.items():
                (cabs_dir / f"{name}.yaml").write_text(yaml.safe_dump(document))
            env = command_environment(
                directory,
                DATABASE_URL=poundcake_url[0],
                ST2_TABLE_PREFIX="",
                ST2_CONFIG_PATH=str(engine.config_path),
                ST2_API_URL=engine.api_url,
                ST2_STREAM_URL=f"{engine.stream_url}/stream",
                ST2_API_KEY=key,
                REDIS_URL=broker,
                POUNDCAKE_WEBHOOK_TOKENS=TOKEN,
                POUNDCAKE_CABS_DIR=str(cabs_dir),
                POUNDCAKE_CABS_PACK_DIR=str(packs_dir / "poundcake_cabs"),
                POUNDCAKE_PORT=str(api_port),
                **({} if shipped_defaults else TUNED_POUNDCAKE),
            )
            env["POUNDCAKE_DATA_DIR"] = str(directory / "poundcake")
            if key_in_file or rbac:
                del env["ST2_API_KEY"]
            if key_in_file and not rbac:
                write_key_file(directory / "poundcake" / "secrets" / "st2-api-key", key)
            config = directory / "alertmanager.yml"
            config.write_text(yaml.safe_dump(alertmanager_config(api_port)))
            alertmanager, alertmanager_port = start_alertmanager(directory, config)
            product = Product(directory, database, engine, key, env, api_port, alertmanager_port)
            product.processes["alertmanager"] = alertmanager
            # Run safety's silences and verification ask this Alertmanager.
            env["POUNDCAKE_ALERTMANAGER_URL"] = product.alertmanager_url
            stack.callback(lambda: [product.stop(name) for name in list(product.processes)])
            initialised = product.poundcake("db", "init")
            assert initialised.returncode == 0, initialised.stdout + initialised.stderr
            if rbac:
                created = product.poundcake("engine-key")
                product.engine_key_output = created.stdout + created.stderr
                assert created.returncode == 0, product.engine_key_output
            product.start("poundcake-api", [str(BIN / "poundcake-api")])
            product.start("poundcake-worker", [str(BIN / "poundcake-worker")])
            product.start("poundcake-beat", [str(BIN / "poundcake-beat")])
            if key_in_file:
                run_dir = directory / "poundcake" / "run"
                run_dir.mkdir(parents=True, exist_ok=True)
                for name in ("poundcake-api", "poundcake-worker", "poundcake-beat"):
                    (run_dir / f"{name}.pid").write_text(f"{product.processes[name].pid}\n")
            wait_for_health(f"{product.api_url}/health")
            if cabs:
                applied = product.poundcake("cabs", "apply")
                assert applied.returncode == 0, applied.stdout + applied.stderr
            yield product
    finally:
        drop_fixture_database(database)
