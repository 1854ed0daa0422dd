"""What every command shares: one-line errors and exit codes, logging, settings."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from poundcake.config import St2Config
from poundcake.db.migrate import engine_schema_status
from poundcake.exceptions import PoundCakeError
from poundcake.logging import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# The ``--config-file`` option of the commands that read st2.conf.
St2ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config-file",
        help="st2.conf to read (default: ST2_CONFIG_PATH, /etc/st2/st2.conf, embedded).",
    ),
]


def fail(message: str, code: int = EXIT_ERROR) -> None:
    """Print one line naming the problem and exit non-zero."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def handles_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn PoundCake errors into one clear line and a non-zero exit, never a traceback."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        configure_logging("WARNING")
        try:
            return function(*args, **kwargs)
        except PoundCakeError as error:
            fail(str(error))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        raise AssertionError("unreachable")

    return wrapper


def quiet_migration_logs() -> None:
    """Keep Alembic's per-revision INFO lines out of command output."""
    logging.getLogger("alembic").setLevel(logging.WARNING)


def require_engine_schema(config: St2Config) -> None:
    """Fail unless the engine's tables are at the newest revision."""
    status = engine_schema_status(config.database)
    if not status.up_to_date:
        fail(
            f"the engine schema in {status.where} is at revision {status.current or 'none'}, "
            f"not {status.head}; run st2-setup-db first"
        )
