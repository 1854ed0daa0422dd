"""Executions: the lifecycle of running one action, its live work item and its output."""
