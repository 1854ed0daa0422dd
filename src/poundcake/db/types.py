"""Column types used by every table: 24-hex IDs, UTC timestamps with microseconds, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

ID_LENGTH = 24


def IdType() -> sa.types.TypeEngine[str]:  # noqa: N802 - reads like a type in column definitions
    """A 24-hex identifier: CHAR(24), compared byte-wise on MariaDB."""
    variant = mysql.CHAR(ID_LENGTH, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.CHAR(ID_LENGTH).with_variant(variant, "mysql", "mariadb")


def JSONType() -> sa.types.TypeEngine[Any]:  # noqa: N802
    """A nested document (parameters, result, context, criteria...)."""
    return sa.JSON().with_variant(mysql.JSON(), "mysql", "mariadb")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A UTC timestamp with microseconds: DATETIME(6) on MariaDB; aware datetimes in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def MediumText() -> sa.types.TypeEngine[str]:  # noqa: N802
    """Text up to 16 MiB on MariaDB (plain TEXT stops at 64 KiB)."""
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
