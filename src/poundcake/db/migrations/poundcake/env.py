"""Alembic environment: runs on the connection that :mod:`poundcake.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=config.attributes["version_table"],
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
