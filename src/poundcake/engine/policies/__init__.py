"""Policies: per-action rules the scheduler enforces, such as ``action.concurrency``."""
