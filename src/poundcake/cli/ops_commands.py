"""``poundcake backup``, ``restore``, ``report`` and ``db grants``: operating the databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import URL

from poundcake.cli.common import err, handles_errors, out
from poundcake.config import (
    PoundCakeConfig,
    load_poundcake_config,
    load_settings,
    normalise_database_url,
)
from poundcake.ops.backup import MIB, backup
from poundcake.ops.grants import apply_grants, plan_grants, service_user
from poundcake.ops.install import TEMPLATE_USER, InstallPlan, install
from poundcake.ops.report import Report, build_report
from poundcake.ops.restore import restore

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]
AdminUrl = Annotated[
    str | None,
    typer.Option(
        "--admin-url",
        envvar="POUNDCAKE_ADMIN_DATABASE_URL",
        show_default=False,
        help="Connect as this MariaDB account (mysql+pymysql://user:password@host:port/any) "
        "instead of the configured users; the database names still come from the settings.",
    ),
]


def _config(env_file: Path | None) -> PoundCakeConfig:
    return load_poundcake_config(load_settings(env_file))


def _admin(config: PoundCakeConfig, admin_url: str | None) -> URL | None:
    if not admin_url:
        return None
    return normalise_database_url(admin_url, "--admin-url", config.settings.data_dir)


def backup_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the backup files to.")
    ] = Path(),
    env_file: EnvFile = None,
    admin_url: AdminUrl = None,
) -> None:
    """Back up PoundCake's and the engine's tables: one file per database."""
    config = _config(env_file)
    for written in backup(config, output, admin_url=_admin(config, admin_url)):
        out.print(
            f"Backed up {written.role} database {written.database} "
            f"({written.tables} tables) to {written.path}"
        )
        if written.packet_needed:
            err.print(
                f"[bold yellow]Warning:[/] restoring {escape(str(written.path))} needs the "
                f"server's max_allowed_packet at {written.packet_needed // MIB}M or more (a "
                "row's INSERT is longer than the server's setting)"
            )


def restore_command(
    files: Annotated[
        list[Path], typer.Argument(help="Backup files written by `poundcake backup`.")
    ],
    env_file: EnvFile = None,
    admin_url: AdminUrl = None,
) -> None:
    """Check backup files against the configured layout, then restore them."""
    config = _config(env_file)
    for restored in restore(config, files, admin_url=_admin(config, admin_url)):
        revisions = ", ".join(f"{side} {rev}" for side, rev in sorted(restored.revisions.items()))
        out.print(
            f"Restored {restored.path} into {restored.part.role} database "
            f"{restored.part.target.database} (schema revisions: {revisions})"
        )
    out.print("Restart the services (st2ctl restart, poundcake restart) to pick up the data.")


def _print_report(report: Report) -> None:
    databases = Table("Database", "Size (MB)", title="Database sizes")
    for size in report.databases:
        databases.add_row(size.database, f"{size.size_mb:.2f}")
    tables = Table("Database", "table_name", "Size (MB)", title="Table sizes")
    for table_size in report.tables:
        tables.add_row(table_size.database, table_size.table, f"{table_size.size_mb:.2f}")
    executions = Table(
        "date", "execution_count", "success", "failed", title="Executions, last 7 days"
    )
    for day in report.executions:
        executions.add_row(day.date, str(day.execution_count), str(day.success), str(day.failed))
    for rendered in (databases, tables, executions):
        out.print(rendered)


def report_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    env_file: EnvFile = None,
    admin_url: AdminUrl = None,
) -> None:
    """Show database and table sizes and the last 7 days of executions."""
    config = _config(env_file)
    report = build_report(config, admin_url=_admin(config, admin_url))
    if as_json:
        out.print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)


def grants_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Create the users and grant (as an administrator).")
    ] = False,
    poundcake_user: Annotated[
        str, typer.Option("--poundcake-user", help="The account poundcake-* services use.")
    ] = "poundcake",
    engine_user: Annotated[
        str, typer.Option("--engine-user", help="The account the st2* services use.")
    ] = "stackstorm",
    host: Annotated[
        str, typer.Option("--host", help="Host part of both accounts ('localhost', '10.0.%').")
    ] = "localhost",
    poundcake_password: Annotated[
        str | None,
        typer.Option(
            "--poundcake-password",
            envvar="POUNDCAKE_DB_PASSWORD",
            show_default=False,
            help="Password for PoundCake's account (generated and shown once if new and unset).",
        ),
    ] = None,
    engine_password: Annotated[
        str | None,
        typer.Option(
            "--engine-password",
            envvar="ST2_DB_PASSWORD",
            show_default=False,
            help="Password for the engine's account (generated and shown once if new and unset).",
        ),
    ] = None,
    env_file: EnvFile = None,
    admin_url: AdminUrl = None,
) -> None:
    """Print (or --apply) the least-privilege database users the services run as."""
    config = _config(env_file)
    admin = _admin(config, admin_url)
    plan = plan_grants(
        config,
        service_user(poundcake_user, host, poundcake_password),
        service_user(engine_user, host, engine_password),
        admin_url=admin,
    )
    if not apply:
        out.print("-- Run as an administrator after `st2-setup-db` and `poundcake db init`.")
        for statement in plan.script():
            out.print(f"{statement};")
        return
    applied = apply_grants(config, plan, admin_url=admin)
    for user in (applied.poundcake, applied.engine):
        out.print(f"Granted {user.account} its least-privilege rights.")
        if user.generated and user.password is not None:
            out.print(f"Generated password for {user.account}: {user.password.get_secret_value()}")


def install_command(
    create_user: Annotated[
        bool, typer.Option("--create-user", help="Create the system user if it is missing.")
    ] = False,
    user: Annotated[str, typer.Option("--user", help="The system user services run as.")] = (
        TEMPLATE_USER
    ),
    layout: Annotated[
        str,
        typer.Option(
            "--layout", help="st2.conf example: separate (two databases) or shared (st2_ prefix)."
        ),
    ] = "separate",
    enable: Annotated[
        bool, typer.Option("--enable/--no-enable", help="systemctl enable every unit.")
    ] = True,
    root: Annotated[
        Path, typer.Option("--root", help="Install under this directory instead of /.")
    ] = Path("/"),
    deploy_dir: Annotated[
        Path | None,
        typer.Option("--deploy-dir", help="deploy/ of a PoundCake checkout (default: this one's)."),
    ] = None,
) -> None:
    """Lay this host out as StackStorm's packages do: the system user, /etc/st2/st2.conf and
    /etc/poundcake/poundcake.env from the examples, /var/log/st2 and /var/run/st2, and the
    systemd units, installed and enabled. Running it again changes nothing."""
    plan = InstallPlan(
        root=root.resolve(),
        user=user,
        create_user=create_user,
        layout=layout,
        enable=enable,
        **({"deploy_dir": deploy_dir.resolve()} if deploy_dir else {}),
    )
    for line in install(plan):
        out.print(line)


def add_ops_commands(app: typer.Typer, db_app: typer.Typer) -> None:
    """Register the operations commands on ``poundcake`` and its ``db`` group."""
    app.command("backup")(handles_errors(backup_command))
    app.command("restore")(handles_errors(restore_command))
    app.command("report")(handles_errors(report_command))
    app.command("install")(handles_errors(install_command))
    db_app.command("grants")(handles_errors(grants_command))
