"""``poundcake breaker status|reset``: the storm breakers and blast radius scopes of the guards.

They read and write the database directly, as the other operator commands do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from poundcake.cli.common import fail, handles_errors, out
from poundcake.config import load_poundcake_config, load_settings
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.retry import in_transaction
from poundcake.db.session import make_session_factory
from poundcake.remediation.guards.breaker import breaker_states, reset_breakers

breaker_app = typer.Typer(
    no_args_is_help=True, help="Storm breakers: which are open, and closing them by hand."
)

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]


@breaker_app.command("status")
@handles_errors
def breaker_status(
    as_json: Annotated[bool, typer.Option("--json", "-j", help="Print JSON.")] = False,
    env_file: EnvFile = None,
) -> None:
    """Every breaker scope that tripped: open or closed, when, how often and why."""
    config = load_poundcake_config(load_settings(env_file))
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        with make_session_factory(db_engine)() as session:
            states = breaker_states(session, quiet_seconds=config.settings.breaker_quiet_seconds)
    finally:
        db_engine.dispose()
    documents = [state.document() for state in states]
    if as_json:
        out.print(json.dumps(documents, indent=2), markup=False)
        return
    table = Table("scope", "state", "opened", "last trip", "trips", "reason")
    for document in documents:
        table.add_row(
            document["scope"],
            document["state"],
            document["opened_at"] or "",
            document["tripped_at"] or "",
            str(document["trips"]),
            document["reason"] or "",
        )
    out.print(table)
    opened = sum(1 for state in states if state.open)
    out.print(f"{opened} open of {len(states)} breaker(s)")


@breaker_app.command("reset")
@handles_errors
def breaker_reset(
    scope: Annotated[
        str | None, typer.Argument(help="One scope (global, cab:<name>, blast:<cab>:<group>).")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Reset every breaker.")] = False,
    env_file: EnvFile = None,
) -> None:
    """Close a breaker now: counting restarts from now, so dispatch resumes."""
    if (scope is None) == (not every):
        fail("name one SCOPE, or give --all")
    config = load_poundcake_config(load_settings(env_file))
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        sessions = make_session_factory(db_engine)
        reset = in_transaction(sessions, lambda session: reset_breakers(session, scope))
    finally:
        db_engine.dispose()
    if scope is not None and not reset:
        fail(f'no breaker "{scope}" (see `poundcake breaker status`)')
    out.print(f"Reset {len(reset)} breaker(s): {', '.join(reset) or 'none'}")


def add_guard_commands(app: typer.Typer) -> None:
    """Add ``breaker`` to the ``poundcake`` command."""
    app.add_typer(breaker_app, name="breaker")
