"""Revisions of the engine schema."""
