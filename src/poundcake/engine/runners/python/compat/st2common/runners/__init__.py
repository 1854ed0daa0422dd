"""Runner-side helpers for pack code."""
