"""The ``poundcake_ui_sessions`` table: web UI logins, known only by a hash of their cookie."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import UTCDateTime


class UiSession(Base):
    """One logged-in browser: the SHA-256 of its cookie token, its user and CSRF token."""

    __tablename__ = "poundcake_ui_sessions"
    __table_args__ = MYSQL_TABLE_OPTIONS

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(255))
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
