"""Approvals: a person approves or denies a CAB's run before it starts (docs/guards.md)."""
