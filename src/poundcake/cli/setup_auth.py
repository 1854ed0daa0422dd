"""``st2-setup-auth``: create or update a login for the engine's auth service (install step 4)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from poundcake.cli.common import fail, handles_errors, out
from poundcake.config import load_st2_config
from poundcake.db.session import unit_of_work
from poundcake.engine.auth.users import set_password
from poundcake.engine.runtime import make_runtime

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command()
@handles_errors
def setup_auth(
    user: Annotated[str, typer.Option("--user", "-u", help="Login name.")] = "st2admin",
    password: Annotated[
        str | None,
        typer.Option("--password", "-p", help="Password (visible to ps; see --password-stdin)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config-file", help="st2.conf to read.")
    ] = None,
) -> None:
    """Create the user, or change its password; running it again changes nothing."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        fail("give the password with --password or --password-stdin")
    assert password is not None
    runtime = make_runtime(load_st2_config(config_file), pool_size=1)
    try:
        with unit_of_work(runtime.sessions) as session:
            change = set_password(session, name=user, password=password)
    finally:
        runtime.close()
    if change.created:
        out.print(f"User {user!r} created.")
    elif change.changed:
        out.print(f"Password of {user!r} changed.")
    else:
        out.print(f"User {user!r} already has this password; nothing to do.")


def main() -> None:
    """Entry point of ``st2-setup-auth``."""
    app()
