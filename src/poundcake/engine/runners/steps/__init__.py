"""The ``steps`` runner: actions run in order, each result checked, stopping at the first miss."""
