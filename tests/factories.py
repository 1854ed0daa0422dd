"""Factories for rows the tests need: engine rows before packs are registered, and PoundCake's
alert episodes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.packs.models import PackDB
from poundcake.engine.policies.models import PolicyDB
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.runners.registry import runner_types
from poundcake.ids import new_id
from poundcake.remediation.alerts.models import Alert


def runner_type(session: Session, name: str) -> RunnerTypeDB:
    """Register the shipped runner type ``name`` (from its runner.yaml)."""
    spec = runner_types()[name]
    row = RunnerTypeDB(
        id=new_id(),
        uid=f"runner_type:{name}",
        name=name,
        description=spec.description,
        enabled=spec.enabled,
        runner_package=name,
        runner_module=spec.runner_module,
        runner_parameters=spec.runner_parameters,
        output_key=spec.output_key,
        output_schema=spec.output_schema,
    )
    session.add(row)
    return row


def pack(session: Session, ref: str, path: str | None = None) -> PackDB:
    """A registered pack."""
    row = PackDB(
        id=new_id(),
        uid=f"pack:{ref}",
        ref=ref,
        name=ref,
        description=f"{ref} pack",
        version="1.0.0",
        author="tests",
        path=path,
    )
    session.add(row)
    return row


def action(
    session: Session,
    ref: str,
    runner: str,
    parameters: dict[str, Any] | None = None,
    entry_point: str = "",
    enabled: bool = True,
) -> ActionDB:
    """An action of ``runner`` with StackStorm-style parameters."""
    pack_name, name = ref.split(".", 1)
    row = ActionDB(
        id=new_id(),
        uid=f"action:{pack_name}:{name}",
        ref=ref,
        name=name,
        pack=pack_name,
        description=f"test action {ref}",
        enabled=enabled,
        entry_point=entry_point,
        runner_type=runner,
        parameters=parameters or {},
    )
    session.add(row)
    return row


def concurrency_policy(
    session: Session, action_ref: str, threshold: int, behaviour: str = "delay"
) -> PolicyDB:
    """An ``action.concurrency`` policy on ``action_ref``."""
    pack_name = action_ref.split(".", 1)[0]
    name = f"{action_ref.replace('.', '_')}_concurrency"
    row = PolicyDB(
        id=new_id(),
        uid=f"policy:{pack_name}:{name}",
        ref=f"{pack_name}.{name}",
        name=name,
        pack=pack_name,
        resource_ref=action_ref,
        policy_type="action.concurrency",
        parameters={"threshold": threshold, "action": behaviour},
    )
    session.add(row)
    return row


def alert(**overrides: Any) -> Alert:
    """A firing ``DiskFull`` episode in state ``received`` (not added to any session)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": "a" * 24,
        "fingerprint": "f00d",
        "starts_at": now,
        "alert_name": "DiskFull",
        "alertmanager_status": "firing",
        "state": "received",
        "labels": {"alertname": "DiskFull"},
        "annotations": {},
        "request_id": "req-1",
        "last_request_id": "req-1",
        "request_ids": ["req-1"],
        "delivery_count": 1,
        "created_at": now,
        "updated_at": now,
    }
    return Alert(**{**values, **overrides})
