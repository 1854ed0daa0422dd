"""``poundcake_api_calls.duration_ms`` becomes ``DOUBLE``: a backup gives back what was stored.

A MariaDB ``FLOAT`` keeps 24 bits of mantissa, and ``mariadb-dump`` writes it with six
significant digits (27.612345678 comes back as 27.6123), so a table restored from the install
guide's ``mysqldump`` differed from the one dumped. A ``DOUBLE`` keeps a Python float whole and
is dumped with every digit it needs. SQLite stores both as an 8-byte ``REAL``: nothing changes
there.

Revision ID: 0007_poundcake
Revises: 0006_poundcake
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_poundcake"
down_revision = "0006_poundcake"
branch_labels = None
depends_on = None


def _mariadb() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if _mariadb():
        op.alter_column(
            "poundcake_api_calls",
            "duration_ms",
            existing_type=sa.Float(),
            type_=sa.Double(),
            existing_nullable=True,
        )


def downgrade() -> None:
    if _mariadb():
        op.alter_column(
            "poundcake_api_calls",
            "duration_ms",
            existing_type=sa.Double(),
            type_=sa.Float(),
            existing_nullable=True,
        )
