"""Entry points of the engine's long-running processes: ``st2scheduler``, ``st2actionrunner``,
``st2workflowengine``, ``st2rulesengine``, ``st2notifier``, ``st2timersengine``,
``st2garbagecollector``, ``st2sensorcontainer``, ``st2api``, ``st2auth`` and ``st2stream``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Protocol

import typer
import uvicorn

from poundcake.cli.common import handles_errors
from poundcake.cli.memory import return_large_blocks
from poundcake.config import St2Config, load_st2_config, log_unread_st2_settings
from poundcake.engine.actionrunner.process import ActionRunner, ActionRunnerSettings
from poundcake.engine.api.app import Listener, create_app
from poundcake.engine.coordination.service import register_service
from poundcake.engine.garbage.process import GarbageCollector, GarbageCollectorSettings
from poundcake.engine.notifier.process import Notifier, NotifierSettings
from poundcake.engine.rbac.settings import refuse_unenforced_rbac
from poundcake.engine.rules.process import RulesEngine, RulesEngineSettings
from poundcake.engine.runtime import EngineRuntime, make_runtime
from poundcake.engine.scheduler.process import Scheduler, SchedulerSettings
from poundcake.engine.sensors.process import SensorContainer
from poundcake.engine.timers.process import TimersEngine, TimersEngineSettings
from poundcake.engine.workflows.process import WorkflowEngine, WorkflowEngineSettings
from poundcake.logging import configure_logging

logger = logging.getLogger(__name__)

ConfigFile = Annotated[
    Path | None, typer.Option("--config-file", help="st2.conf to read (default: the usual places).")
]


# Each process's service registry group and capabilities, as StackStorm's services join.
REGISTRY: dict[str, tuple[str, dict[str, object]]] = {
    "st2scheduler": ("scheduler", {"name": "scheduler", "type": "passive"}),
    "st2actionrunner": ("actionrunner", {"name": "actionrunner", "type": "passive"}),
    "st2workflowengine": ("workflow_engine", {"name": "workflowengine", "type": "passive"}),
    "st2rulesengine": ("rulesengine", {"name": "rulesengine", "type": "passive"}),
    "st2timersengine": ("timer_engine", {"name": "timerengine", "type": "passive"}),
    "st2garbagecollector": ("garbagecollector", {"name": "garbagecollector", "type": "passive"}),
    "st2notifier": ("notifier", {"name": "notifier", "type": "passive"}),
    "st2sensorcontainer": ("sensorcontainer", {"name": "sensorcontainer", "type": "passive"}),
}


def join_registry(name: str, config: St2Config, runtime: EngineRuntime) -> None:
    """Start the coordinator; with ``[coordination] service_registry``, join the registry."""
    coordinator = runtime.coordinator()
    if not config.coordination.service_registry:
        return
    if name in REGISTRY:
        group, capabilities = REGISTRY[name]
    else:
        listener = name.removeprefix("st2")
        section = {"api": config.api, "auth": config.auth, "stream": config.stream}[listener]
        group = listener
        capabilities = {
            "name": listener,
            "listen_host": section.host,
            "listen_port": section.port,
            "type": "active",
        }
        if listener == "auth":
            capabilities["listen_ssl"] = False
    register_service(coordinator, group, capabilities)


class Service(Protocol):
    """A process body that runs until told to stop."""

    def run(self, stop: threading.Event) -> None: ...


def serve(name: str, config: St2Config, service: Service, runtime: EngineRuntime) -> None:
    """Run ``service`` until SIGTERM or SIGINT, then let it finish gracefully."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("%s received signal %s; stopping", name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logger.info("%s starting with %s", name, config.source)
    try:
        join_registry(name, config, runtime)
        service.run(stop)
    except Exception:
        logger.exception("%s stopped on an unexpected error", name)
        raise
    finally:
        runtime.close()
        logger.info("%s stopped", name)


def _runtime(config_file: Path | None, pool_size: int) -> tuple[St2Config, EngineRuntime]:
    return_large_blocks()
    config = load_st2_config(config_file)
    refuse_unenforced_rbac(config)
    configure_logging(config.log_level)
    log_unread_st2_settings(config)
    return config, make_runtime(config, pool_size=pool_size)


@handles_errors
def _scheduler(config_file: ConfigFile = None) -> None:
    """Schedule requested executions, enforce policies, abandon lost work."""
    config, runtime = _runtime(config_file, pool_size=4)
    section = config.scheduler
    settings = SchedulerSettings(
        batch_size=section.batch_size,
        sweep_interval=section.sweep_interval,
        lost_after=section.lost_after,
        unclaimed_after=section.unclaimed_after,
    )
    serve("st2scheduler", config, Scheduler(runtime, settings), runtime)


@handles_errors
def _actionrunner(config_file: ConfigFile = None) -> None:
    """Run scheduled executions through their runners."""
    config = load_st2_config(config_file)
    section = config.actionrunner
    config, runtime = _runtime(
        config_file, pool_size=section.concurrency + section.workflow_concurrency + 4
    )
    settings = ActionRunnerSettings(
        concurrency=section.concurrency,
        workflow_concurrency=section.workflow_concurrency,
        lease_seconds=section.lease_seconds,
        graceful_shutdown_seconds=section.graceful_shutdown_seconds,
        max_result_bytes=section.max_result_bytes,
    )
    serve("st2actionrunner", config, ActionRunner(runtime, settings), runtime)


@handles_errors
def _workflowengine(config_file: ConfigFile = None) -> None:
    """Start and conduct Orquesta workflows."""
    config, runtime = _runtime(config_file, pool_size=4)
    section = config.workflow_engine
    settings = WorkflowEngineSettings(
        batch_size=section.batch_size, sweep_interval=section.sweep_interval
    )
    serve("st2workflowengine", config, WorkflowEngine(runtime, settings), runtime)


@handles_errors
def _rulesengine(config_file: ConfigFile = None) -> None:
    """Evaluate rules on trigger instances and request their actions."""
    config, runtime = _runtime(config_file, pool_size=4)
    settings = RulesEngineSettings.from_section(config.rulesengine)
    serve("st2rulesengine", config, RulesEngine(runtime, settings), runtime)


@handles_errors
def _notifier(config_file: ConfigFile = None) -> None:
    """Post notify triggers of finished executions and apply their retry policies."""
    config, runtime = _runtime(config_file, pool_size=2)
    settings = NotifierSettings.from_section(config.notifier)
    serve("st2notifier", config, Notifier(runtime, settings), runtime)


@handles_errors
def _timersengine(config_file: ConfigFile = None) -> None:
    """Fire interval, date and cron timers."""
    config = load_st2_config(config_file)
    refuse_unenforced_rbac(config)
    if not config.timersengine.enable:
        configure_logging(config.log_level)
        logger.info("st2timersengine: [timersengine] enable is false; exiting")
        return
    config, runtime = _runtime(config_file, pool_size=2)
    settings = TimersEngineSettings.from_config(config.timersengine)
    serve("st2timersengine", config, TimersEngine(runtime, settings), runtime)


SensorRef = Annotated[
    str | None,
    typer.Option("--sensor-ref", help="Only run the sensor with this ref (<pack>.<class_name>)."),
]
SingleSensorMode = Annotated[
    bool,
    typer.Option(
        "--single-sensor-mode",
        help="Exit when a sensor process dies instead of restarting it (with --sensor-ref).",
    ),
]


@handles_errors
def _sensorcontainer(
    config_file: ConfigFile = None,
    sensor_ref: SensorRef = None,
    single_sensor_mode: SingleSensorMode = False,
) -> None:
    """Run every enabled sensor of every registered pack, each in its own process."""
    config, runtime = _runtime(config_file, pool_size=3)
    settings = config.sensorcontainer
    if single_sensor_mode:
        settings = settings.model_copy(update={"single_sensor_mode": True})
    if settings.single_sensor_mode and not sensor_ref:
        raise typer.BadParameter("single sensor mode needs --sensor-ref", param_hint="--sensor-ref")
    if settings.logging:
        logger.warning(
            "[sensorcontainer] logging = %s is not supported: sensor logs go to the container's "
            "log ([system] log_dir)",
            settings.logging,
        )
    container = SensorContainer(runtime, settings, sensor_ref=sensor_ref)
    serve("st2sensorcontainer", config, container, runtime)
    if container.exit_code:
        raise typer.Exit(code=container.exit_code)


@handles_errors
def _garbagecollector(config_file: ConfigFile = None) -> None:
    """Delete executions, output and trigger instances older than their retention."""
    config, runtime = _runtime(config_file, pool_size=2)
    settings = GarbageCollectorSettings.from_section(config.garbagecollector)
    serve("st2garbagecollector", config, GarbageCollector(runtime, settings), runtime)


def _listen(listener: Listener, config_file: Path | None) -> None:
    config, runtime = _runtime(config_file, pool_size=10)
    section = {"api": config.api, "auth": config.auth, "stream": config.stream}[listener]
    app = create_app(runtime, [listener])
    logger.info("st2%s listening on %s:%s", listener, section.host, section.port)
    try:
        join_registry(f"st2{listener}", config, runtime)
        uvicorn.run(
            app,
            host=section.host,
            port=section.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        runtime.close()


@handles_errors
def _api(config_file: ConfigFile = None) -> None:
    """Serve StackStorm's REST API (default port 9101)."""
    _listen("api", config_file)


@handles_errors
def _auth(config_file: ConfigFile = None) -> None:
    """Serve StackStorm's token service (default port 9100)."""
    _listen("auth", config_file)


@handles_errors
def _stream(config_file: ConfigFile = None) -> None:
    """Serve StackStorm's event stream (default port 9102)."""
    _listen("stream", config_file)


def _app(command: Callable[..., None]) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    return app


def scheduler_main() -> None:
    """Entry point of ``st2scheduler``."""
    _app(_scheduler)()


def actionrunner_main() -> None:
    """Entry point of ``st2actionrunner``."""
    _app(_actionrunner)()


def api_main() -> None:
    """Entry point of ``st2api``."""
    _app(_api)()


def auth_main() -> None:
    """Entry point of ``st2auth``."""
    _app(_auth)()


def stream_main() -> None:
    """Entry point of ``st2stream``."""
    _app(_stream)()


def workflowengine_main() -> None:
    """Entry point of ``st2workflowengine``."""
    _app(_workflowengine)()


def rulesengine_main() -> None:
    """Entry point of ``st2rulesengine``."""
    _app(_rulesengine)()


def garbagecollector_main() -> None:
    """Entry point of ``st2garbagecollector``."""
    _app(_garbagecollector)()


def sensorcontainer_main() -> None:
    """Entry point of ``st2sensorcontainer``."""
    _app(_sensorcontainer)()


def timersengine_main() -> None:
    """Entry point of ``st2timersengine``."""
    _app(_timersengine)()


def notifier_main() -> None:
    """Entry point of ``st2notifier``."""
    _app(_notifier)()
