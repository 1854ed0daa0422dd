"""``st2ctl``: manage the engine as StackStorm's ``st2ctl`` does: ``reload`` here, and
``start``, ``stop``, ``restart`` and ``status`` from :mod:`poundcake.cli.st2ctl_services`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from poundcake.cli.common import (
    St2ConfigFile,
    err,
    fail,
    handles_errors,
    out,
    quiet_migration_logs,
    require_engine_schema,
)
from poundcake.cli.st2ctl_services import add_service_commands
from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.packs.loader import ContentType
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.service import (
    PACKS_COUNT,
    REGISTRATION_ORDER,
    RegistrationReport,
    register_content,
)
from poundcake.logging import configure_logging

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Manage the StackStorm-compatible engine.",
)


@app.callback()
def st2ctl() -> None:
    """Manage the StackStorm-compatible engine."""


def _chosen_types(
    register_all: bool, flags: dict[ContentType, bool]
) -> tuple[list[ContentType], str]:
    """Return what to register, in StackStorm's order, and the flags as StackStorm echoes them."""
    if register_all:
        return list(REGISTRATION_ORDER), "--register-all"
    chosen = [content_type for content_type in REGISTRATION_ORDER if flags[content_type]]
    if not chosen:
        chosen = list(REGISTRATION_ORDER)
    return chosen, " ".join(f"--register-{content_type.value}" for content_type in chosen)


def _print_report(report: RegistrationReport, verbose: bool) -> None:
    if verbose:
        out.print(f"Registered {len(report.packs)} packs: {', '.join(report.packs)}.")
    for kind, count in report.counts.items():
        if kind != PACKS_COUNT:
            out.print(f"Registered {count} {kind}.")


@app.command()
@handles_errors
def reload(
    register_all: Annotated[
        bool, typer.Option("--register-all", help="Register all content.")
    ] = False,
    register_triggers: Annotated[
        bool, typer.Option("--register-triggers", help="Register trigger types.")
    ] = False,
    register_sensors: Annotated[
        bool, typer.Option("--register-sensors", help="Register sensors.")
    ] = False,
    register_runners: Annotated[
        bool, typer.Option("--register-runners", help="Register runner types.")
    ] = False,
    register_actions: Annotated[
        bool, typer.Option("--register-actions", help="Register actions.")
    ] = False,
    register_rules: Annotated[
        bool, typer.Option("--register-rules", help="Register rules.")
    ] = False,
    register_aliases: Annotated[
        bool, typer.Option("--register-aliases", help="Register action aliases.")
    ] = False,
    register_policies: Annotated[
        bool, typer.Option("--register-policies", help="Register policy types and policies.")
    ] = False,
    register_configs: Annotated[
        bool, typer.Option("--register-configs", help="Register pack configs.")
    ] = False,
    no_fail_on_failure: Annotated[
        bool,
        typer.Option(
            "--register-no-fail-on-failure",
            help="Exit 0 even if some content could not be registered.",
        ),
    ] = False,
    config_file: St2ConfigFile = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every registered resource.")
    ] = False,
) -> None:
    """Register packs from disk: runners, actions, rules, aliases, triggers, sensors, policies,
    configs.

    Without a --register-* option, everything is registered.

    A file that cannot be registered is reported with the field at fault; the rest registers.

    Then the command fails, unless --register-no-fail-on-failure is given.
    """
    quiet_migration_logs()
    if verbose:
        configure_logging("DEBUG")
        logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    types, flags = _chosen_types(
        register_all,
        {
            ContentType.TRIGGERS: register_triggers,
            ContentType.SENSORS: register_sensors,
            ContentType.RUNNERS: register_runners,
            ContentType.ACTIONS: register_actions,
            ContentType.RULES: register_rules,
            ContentType.ALIASES: register_aliases,
            ContentType.POLICIES: register_policies,
            ContentType.CONFIGS: register_configs,
        },
    )
    config = load_st2_config(config_file)
    require_engine_schema(config)
    locations = content_locations(config)
    source = "" if config.is_embedded else f"--config-file {config.source} "
    out.print(f"Registering content...[flags = {source}{flags}]")
    db_engine = make_st2_engine(config, pool_size=1)
    try:
        with unit_of_work(make_session_factory(db_engine)) as session:
            report = register_content(
                session=session,
                locations=locations,
                types=types,
                system_user=config.system_user,
            )
    finally:
        db_engine.dispose()
    _print_report(report, verbose)
    for warning in report.warnings:
        err.print(f"[bold yellow]Warning:[/] {escape(warning)}")
    for failure in report.failures:
        err.print(f"[bold red]Failed to register:[/] {escape(str(failure))}")
    if report.failures and not no_fail_on_failure:
        fail(f"{len(report.failures)} failure(s) while registering content")


add_service_commands(app)


def main() -> None:
    """Entry point of ``st2ctl``."""
    app()


if __name__ == "__main__":
    main()
