"""``poundcake start|stop|restart|status|reload`` and ``poundcake engine-key``: run PoundCake's own
processes.

``start`` runs poundcake-api, poundcake-worker and poundcake-beat with pid files in
``<data_dir>/run`` and logs in ``<data_dir>/logs`` (``st2ctl`` does the same for the engine;
systemd units are in ``deploy/systemd``). ``engine-key`` gives PoundCake its engine API key
(install guide step 7) when none is configured: it creates one in the engine's database and
writes it to ``ST2_API_KEY_FILE`` (default ``<data_dir>/secrets/st2-api-key``, mode 0600);
``engine-key --rotate`` replaces it without downtime. With the engine's ``[rbac] enable`` on,
both also give the key's user the ``poundcake`` role alone (:mod:`poundcake.ops.engine_role`).
``status`` also checks the database, the
Celery broker and the queues; ``reload`` sends SIGHUP (see :mod:`poundcake.ops.reload`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from poundcake.cli.common import handles_errors, out
from poundcake.config import (
    PoundCakeConfig,
    load_poundcake_config,
    load_settings,
    load_st2_config,
)
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.auth.service import authenticate_api_key, create_api_key
from poundcake.exceptions import AuthenticationError
from poundcake.ops.engine_role import ROLE_NAME, grant_engine_role
from poundcake.ops.key_rotation import rotate_engine_key, write_key_file
from poundcake.ops.processes import ProcessManager, ServiceSpec
from poundcake.ops.reload import send_reload
from poundcake.ops.status import Probe, all_required_up
from poundcake.remediation.api.auth import ensure_webhook_token
from poundcake.remediation.engine_api import api_key_file

SERVICES = (
    ServiceSpec("poundcake-api"),
    ServiceSpec("poundcake-worker"),
    ServiceSpec("poundcake-beat"),
)
KEY_USER = "poundcake"

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]
Names = Annotated[
    list[str] | None, typer.Argument(help="Services (default: all).", show_default=False)
]


def _config(env_file: Path | None) -> PoundCakeConfig:
    return load_poundcake_config(load_settings(env_file))


def _manager(config: PoundCakeConfig) -> ProcessManager:
    data = config.settings.data_dir
    return ProcessManager(data / "run", data / "logs")


def _selected(names: list[str] | None) -> list[ServiceSpec]:
    known = {spec.name for spec in SERVICES}
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [spec for spec in SERVICES if not names or spec.name in names]


@handles_errors
def start(names: Names = None, env_file: EnvFile = None) -> None:
    """Start PoundCake's processes (those already running are left alone)."""
    config = _config(env_file)
    manager = _manager(config)
    for spec in _selected(names):
        already = manager.pid(spec.name)
        pid = manager.start(spec, spec.name)
        state = "already running" if already else "started"
        out.print(f"{spec.name} {state} (PID {pid}); log: {manager.log_file(spec.name)}")


@handles_errors
def stop(names: Names = None, env_file: EnvFile = None) -> None:
    """Stop PoundCake's processes (SIGTERM, then SIGKILL after 30 s)."""
    manager = _manager(_config(env_file))
    for spec in reversed(_selected(names)):
        out.print(f"{spec.name} {'stopped' if manager.stop(spec.name) else 'is not running'}.")


@handles_errors
def restart(names: Names = None, env_file: EnvFile = None) -> None:
    """Stop, then start PoundCake's processes (all, or those named): what the install guide's
    ``docker-compose restart api`` does for a host run with ``poundcake start``."""
    config = _config(env_file)
    manager = _manager(config)
    selected = _selected(names)
    for spec in reversed(selected):
        out.print(f"{spec.name} {'stopped' if manager.stop(spec.name) else 'was not running'}.")
    for spec in selected:
        pid = manager.start(spec, spec.name)
        out.print(f"{spec.name} started (PID {pid}); log: {manager.log_file(spec.name)}")


@handles_errors
def status(names: Names = None, env_file: EnvFile = None) -> None:
    """Show each process and its PID, the database, the Celery broker, the queue and the outbox;
    exit 3 if a process is not running or the database or broker cannot be reached."""
    config = _config(env_file)
    manager = _manager(config)
    down = False
    for spec in _selected(names):
        state = manager.state(spec.name)
        down = down or not state.running
        out.print(
            f"{spec.name} PID: {state.pid}" if state.running else f"{spec.name} is not running."
        )
    probes: list[Probe] = poundcake_probes(config)
    for probe in probes:
        out.print(probe.line())
    if down or not all_required_up(probes):
        raise typer.Exit(code=3)


def poundcake_probes(config: PoundCakeConfig) -> list[Probe]:
    """The database, the Celery broker with its queue, and the outbox of unprocessed deliveries."""
    # Imported here: the status of the processes alone needs neither Celery nor the models.
    from poundcake.ops.status import broker_probe, count_probe, database_probe
    from poundcake.remediation.alerts.models import AlertDelivery
    from poundcake.remediation.tasks.app import QUEUE, broker_url

    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        probes = [database_probe("database", db_engine, config.database.describe())]
        probes.extend(broker_probe("celery broker", broker_url(config.settings), [QUEUE]))
        unprocessed = (
            sa.select(sa.func.count())
            .select_from(AlertDelivery)
            .where(AlertDelivery.processed_at.is_(None))
        )
        if probes[0].ok:
            probes.append(count_probe("outbox", db_engine, unprocessed, "unprocessed deliveries"))
        return probes
    finally:
        db_engine.dispose()


@handles_errors
def reload(names: Names = None, env_file: EnvFile = None) -> None:
    """Send SIGHUP to the running processes: they read the engine API key file again."""
    manager = _manager(_config(env_file))
    for sent in send_reload(manager, [spec.name for spec in _selected(names)]):
        if sent.pid is None:
            out.print(f"{sent.name} is not running.")
        else:
            out.print(f"{sent.name} (PID {sent.pid}) reloads.")


Rotate = Annotated[
    bool,
    typer.Option(
        "--rotate",
        help="Replace the key without downtime: create a new one, write the key file, reload "
        "the running processes, then delete the old key.",
    ),
]
Grace = Annotated[
    float,
    typer.Option(
        "--grace", min=0, help="Seconds between the reload and deleting the old key (--rotate)."
    ),
]


@handles_errors
def engine_key(env_file: EnvFile = None, rotate: Rotate = False, grace: Grace = 2.0) -> None:
    """Make sure PoundCake has a working engine API key (creates one in the engine's database)."""
    config = _config(env_file)
    if rotate:
        _rotate(config, grace)
        return
    if config.settings.st2_api_key is not None:
        out.print("ST2_API_KEY is set; nothing to do.")
        return
    path = api_key_file(config.settings)
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        sessions = make_session_factory(db_engine)
        with unit_of_work(sessions) as session:
            existing = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
            if existing:
                try:
                    user = authenticate_api_key(session, existing).user
                    _grant_role(config, user)
                    out.print(f"The engine API key in {path} works; nothing more to do.")
                    return
                except AuthenticationError:
                    out.print(
                        f"The key in {path} is not accepted by the engine; creating a new one."
                    )
            created = create_api_key(session, user=KEY_USER, metadata={"used_by": "poundcake"})
        _grant_role(config, KEY_USER)
        write_key_file(path, created.key)
        out.print(f"Created an engine API key for PoundCake in {path} (id {created.record.id}).")
    finally:
        db_engine.dispose()


def _grant_role(config: PoundCakeConfig, user: str) -> None:
    """With the engine's RBAC on, give ``user`` the ``poundcake`` role alone, and say so."""
    grant = grant_engine_role(load_st2_config(config.settings.st2_config_path), user)
    if grant is None:
        return
    for path in grant.written:
        out.print(f"Wrote {path}.")
    report = grant.report
    if report.changed:
        out.print(
            f'Applied the RBAC definitions in {grant.directory}: user "{user}" holds the role '
            f'"{ROLE_NAME}" alone (roles {report.roles.summary()}; role assignments '
            f"{report.assignments.summary()}; group mappings {report.mappings.summary()})."
        )
    else:
        out.print(
            f'RBAC: user "{user}" already holds the role "{ROLE_NAME}" alone '
            f"({grant.directory} is applied)."
        )


def _rotate(config: PoundCakeConfig, grace: float) -> None:
    manager = _manager(config)
    _grant_role(config, KEY_USER)
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        sessions = make_session_factory(db_engine)

        def reload_services() -> None:
            for sent in send_reload(manager, [spec.name for spec in SERVICES]):
                if sent.pid is not None:
                    out.print(f"{sent.name} (PID {sent.pid}) reloads.")
            time.sleep(grace)

        rotation = rotate_engine_key(
            sessions, api_key_file(config.settings), config.settings, reload_services
        )
    finally:
        db_engine.dispose()
    out.print(f"Wrote the new engine API key (id {rotation.new_id}) to {rotation.path}.")
    if rotation.old_id is None:
        out.print("There was no working old key to delete.")
    else:
        out.print(f"Deleted the old engine API key (id {rotation.old_id}).")


@handles_errors
def webhook_token(env_file: EnvFile = None) -> None:
    """Print the bearer token Alertmanager must send (generated once when none is configured)."""
    out.print(ensure_webhook_token(_config(env_file).settings))


def add_process_commands(app: typer.Typer) -> None:
    """Add start, stop, status, engine-key and webhook-token to the ``poundcake`` command."""
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("restart")(restart)
    app.command("status")(status)
    app.command("reload")(reload)
    app.command("engine-key")(engine_key)
    app.command("webhook-token")(webhook_token)
