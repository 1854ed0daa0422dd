"""Retention (``st2garbagecollector``): old executions, output and trigger instances, removed
in small batches."""
