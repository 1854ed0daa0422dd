"""Entry points of PoundCake's own processes: ``poundcake-api``, ``poundcake-worker`` and
``poundcake-beat``. Each reads the settings (environment and ``.env``) once and builds its app;
SIGHUP makes each read its engine API key file again (:mod:`poundcake.ops.reload`)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn
from celery import signals as celery_signals

from poundcake.cli.common import handles_errors
from poundcake.config import (
    Settings,
    load_poundcake_config,
    load_settings,
    log_unread_env_settings,
)
from poundcake.logging import configure_logging
from poundcake.ops.reload import install_reload_handler
from poundcake.remediation.tasks.app import QUEUE, create_celery_app, make_celery
from poundcake.remediation.tasks.follow import start_stream_follower

logger = logging.getLogger(__name__)

BEAT_SCHEDULE_FILE = "celerybeat-schedule"
EXTRA_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}

Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        "-c",
        min=1,
        envvar="POUNDCAKE_WORKER_CONCURRENCY",
        help="Tasks run at once (worker processes).",
    ),
]


@handles_errors
def _api() -> None:
    """Serve PoundCake's API (Alertmanager webhook, requests, alerts) on POUNDCAKE_HOST/PORT."""
    config = load_poundcake_config()
    settings = config.settings
    configure_logging(settings.log_level)
    log_unread_env_settings()
    # Imported only here: the API's dependencies (FastAPI) are not the workers' business.
    from poundcake.remediation.api.app import create_app

    install_reload_handler("poundcake-api", settings)
    logger.info("poundcake-api listening on %s:%s", settings.host, settings.port)
    uvicorn.run(
        create_app(config),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@handles_errors
def _worker(context: typer.Context, concurrency: Concurrency = 4) -> None:
    """Run the Celery worker: deliveries, the outbox relay and the follower.

    Further options go to ``celery worker`` as they are (e.g. ``--pool solo``).
    """
    config = load_poundcake_config()
    settings = config.settings
    configure_logging(settings.log_level)
    log_unread_env_settings()
    app = create_celery_app(config)
    reload_on_sighup(settings)
    app.worker_main(
        argv=[
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={QUEUE}",
            f"--loglevel={settings.log_level.upper()}",
            "--hostname=poundcake@%h",
            "--without-gossip",
            "--without-mingle",
            *context.args,
        ]
    )


@handles_errors
def _beat(context: typer.Context) -> None:
    """Run Celery beat: the relay and the follower every two seconds.

    Its schedule file is ``<POUNDCAKE_DATA_DIR>/celerybeat-schedule``; further options go to
    ``celery beat`` as they are.
    """
    settings = load_settings()
    configure_logging(settings.log_level)
    log_unread_env_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = make_celery(settings)
    install_reload_handler("poundcake-beat", settings)
    start_stream_follower(app, settings)
    app.start(
        argv=[
            "beat",
            f"--schedule={settings.data_dir / BEAT_SCHEDULE_FILE}",
            f"--loglevel={settings.log_level.upper()}",
            *context.args,
        ]
    )


def reload_on_sighup(settings: Settings) -> None:
    """SIGHUP reloads the worker's engine API key instead of Celery's default (re-executing the
    worker), once the worker is ready. Pool processes are not signalled (billiard ends them on
    SIGHUP): their clients notice the replaced key file by themselves before each request."""

    def main_ready(**_kwargs: object) -> None:
        install_reload_handler("poundcake-worker", settings)

    celery_signals.worker_ready.connect(main_ready, weak=False)


def _typer(command: typer.models.CommandFunctionType, extra: bool = False) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(context_settings=EXTRA_ARGUMENTS if extra else None)(command)
    return app


def api_main() -> None:
    """Entry point of ``poundcake-api``."""
    _typer(_api)()


def worker_main() -> None:
    """Entry point of ``poundcake-worker``."""
    _typer(_worker, extra=True)()


def beat_main() -> None:
    """Entry point of ``poundcake-beat``."""
    _typer(_beat, extra=True)()
