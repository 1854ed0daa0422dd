"""Policy types and policies in the database: registration from packs, and the documents,
filters, create, update and delete of StackStorm's API (``/v1/policies``, ``/v1/policytypes``).

The engine enforces StackStorm's three policy types, ``action.concurrency`` and
``action.concurrency.attr`` (in the scheduler) and ``action.retry`` (in the notifier); a
policy's parameters are checked against its type's schema and stored with the type's defaults
filled in.

A policy created or updated through the API is checked as a pack's ``policies/*.yaml`` is: its
fields against StackStorm's ``PolicyAPI`` schema (an unknown field is refused by name), its
``policy_type`` against the registered types, and its parameters against the type's schema.
Policies of the system packs cannot be changed or deleted, as in StackStorm.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.loader import SYSTEM_PACK_REFS
from poundcake.engine.packs.resources import PolicySpec, policy_spec
from poundcake.engine.packs.schema import apply_defaults, object_schema, validate
from poundcake.engine.policies.models import PolicyDB, PolicyTypeDB
from poundcake.engine.rbac.uids import content_uid, policy_type_uid
from poundcake.exceptions import ConflictError, NotFoundError, ValidationError

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
            "uid": policy_type_uid(spec.resource_type, spec.name),
            "name": spec.name,
            "resource_type": spec.resource_type,
            "description": spec.description,
            "enabled": True,
            "module": None,
            "parameters": spec.parameters,
        }
        upsert_by_key(session, PolicyTypeDB, ("ref", spec.ref), values)
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
        "uid": content_uid("policy", spec.pack, spec.name),
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "enabled": spec.enabled,
        "resource_ref": spec.resource_ref,
        "policy_type": spec.policy_type,
        "parameters": parameters,
        "metadata_file": spec.metadata_file,
    }
    policy = upsert_by_key(session, PolicyDB, ("ref", spec.ref), values)
    logger.debug("Registered policy %s", spec.ref)
    return policy


Row = TypeVar("Row", PolicyDB, PolicyTypeDB)
POLICY_FIELDS = frozenset(
    {
        "id",
        "uid",
        "name",
        "pack",
        "ref",
        "description",
        "enabled",
        "resource_ref",
        "policy_type",
        "parameters",
        "metadata_file",
    }
)


@dataclass(frozen=True)
class PolicyFilters:
    """The list filters of ``GET /v1/policies``."""

    pack: str | None = None
    name: str | None = None
    resource_ref: str | None = None
    policy_type: str | None = None


def policy_type_document(row: PolicyTypeDB) -> dict[str, Any]:
    """A policy type in StackStorm's wire format."""
    return {
        "id": row.id,
        "uid": row.uid,
        "ref": row.ref,
        "name": row.name,
        "resource_type": row.resource_type,
        "description": row.description,
        "enabled": row.enabled,
        "module": row.module,
        "parameters": row.parameters or {},
    }


def policy_document(row: PolicyDB) -> dict[str, Any]:
    """A policy in StackStorm's wire format."""
    return {
        "id": row.id,
        "uid": row.uid,
        "ref": row.ref,
        "name": row.name,
        "pack": row.pack,
        "description": row.description,
        "enabled": row.enabled,
        "resource_ref": row.resource_ref,
        "policy_type": row.policy_type,
        "parameters": row.parameters or {},
        "metadata_file": row.metadata_file or "",
    }


def list_policy_types(
    *, session: Session, resource_type: str | None = None, name: str | None = None
) -> list[PolicyTypeDB]:
    """Policy types sorted by resource type and name."""
    query = sa.select(PolicyTypeDB).order_by(PolicyTypeDB.resource_type, PolicyTypeDB.name)
    if resource_type:
        query = query.where(PolicyTypeDB.resource_type == resource_type)
    if name:
        query = query.where(PolicyTypeDB.name == name)
    return list(session.scalars(query))


def _by_ref_or_id(session: Session, model: type[Row], ref_or_id: str, missing: str) -> Row:
    found = session.scalar(sa.select(model).where(model.ref == ref_or_id))
    found = found or session.get(model, ref_or_id)
    if found is None:
        raise NotFoundError(missing)
    return found


def find_policy_type(*, session: Session, ref_or_id: str) -> PolicyTypeDB:
    """A policy type by ref (``action.retry``) or id."""
    missing = f'PolicyType with a reference of id "{ref_or_id}" not found.'
    return _by_ref_or_id(session, PolicyTypeDB, ref_or_id, missing)


def list_policies(
    *, session: Session, filters: PolicyFilters, offset: int, limit: int | None
) -> tuple[int, list[PolicyDB]]:
    """The total matching ``filters`` and one page of them, sorted by pack and name."""
    conditions = [
        column == value
        for column, value in (
            (PolicyDB.pack, filters.pack),
            (PolicyDB.name, filters.name),
            (PolicyDB.resource_ref, filters.resource_ref),
            (PolicyDB.policy_type, filters.policy_type),
        )
        if value
    ]
    total = session.scalar(sa.select(sa.func.count()).select_from(PolicyDB).where(*conditions))
    query = sa.select(PolicyDB).where(*conditions).order_by(PolicyDB.pack, PolicyDB.name)
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return int(total or 0), list(session.scalars(query))


def find_policy(*, session: Session, ref_or_id: str) -> PolicyDB:
    """A policy by ref (``pack.name``) or id."""
    missing = f'Resource with a reference or id "{ref_or_id}" not found'
    return _by_ref_or_id(session, PolicyDB, ref_or_id, missing)


def policy_from_document(document: Mapping[str, Any], pack: str | None = None) -> PolicySpec:
    """The policy an API request describes (``pack`` when the document names none)."""
    fields = Fields(document)
    fields.only(POLICY_FIELDS)
    pack = fields.optional_string("pack") or pack
    if not pack:
        raise ValidationError("pack: is required (the pack the policy belongs to)")
    return policy_spec(fields, pack, fields.optional_string("metadata_file"))


def _refuse_system_pack(pack: str, doing: str) -> None:
    if pack in SYSTEM_PACK_REFS:
        raise ValidationError(f"Resources belonging to system level packs can't be {doing}")


def create_policy(*, session: Session, document: Mapping[str, Any]) -> PolicyDB:
    """Create a policy; a ref already taken is a conflict."""
    spec = policy_from_document(document)
    if session.scalar(sa.select(PolicyDB.id).where(PolicyDB.ref == spec.ref)) is not None:
        raise ConflictError(f'Tried to save duplicate unique keys: policy "{spec.ref}" exists')
    return register_policy(session=session, spec=spec)


def update_policy(*, session: Session, policy: PolicyDB, document: Mapping[str, Any]) -> PolicyDB:
    """Replace a policy's fields (it keeps its id); the pack defaults to its own."""
    _refuse_system_pack(policy.pack, "manipulated")
    spec = policy_from_document(document, pack=policy.pack)
    taken = session.scalar(sa.select(PolicyDB.id).where(PolicyDB.ref == spec.ref))
    if taken is not None and taken != policy.id:
        raise ConflictError(f'Tried to save duplicate unique keys: policy "{spec.ref}" exists')
    policy.ref = spec.ref
    session.flush()
    return register_policy(session=session, spec=spec)


def delete_policy(*, session: Session, policy: PolicyDB) -> None:
    """Delete a policy (not one of a system pack)."""
    _refuse_system_pack(policy.pack, "manipulated")
    session.delete(policy)
    session.flush()
