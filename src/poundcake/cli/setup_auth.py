"""``st2-setup-auth``: create or update a login for the engine's auth service (install step 4).

Run as the install guide writes it (``sudo st2-setup-auth``) on a terminal, it asks for the login
name (``st2admin`` if left empty) and the password, twice, without echoing it. Scripts give
``--user`` and ``--password`` or ``--password-stdin`` and are never asked anything; without a
terminal and without a password it fails, naming the flags.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from poundcake.cli.common import err, fail, handles_errors, out
from poundcake.config import load_st2_config
from poundcake.db.session import unit_of_work
from poundcake.engine.auth.users import set_password
from poundcake.engine.runtime import make_runtime

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


DEFAULT_USER = "st2admin"


@app.command()
@handles_errors
def setup_auth(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help=f"Login name (asked on a terminal; {DEFAULT_USER})."),
    ] = None,
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
    elif password is None and _on_terminal():
        user, password = _ask(user)
    if not password:
        fail("give the password with --password or --password-stdin, or run on a terminal")
    assert password is not None
    user = user or DEFAULT_USER
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


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _ask(user: str | None) -> tuple[str, str]:
    """The login name (unless given) and the password, typed twice, from the terminal."""
    if user is None:
        user = input(f"Login name [{DEFAULT_USER}]: ").strip() or DEFAULT_USER
    for _ in range(3):
        password = getpass.getpass(f"Password for {user}: ")
        if not password:
            err.print("The password is empty; type one.")
            continue
        if getpass.getpass("Again: ") == password:
            return user, password
        err.print("The two passwords differ; type them again.")
    fail("no password set: three attempts failed")
    raise AssertionError("unreachable")


def main() -> None:
    """Entry point of ``st2-setup-auth``."""
    app()
