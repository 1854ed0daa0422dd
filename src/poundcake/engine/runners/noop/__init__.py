"""The ``noop`` runner: succeeds at once with an empty shell-style result."""
