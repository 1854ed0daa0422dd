"""Actions in the database: registering an action definition against its runner type."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.actions.models import ActionDB
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.resources import ActionSpec
from poundcake.engine.rbac.uids import content_uid
from poundcake.engine.runners.service import get_runner_type

logger = logging.getLogger(__name__)

# What an action may change about a parameter its runner already declares.
RUNNER_PARAMETER_OVERRIDABLE = frozenset(
    {"default", "description", "enum", "immutable", "required"}
)


def get_action(*, session: Session, ref: str) -> ActionDB | None:
    """Return the action with ``ref`` (``pack.name``), if any."""
    return session.scalars(sa.select(ActionDB).where(ActionDB.ref == ref)).first()


def check_runner_overrides(
    parameters: Mapping[str, Mapping[str, Any]],
    runner_parameters: Mapping[str, Mapping[str, Any]],
) -> None:
    """Apply StackStorm's rules for action parameters against the runner's; raise FieldError.

    An action may only change ``default``, ``description``, ``enum``, ``immutable`` and
    ``required`` of a runner parameter, may not override a parameter the runner declares
    immutable, must give an immutable parameter a default, and must give positional parameters
    distinct positions that follow each other. As in StackStorm, the first position need not be
    0: positions 1 and 2 are two positional arguments, in that order.
    """
    positions: dict[int, str] = {}
    for name, spec in parameters.items():
        where = f"parameters.{name}"
        runner_spec = runner_parameters.get(name)
        if runner_spec is not None:
            for attribute, value in spec.items():
                if attribute in RUNNER_PARAMETER_OVERRIDABLE or runner_spec.get(attribute) == value:
                    continue
                raise FieldError(
                    f"{where}.{attribute}",
                    f'the runner parameter "{name}" does not allow overriding "{attribute}"',
                )
        if "immutable" in spec:
            if runner_spec is not None and runner_spec.get("immutable"):
                raise FieldError(where, "is immutable in the runner and cannot be overridden")
            if "default" not in spec and "default" not in (runner_spec or {}):
                raise FieldError(where, "is immutable, so it needs a default value")
        if "position" in spec:
            position = int(spec["position"])
            if position in positions:
                raise FieldError(
                    f"{where}.position",
                    f"Parameters {name} and {positions[position]} have same position "
                    f"{position}. Position values have to be unique.",
                )
            positions[position] = name
    ordered = sorted(positions)
    if ordered and ordered != list(range(ordered[0], ordered[-1] + 1)):
        raise FieldError(
            "parameters", f"Positions supplied {ordered} for parameters are not contiguous."
        )


def register_action(*, session: Session, spec: ActionSpec) -> ActionDB:
    """Create or update an action by ref (an existing one keeps its id)."""
    runner = get_runner_type(session=session, name=spec.runner_type)
    if runner is None:
        raise FieldError("runner_type", f'runner type "{spec.runner_type}" is not registered')
    check_runner_overrides(spec.parameters, runner.runner_parameters or {})
    values: dict[str, Any] = {
        "uid": content_uid("action", spec.pack, spec.name),
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "enabled": spec.enabled,
        "entry_point": spec.entry_point,
        "runner_type": spec.runner_type,
        "parameters": spec.parameters,
        "output_schema": spec.output_schema,
        "tags": spec.tags,
        "notify": spec.notify,
        "metadata_file": spec.metadata_file,
    }
    action = upsert_by_key(session, ActionDB, ("ref", spec.ref), values)
    logger.debug("Registered action %s", spec.ref)
    return action
