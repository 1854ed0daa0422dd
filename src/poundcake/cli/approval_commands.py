"""``poundcake approvals list|approve ID|deny ID``: the approvals CABs wait for.

They read the database directly, as the other operator commands do, and answer through the
engine's inquiry (as the API does), so an approval is answered once whichever way it comes.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from poundcake.cli.common import handles_errors, out
from poundcake.config import PoundCakeConfig, load_poundcake_config, load_settings
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.retry import in_transaction
from poundcake.db.session import make_session_factory
from poundcake.remediation.approvals import service
from poundcake.remediation.approvals.inquiries import answer
from poundcake.remediation.engine_api import EngineClient

approvals_app = typer.Typer(
    no_args_is_help=True, help="Approvals: CAB runs waiting for a person; approve or deny them."
)

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]
By = Annotated[str | None, typer.Option("--by", help="Who answers (default: your login name).")]
Comment = Annotated[str | None, typer.Option("--comment", "-m", help="Why.")]


@contextmanager
def _database(env_file: Path | None) -> Iterator[tuple[PoundCakeConfig, sessionmaker[Session]]]:
    config = load_poundcake_config(load_settings(env_file))
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        yield config, make_session_factory(db_engine)
    finally:
        db_engine.dispose()


@approvals_app.command("list")
@handles_errors
def approvals_list(
    state: Annotated[
        str | None,
        typer.Option("--state", help="pending, approved, denied or expired (default: all)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", "-j", help="Print JSON.")] = False,
    env_file: EnvFile = None,
) -> None:
    """Approvals, newest first: the CAB, the alert, the state, who answered."""
    with _database(env_file) as (_config, sessions):
        items = in_transaction(
            sessions, lambda session: service.list_approvals(session, state=state)
        )
    if as_json:
        out.print(json.dumps(items, indent=2), markup=False)
        return
    table = Table("id", "cab", "alert", "state", "expires", "answered by", "inquiry")
    for item in items:
        alert = item.get("alert") or {}
        answered = f"{item['answered_by']} ({item['answered_via']})" if item["answered_by"] else ""
        table.add_row(
            str(item["id"]),
            item["cab"],
            f"{alert.get('alertname', '')} {item['alert_id']}",
            item["state"],
            item["expires_at"] or "",
            answered,
            item["inquiry_id"] or "",
        )
    out.print(table)
    pending = sum(1 for item in items if item["state"] == service.PENDING)
    out.print(f"{pending} pending of {len(items)} approval(s)")


def _answer(
    approval_id: int, approved: bool, by: str | None, comment: str | None, env_file: Path | None
) -> None:
    with _database(env_file) as (config, sessions):
        engine_api = EngineClient.from_settings(config.settings)
        try:
            document, released = answer(
                sessions,
                engine_api,
                approval_id,
                approved=approved,
                by=by or getpass.getuser(),
                via="cli",
                comment=comment,
            )
        finally:
            engine_api.close()
    if released:
        # Celery only when there is something to hand over (it is slow to import).
        from poundcake.remediation.tasks.enqueue import (
            close_enqueue,
            configure_enqueue,
            enqueue_deliveries,
        )

        configure_enqueue(config.settings)
        try:
            enqueue_deliveries(released)
        finally:
            close_enqueue()
    out.print(
        f"Approval {document['id']} {document['state']} by {document['answered_by']}: "
        f"CAB {document['cab']} for alert {document['alert_id']}"
    )


@approvals_app.command("approve")
@handles_errors
def approvals_approve(
    approval_id: Annotated[int, typer.Argument(help="The approval's id (see `list`).")],
    by: By = None,
    comment: Comment = None,
    env_file: EnvFile = None,
) -> None:
    """Approve: the CAB runs for the alert (if the other guards still let it)."""
    _answer(approval_id, True, by, comment, env_file)


@approvals_app.command("deny")
@handles_errors
def approvals_deny(
    approval_id: Annotated[int, typer.Argument(help="The approval's id (see `list`).")],
    by: By = None,
    comment: Comment = None,
    env_file: EnvFile = None,
) -> None:
    """Deny: the CAB never runs for the alert; the episode is held."""
    _answer(approval_id, False, by, comment, env_file)


def add_approval_commands(app: typer.Typer) -> None:
    """Add ``approvals`` to the ``poundcake`` command."""
    app.add_typer(approvals_app, name="approvals")
