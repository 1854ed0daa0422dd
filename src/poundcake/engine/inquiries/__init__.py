"""Inquiries: executions of the ``inquirer`` runner waiting for a response (``core.ask``)."""
