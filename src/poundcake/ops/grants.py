"""The least-privilege MariaDB users the services run as (install guide, Security section).

PoundCake's user may read and write its own ``poundcake_*`` tables and only read the engine's:
it reaches the engine through the engine's HTTP API (trigger instances, rules, actions), never
by writing engine tables. The engine's user may read and write the engine's tables and only
read ``poundcake_alerts`` and ``poundcake_api_calls``. Neither gets DDL rights: the schemas are
created and migrated by an administrator (``st2-setup-db``, ``poundcake db init``), and foreign
keys need no REFERENCES privilege at run time (MariaDB checks it only when a key is created,
and cascades run inside InnoDB without privilege checks). With two databases the grants are
per database; with one shared database they are per table.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import URL

from poundcake.config import DatabaseTarget, PoundCakeConfig
from poundcake.db.engine import check_connection, make_engine
from poundcake.db.naming import ENGINE_TABLE_NAMES, engine_version_table
from poundcake.engine.coordination.tables import TABLES as COORDINATION_TABLES
from poundcake.exceptions import SchemaError, ValidationError
from poundcake.ops.backup import with_credentials

READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
ENGINE_READS = ("poundcake_alerts", "poundcake_api_calls")
_USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_.%-]{1,255}$")
PASSWORD_PLACEHOLDER = "<password>"  # noqa: S105 - shown instead of a real password


@dataclass(frozen=True)
class ServiceUser:
    """One database account; ``password`` None keeps an existing account's password."""

    name: str
    host: str
    password: SecretStr | None = None
    generated: bool = False

    @property
    def account(self) -> str:
        """Return ``'name'@'host'`` for SQL."""
        return f"'{self.name}'@'{self.host}'"


@dataclass
class GrantPlan:
    """The statements that make the two users, and what they are granted on."""

    poundcake: ServiceUser
    engine: ServiceUser
    grants: list[str] = field(default_factory=list)

    def script(self) -> list[str]:
        """Return every statement as SQL text, passwords shown as a placeholder."""
        lines = []
        for user in (self.poundcake, self.engine):
            lines.append(
                f"CREATE USER IF NOT EXISTS {user.account} IDENTIFIED BY '{PASSWORD_PLACEHOLDER}'"
            )
            lines.append(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user.account}")
        return [*lines, *self.grants, "FLUSH PRIVILEGES"]


def service_user(name: str, host: str, password: str | None) -> ServiceUser:
    """Validate a user name and host; wrap the password as a secret."""
    if not _USER_NAME.match(name):
        raise ValidationError(f"invalid database user name {name!r} (letters, digits, _ . -)")
    if not _HOST_NAME.match(host):
        raise ValidationError(f"invalid database host {host!r}")
    return ServiceUser(name, host, SecretStr(password) if password else None)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _tables(target: DatabaseTarget) -> set[str]:
    database = target.database
    db_engine = make_engine(target.url, pool_size=1)
    try:
        check_connection(db_engine, target)
        with db_engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db"
                ),
                {"db": database},
            )
            return {str(row[0]) for row in rows}
    finally:
        db_engine.dispose()


def plan_grants(
    config: PoundCakeConfig,
    poundcake: ServiceUser,
    engine_user: ServiceUser,
    *,
    admin_url: URL | None = None,
) -> GrantPlan:
    """Work out the grants for the configured layout from the tables that exist now."""
    if config.database.backend == "sqlite":
        raise ValidationError(
            "the embedded SQLite database has no users; `db grants` is for MariaDB"
        )
    if (poundcake.name, poundcake.host) == (engine_user.name, engine_user.host):
        raise ValidationError("PoundCake and the engine need two different database users")
    ours = with_credentials(config.database, admin_url)
    theirs = with_credentials(config.engine_database, admin_url)
    prefix = config.engine_database.table_prefix
    poundcake_db, engine_db = ours.database, theirs.database
    poundcake_tables = sorted(t for t in _tables(ours) if t.startswith("poundcake_"))
    engine_names = {prefix + name for name in ENGINE_TABLE_NAMES} | {engine_version_table(prefix)}
    # The service registry's tables, when [coordination] url points at the engine's database.
    engine_names |= set(COORDINATION_TABLES)
    engine_tables = sorted(engine_names & _tables(theirs))
    if not poundcake_tables or not engine_tables:
        raise SchemaError(
            "the tables do not exist yet: run `st2-setup-db` and `poundcake db init` as an "
            "administrator first, then grant"
        )
    plan = GrantPlan(poundcake, engine_user)
    pc, st2 = poundcake.account, engine_user.account
    if config.engine_schema is not None:
        plan.grants += [
            f"GRANT {READ_WRITE} ON {_quote(poundcake_db)}.* TO {pc}",
            f"GRANT SELECT ON {_quote(engine_db)}.* TO {pc}",
            f"GRANT {READ_WRITE} ON {_quote(engine_db)}.* TO {st2}",
        ]
    else:
        plan.grants += [
            f"GRANT {READ_WRITE} ON {_quote(poundcake_db)}.{_quote(t)} TO {pc}"
            for t in poundcake_tables
        ]
        plan.grants += [
            f"GRANT SELECT ON {_quote(engine_db)}.{_quote(t)} TO {pc}" for t in engine_tables
        ]
        plan.grants += [
            f"GRANT {READ_WRITE} ON {_quote(engine_db)}.{_quote(t)} TO {st2}" for t in engine_tables
        ]
    plan.grants += [
        f"GRANT SELECT ON {_quote(poundcake_db)}.{_quote(t)} TO {st2}"
        for t in ENGINE_READS
        if t in poundcake_tables
    ]
    return plan


def _user_exists(connection: sa.Connection, user: ServiceUser) -> bool:
    found = connection.execute(
        sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = :name AND Host = :host"),
        {"name": user.name, "host": user.host},
    ).scalar()
    return bool(found)


def _with_password(connection: sa.Connection, user: ServiceUser) -> ServiceUser:
    if user.password is not None or _user_exists(connection, user):
        return user
    return ServiceUser(user.name, user.host, SecretStr(secrets.token_urlsafe(24)), generated=True)


def apply_grants(
    config: PoundCakeConfig, plan: GrantPlan, *, admin_url: URL | None = None
) -> GrantPlan:
    """Create the users (or reset their rights) and grant; return the plan with passwords."""
    admin = with_credentials(config.database, admin_url)
    db_engine = make_engine(admin.url, pool_size=1)
    try:
        check_connection(db_engine, admin)
        with db_engine.begin() as connection:
            users = [
                _with_password(connection, plan.poundcake),
                _with_password(connection, plan.engine),
            ]
            for user in users:
                connection.execute(sa.text(f"CREATE USER IF NOT EXISTS {user.account}"))
                if user.password is not None:
                    connection.execute(
                        sa.text(f"ALTER USER {user.account} IDENTIFIED BY :password"),
                        {"password": user.password.get_secret_value()},
                    )
                connection.execute(
                    sa.text(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user.account}")
                )
            for statement in plan.grants:
                connection.execute(sa.text(statement))
            connection.execute(sa.text("FLUSH PRIVILEGES"))
    except sa.exc.DBAPIError as error:
        raise SchemaError(f"granting as {admin.describe()} failed: {error.orig}") from None
    finally:
        db_engine.dispose()
    return GrantPlan(users[0], users[1], plan.grants)
