"""Migrations of the engine schema (StackStorm-named tables)."""
