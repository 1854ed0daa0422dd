"""The ``python-script`` runner: Python actions run in a subprocess of the engine's interpreter."""
