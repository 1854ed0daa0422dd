"""Alembic migrations: one history for the engine schema, one for PoundCake's tables."""
