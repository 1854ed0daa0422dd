"""Engine rows as StackStorm API documents: what executions snapshot and the API returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.runners.models import RunnerTypeDB


def isoformat(moment: datetime | None) -> str | None:
    """Format a timestamp as StackStorm does: UTC, microseconds, ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def action_document(action: ActionDB) -> dict[str, Any]:
    """The Action API document."""
    return {
        "id": action.id,
        "uid": action.uid,
        "ref": action.ref,
        "name": action.name,
        "pack": action.pack,
        "description": action.description or "",
        "enabled": action.enabled,
        "entry_point": action.entry_point or "",
        "runner_type": action.runner_type,
        "parameters": action.parameters or {},
        "output_schema": action.output_schema or {},
        "tags": action.tags or [],
        "notify": action.notify or {},
        "metadata_file": action.metadata_file or "",
    }


def runner_document(runner: RunnerTypeDB) -> dict[str, Any]:
    """The RunnerType API document."""
    return {
        "id": runner.id,
        "uid": runner.uid,
        "name": runner.name,
        "description": runner.description or "",
        "enabled": runner.enabled,
        "runner_package": runner.runner_package or runner.name,
        "runner_module": runner.runner_module or "",
        "runner_parameters": runner.runner_parameters or {},
        "output_key": runner.output_key or "",
        "output_schema": runner.output_schema or {},
    }
