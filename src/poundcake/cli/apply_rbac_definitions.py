"""``st2-apply-rbac-definitions``: load the RBAC definition files (roles, user role assignments,
group-to-role mappings) from ``<[system] base_path>/rbac`` and make the engine's tables hold
exactly them; safe to run again."""

from __future__ import annotations

from typing import Annotated

import typer

from poundcake.cli.common import St2ConfigFile, handles_errors, out, require_engine_schema
from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.rbac.definitions import load_definitions
from poundcake.engine.rbac.sync import Changes, sync_definitions

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


def _print_changes(what: str, changes: Changes, verbose: bool) -> None:
    out.print(f"{what}: {changes.summary()}")
    if verbose:
        for verb, names in (
            ("created", changes.created),
            ("updated", changes.updated),
            ("removed", changes.removed),
        ):
            for name in names:
                out.print(f"  {verb}: {name}")


@app.command()
@handles_errors
def apply_rbac_definitions(
    config_file: St2ConfigFile = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Name every role, assignment and mapping.")
    ] = False,
) -> None:
    """Apply the RBAC definitions on disk; nothing is applied if any file is invalid."""
    config = load_st2_config(config_file)
    require_engine_schema(config)
    directory = config.rbac_definitions_dir
    definitions = load_definitions(directory)
    db_engine = make_st2_engine(config, pool_size=1)
    try:
        with unit_of_work(make_session_factory(db_engine)) as session:
            report = sync_definitions(session=session, definitions=definitions)
    finally:
        db_engine.dispose()
    if not report.changed:
        out.print(
            f"RBAC definitions in {directory} are already applied "
            f"({len(definitions.roles)} roles, {len(definitions.assignments)} user "
            f"assignments, {len(definitions.mappings)} group mappings); nothing to do."
        )
        return
    out.print(f"Applied RBAC definitions from {directory}.")
    _print_changes("Roles", report.roles, verbose)
    _print_changes("Role assignments", report.assignments, verbose)
    _print_changes("Group to role mappings", report.mappings, verbose)


def main() -> None:
    """Entry point of ``st2-apply-rbac-definitions``."""
    app()
