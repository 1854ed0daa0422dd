"""The ``inquirer`` runner: ask for a response and wait for it (``core.ask``)."""
