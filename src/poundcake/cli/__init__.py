"""Command-line entry points: poundcake, st2-setup-db and the engine's st2ctl tools."""
