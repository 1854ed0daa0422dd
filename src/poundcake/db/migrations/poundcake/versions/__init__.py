"""Revisions of the PoundCake schema."""
