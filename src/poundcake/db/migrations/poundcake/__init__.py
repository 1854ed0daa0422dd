"""Migrations of PoundCake's tables and the extension tables that link to the engine."""
