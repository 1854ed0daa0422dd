"""The ``key_value_pair_db`` table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, MediumText, UTCDateTime


class KeyValuePairDB(Base):
    """A datastore value; user-scoped names are stored as ``<user>:<name>``."""

    __tablename__ = "key_value_pair_db"
    __table_args__ = (sa.UniqueConstraint("scope", "name"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(768))
    # Case-sensitive names, as StackStorm's: a binary collation on MariaDB.
    name: Mapped[str] = mapped_column(
        sa.String(512).with_variant(mysql.VARCHAR(512, collation="utf8mb4_bin"), "mysql", "mariadb")
    )
    scope: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[str] = mapped_column(MediumText())
    secret: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    encrypted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    expire_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    user: Mapped[str | None] = mapped_column(sa.String(255))
