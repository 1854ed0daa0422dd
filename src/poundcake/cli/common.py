"""What every command shares: one-line errors and exit codes, logging, settings."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from rich.console import Console
from rich.markup import escape

from poundcake.exceptions import PoundCakeError
from poundcake.logging import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
