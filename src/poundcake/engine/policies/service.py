"""Policy types and policies in the database.

The engine enforces StackStorm's three policy types, ``action.concurrency`` and
``action.concurrency.attr`` (in the scheduler) and ``action.retry`` (in the notifier); a
policy's parameters are checked against its type's schema and stored with the type's defaults
filled in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.resources import PolicySpec
from poundcake.engine.packs.schema import apply_defaults, object_schema, validate
from poundcake.engine.policies.models import PolicyDB, PolicyTypeDB
from poundcake.ids import new_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyTypeSpec:
    """A kind of policy and the parameters a policy of that kind takes."""

    resource_type: str
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """Return ``resource_type.name`` (``action.retry``)."""
        return f"{self.resource_type}.{self.name}"


_THRESHOLD = {"description": "Concurrency threshold.", "type": "integer", "required": True}
_CONCURRENCY_ACTION = {
    "description": "Which action to perform on the execution once the concurrency threshold "
    "has been reached.",
    "type": "string",
    "enum": ["delay", "cancel"],
    "default": "delay",
}

# StackStorm's policy types (st2common/policies/meta/*.yaml), with their parameter schemas.
POLICY_TYPES: tuple[PolicyTypeSpec, ...] = (
    PolicyTypeSpec(
        resource_type="action",
        name="concurrency",
        description="Limits the concurrent executions for the action.",
        parameters={"threshold": _THRESHOLD, "action": _CONCURRENCY_ACTION},
    ),
    PolicyTypeSpec(
        resource_type="action",
        name="concurrency.attr",
        description="Limits the concurrent executions for the action by attribute(s).",
        parameters={
            "threshold": _THRESHOLD,
            "action": _CONCURRENCY_ACTION,
            "attributes": {
                "description": "List of attributes by which to limit the concurrency.",
                "type": "array",
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 1},
            },
        },
    ),
    PolicyTypeSpec(
        resource_type="action",
        name="retry",
        description="Retry (re-run) failed or timed out action.",
        parameters={
            "retry_on": {
                "type": "string",
                "description": "Condition to retry on.",
                "required": True,
                "enum": ["failure", "timeout"],
            },
            "max_retry_count": {
                "type": "integer",
                "description": "Maximum number of times to retry before giving up.",
                "required": True,
                "minimum": 1,
                "maximum": 5,
                "default": 2,
            },
            "delay": {
                "type": "number",
                "description": "Number of seconds to wait before retrying the execution.",
                "required": False,
                "minimum": 0,
                "maximum": 120,
            },
        },
    ),
)


def get_policy_type(*, session: Session, ref: str) -> PolicyTypeDB | None:
    """Return the policy type with ``ref`` (``action.retry``), if any."""
    return session.scalars(sa.select(PolicyTypeDB).where(PolicyTypeDB.ref == ref)).first()


def get_policy(*, session: Session, ref: str) -> PolicyDB | None:
    """Return the policy with ``ref`` (``pack.name``), if any."""
    return session.scalars(sa.select(PolicyDB).where(PolicyDB.ref == ref)).first()


def register_policy_types(*, session: Session) -> int:
    """Register the policy types the engine enforces; safe to repeat. Return how many."""
    for spec in POLICY_TYPES:
        values: dict[str, Any] = {
            "uid": f"policy_type:{spec.resource_type}:{spec.name}",
            "name": spec.name,
            "resource_type": spec.resource_type,
            "description": spec.description,
            "enabled": True,
            "module": None,
            "parameters": spec.parameters,
        }
        policy_type = get_policy_type(session=session, ref=spec.ref)
        if policy_type is None:
            session.add(PolicyTypeDB(id=new_id(), ref=spec.ref, **values))
        else:
            for name, value in values.items():
                setattr(policy_type, name, value)
    session.flush()
    return len(POLICY_TYPES)


def register_policy(*, session: Session, spec: PolicySpec) -> PolicyDB:
    """Create or update a policy by ref (an existing one keeps its id)."""
    policy_type = get_policy_type(session=session, ref=spec.policy_type)
    if policy_type is None:
        known = ", ".join(sorted(policy.ref for policy in POLICY_TYPES))
        raise FieldError("policy_type", f'"{spec.policy_type}" is not a policy type ({known})')
    schema = object_schema(policy_type.parameters or {}, additional=False)
    parameters = apply_defaults(spec.parameters, schema)
    validate(parameters, schema, "parameters")
    values: dict[str, Any] = {
        "uid": f"policy:{spec.pack}:{spec.name}",
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "enabled": spec.enabled,
        "resource_ref": spec.resource_ref,
        "policy_type": spec.policy_type,
        "parameters": parameters,
        "metadata_file": spec.metadata_file,
    }
    policy = get_policy(session=session, ref=spec.ref)
    if policy is None:
        policy = PolicyDB(id=new_id(), ref=spec.ref, **values)
        session.add(policy)
    else:
        for name, value in values.items():
            setattr(policy, name, value)
    session.flush()
    logger.debug("Registered policy %s", spec.ref)
    return policy
