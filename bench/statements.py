"""The services' own MariaDB user, made for a bench run, and its statement counts.

The services connect as a user of their own, so the server's
``information_schema.USER_STATISTICS`` (the ``userstat`` switch is turned on for the run and
restored after) counts their statements alone: statements, commits and rows per operation are
figures that other work on the machine does not move.
"""

from __future__ import annotations

import configparser
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.support.mariadb import admin_sql

STATEMENT_FIGURES = {
    "statements (all)": ("SELECT_COMMANDS", "UPDATE_COMMANDS", "OTHER_COMMANDS"),
    "  SELECT": ("SELECT_COMMANDS",),
    "  INSERT, UPDATE, DELETE": ("UPDATE_COMMANDS",),
    "  other (BEGIN, SET, ...)": ("OTHER_COMMANDS",),
    "commits": ("COMMIT_TRANSACTIONS",),
    "rollbacks": ("ROLLBACK_TRANSACTIONS",),
    "rows read": ("ROWS_READ",),
    "rows inserted": ("ROWS_INSERTED",),
    "rows updated": ("ROWS_UPDATED",),
}


class ServiceUser:
    """The MariaDB user the services connect as, made for the run, and its statement counts."""

    def __init__(self) -> None:
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.password = uuid.uuid4().hex
        self._userstat: str | None = None
        self.admin_config: Path | None = None

    def create(self, database: str) -> None:
        admin_sql(
            f"CREATE USER '{self.name}'@'%' IDENTIFIED BY '{self.password}'",
            f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{self.name}'@'%'",
        )
        if self._userstat is None:
            self._userstat = str(admin_sql("SELECT @@GLOBAL.userstat")[0][0])
            admin_sql("SET GLOBAL userstat = 1")

    def drop(self) -> None:
        admin_sql(f"DROP USER IF EXISTS '{self.name}'@'%'")
        if self._userstat is not None:
            admin_sql(f"SET GLOBAL userstat = {self._userstat}")

    def counts(self) -> dict[str, int]:
        """The server's counters for this user (``USER_STATISTICS``; zero before any)."""
        names = sorted({column for columns in STATEMENT_FIGURES.values() for column in columns})
        rows = admin_sql(
            f"SELECT {', '.join(names)} FROM information_schema.USER_STATISTICS "
            f"WHERE USER = '{self.name}'"
        )
        values = rows[0] if rows else (0,) * len(names)
        return {name: int(str(value)) for name, value in zip(names, values, strict=True)}


def print_statements(
    before: dict[str, int], after: dict[str, int], items: int, noun: str = "trigger instance"
) -> None:
    print(f"\nThe services' statements (MariaDB USER_STATISTICS), per {noun} ({items:,}):")
    for label, columns in STATEMENT_FIGURES.items():
        used = sum(after[column] - before[column] for column in columns)
        print(f"  {label:<26} {used:>10,}  {used / max(items, 1):>8.2f} each")


def connecting_as(user: ServiceUser, then: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """A ``service_config`` rewrite: ``then``'s st2.conf, connecting as ``user`` (made now)."""

    def rewrite(path: Path) -> Path:
        user.admin_config = path
        written = then(path)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(written)
        user.create(parser["database"]["db_name"])
        parser["database"]["username"] = user.name
        parser["database"]["password"] = user.password
        with written.open("w") as handle:
            parser.write(handle)
        return written

    return rewrite
