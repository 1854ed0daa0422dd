"""``st2ctl start|stop|restart|status``: manage the engine's processes like ``sudo st2ctl``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poundcake.cli.common import handles_errors, out
from poundcake.config import St2Config, load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.messaging import (
    NOTIFIER_QUEUE,
    RULES_ENGINE_QUEUE,
    RUNNER_QUEUE,
    SCHEDULER_QUEUE,
    WORKFLOW_ENGINE_QUEUE,
    WORKFLOW_QUEUE,
    WORKFLOW_UPDATES_QUEUE,
)
from poundcake.engine.rbac.settings import refuse_unenforced_rbac
from poundcake.ops.processes import ProcessManager, ServiceSpec
from poundcake.ops.status import Probe, all_required_up, broker_probe, database_probe

ConfigFile = Annotated[
    Path | None, typer.Option("--config-file", help="st2.conf to read (default: the usual places).")
]
Services = Annotated[
    list[str] | None, typer.Argument(help="Services to act on (default: all).", show_default=False)
]


def engine_services(config: St2Config) -> list[ServiceSpec]:
    """The engine's processes in start order."""
    return [
        ServiceSpec("st2api"),
        ServiceSpec("st2auth"),
        ServiceSpec("st2stream"),
        ServiceSpec("st2scheduler"),
        ServiceSpec("st2workflowengine", instances=config.workflow_engine.workers),
        ServiceSpec("st2rulesengine"),
        ServiceSpec("st2notifier"),
        *([ServiceSpec("st2timersengine")] if config.timersengine.enable else []),
        ServiceSpec("st2garbagecollector"),
        ServiceSpec("st2sensorcontainer"),
        ServiceSpec("st2actionrunner", instances=config.actionrunner.workers),
    ]


def _selected(config: St2Config, names: list[str] | None) -> list[tuple[ServiceSpec, str]]:
    specs = engine_services(config)
    known = {spec.name for spec in specs}
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [
        (spec, instance)
        for spec in specs
        if not names or spec.name in names
        for instance in spec.instance_names()
    ]


def _manager(config: St2Config) -> ProcessManager:
    return ProcessManager(config.run_dir, config.log_dir)


def _config_args(config: St2Config) -> list[str]:
    return [] if config.is_embedded else ["--config-file", config.source]


def start(services: Services = None, config_file: ConfigFile = None) -> None:
    """Start the engine's services (those already running are left alone)."""
    config = load_st2_config(config_file)
    refuse_unenforced_rbac(config)
    manager = _manager(config)
    for spec, name in _selected(config, services):
        already = manager.pid(name)
        pid = manager.start(spec, name, _config_args(config))
        state = "already running" if already else "started"
        out.print(f"{name} {state} (PID {pid}); log: {manager.log_file(name)}")


def stop(services: Services = None, config_file: ConfigFile = None) -> None:
    """Stop the engine's services gracefully (SIGTERM, then SIGKILL after 30 s)."""
    config = load_st2_config(config_file)
    manager = _manager(config)
    for _spec, name in reversed(_selected(config, services)):
        if manager.stop(name):
            out.print(f"{name} stopped.")
        else:
            out.print(f"{name} is not running.")


def restart(services: Services = None, config_file: ConfigFile = None) -> None:
    """Stop, then start."""
    stop(services, config_file)
    start(services, config_file)


def status(services: Services = None, config_file: ConfigFile = None) -> None:
    """Show each service and its PID, the database, the broker and its queues; exit 3 if a
    service is not running or the database or broker cannot be reached."""
    config = load_st2_config(config_file)
    manager = _manager(config)
    down = False
    out.print("##### st2 components status #####")
    for _spec, name in _selected(config, services):
        state = manager.state(name)
        if state.running:
            out.print(f"{name} PID: {state.pid}")
        else:
            down = True
            out.print(f"{name} is not running.")
    probes = engine_probes(config)
    for probe in probes:
        out.print(probe.line())
    if down or not all_required_up(probes):
        raise typer.Exit(code=3)


def engine_probes(config: St2Config) -> list[Probe]:
    """The engine's database, its broker and the depth of each of its queues."""
    db_engine = make_st2_engine(config, pool_size=1)
    try:
        probes = [database_probe("database", db_engine, config.database.describe())]
    finally:
        db_engine.dispose()
    queues = [
        str(queue.name)
        for queue in (
            SCHEDULER_QUEUE,
            RUNNER_QUEUE,
            WORKFLOW_QUEUE,
            WORKFLOW_ENGINE_QUEUE,
            WORKFLOW_UPDATES_QUEUE,
            NOTIFIER_QUEUE,
        )
    ]
    queues.append(str(RULES_ENGINE_QUEUE.name))
    probes.extend(broker_probe("broker", config.messaging_url, queues))
    return probes


def add_service_commands(app: typer.Typer) -> None:
    """Attach start, stop, restart and status to the ``st2ctl`` application."""
    for command in (start, stop, restart, status):
        app.command(command.__name__)(handles_errors(command))
