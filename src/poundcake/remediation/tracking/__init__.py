"""Tracking: links between engine executions and the alerts and requests they serve."""
