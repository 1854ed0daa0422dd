"""Runner types in the database: those ``registry.runner_types()`` finds, upserted by name."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.runners.registry import RunnerTypeSpec, runner_types

logger = logging.getLogger(__name__)


def get_runner_type(*, session: Session, name: str) -> RunnerTypeDB | None:
    """Return the registered runner type called ``name``, if any."""
    return session.scalars(sa.select(RunnerTypeDB).where(RunnerTypeDB.name == name)).first()


def upsert_runner_type(*, session: Session, spec: RunnerTypeSpec) -> RunnerTypeDB:
    """Create or update one runner type; an existing row keeps its id."""
    module, _, _class_name = spec.runner_module.partition(":")
    values: dict[str, Any] = {
        "uid": f"runner_type:{spec.name}",
        "description": spec.description,
        "enabled": spec.enabled,
        "runner_package": module.rpartition(".")[0] or module,
        "runner_module": spec.runner_module,
        "runner_parameters": spec.runner_parameters,
        "output_key": spec.output_key,
        "output_schema": spec.output_schema,
        "query_module": None,
    }
    runner = upsert_by_key(session, RunnerTypeDB, ("name", spec.name), values)
    logger.debug("Registered runner type %s", spec.name)
    return runner


def register_runner_types(*, session: Session) -> int:
    """Register every runner type shipped with the engine; return how many."""
    specs = runner_types()
    for spec in specs.values():
        upsert_runner_type(session=session, spec=spec)
    return len(specs)
