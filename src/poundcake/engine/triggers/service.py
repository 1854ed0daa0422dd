"""Trigger types and triggers in the database: registration, the references rules hold, and the
API's reads (by ref or id, filtered lists).

A trigger type without a ``parameters_schema`` has exactly one trigger, its "shadow", with the
same pack and name. A parameterised type (webhook, timers) gets one trigger per distinct set of
parameters, named by a uuid4 in the type's pack; rules hold it by ref and its ``ref_count`` says
how many do, so it disappears with the last rule. Webhook triggers also keep ``webhook_db`` in
step (:func:`poundcake.engine.webhooks.registry.sync_webhook`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import counted_page, find_by_ref_or_id, upsert_by_key
from poundcake.engine.packs.resources import TriggerTypeSpec
from poundcake.engine.rbac.uids import content_uid, trigger_uid
from poundcake.engine.triggers.models import TriggerDB, TriggerTypeDB
from poundcake.engine.webhooks.registry import sync_webhook
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

SYSTEM_PACK = "core"
WEBHOOK_TRIGGER_TYPE = "core.st2.webhook"
INTERVAL_TIMER_TRIGGER_TYPE = "core.st2.IntervalTimer"
DATE_TIMER_TRIGGER_TYPE = "core.st2.DateTimer"
CRON_TIMER_TRIGGER_TYPE = "core.st2.CronTimer"

_STRING_OR_INTEGER: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "integer"}]}


def _cron_field(minimum: int, maximum: int) -> dict[str, Any]:
    return {**_STRING_OR_INTEGER, "minimum": minimum, "maximum": maximum}


def _object_payload(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {} for name in names}}


TIMER_PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "executed_at": {"type": "string", "format": "date-time"},
        "schedule": {"type": "object"},
    },
}

BUILTIN_TRIGGER_TYPES: tuple[TriggerTypeSpec, ...] = (
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.webhook",
        description="A POST to /v1/webhooks/<url>; the payload is the request's body and headers.",
        parameters_schema={
            "type": "object",
            "properties": {"url": {"type": "string", "required": True}},
            "additionalProperties": False,
        },
        payload_schema={
            "type": "object",
            "properties": {
                "headers": {"type": "object"},
                "body": {"anyOf": [{"type": "array"}, {"type": "object"}]},
            },
        },
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.IntervalTimer",
        description="Fires every <delta> <unit>, for example every 30 seconds.",
        parameters_schema={
            "type": "object",
            "properties": {
                "timezone": {"type": "string"},
                "unit": {
                    "enum": ["weeks", "days", "hours", "minutes", "seconds"],
                    "required": True,
                },
                "delta": {"type": "integer", "required": True},
            },
            "additionalProperties": False,
        },
        payload_schema=TIMER_PAYLOAD_SCHEMA,
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.DateTimer",
        description="Fires once, at the given date and time.",
        parameters_schema={
            "type": "object",
            "properties": {
                "timezone": {"type": "string"},
                "date": {"type": "string", "format": "date-time", "required": True},
            },
            "additionalProperties": False,
        },
        payload_schema=TIMER_PAYLOAD_SCHEMA,
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.CronTimer",
        description="Fires whenever the time matches the given fields, as cron does.",
        parameters_schema={
            "type": "object",
            "properties": {
                "timezone": {"type": "string"},
                "year": dict(_STRING_OR_INTEGER),
                "month": _cron_field(1, 12),
                "day": _cron_field(1, 31),
                "week": _cron_field(1, 53),
                "day_of_week": _cron_field(0, 6),
                "hour": _cron_field(0, 23),
                "minute": _cron_field(0, 59),
                "second": _cron_field(0, 59),
            },
            "additionalProperties": False,
        },
        payload_schema=TIMER_PAYLOAD_SCHEMA,
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.generic.actiontrigger",
        description="An action execution finished.",
        payload_schema=_object_payload(
            "execution_id",
            "status",
            "start_timestamp",
            "action_name",
            "action_ref",
            "runner_ref",
            "parameters",
            "result",
        ),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.generic.notifytrigger",
        description="An execution's notify settings asked for a notification.",
        payload_schema=_object_payload(
            "execution_id",
            "status",
            "start_timestamp",
            "end_timestamp",
            "action_ref",
            "runner_ref",
            "channel",
            "route",
            "message",
            "data",
        ),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.action.file_written",
        description="An action's file was written to disk through the API.",
        payload_schema=_object_payload("ref", "file_path", "host_info"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.generic.inquiry",
        description="An inquiry is waiting for a response.",
        payload_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string", "required": True},
                "route": {"type": "string", "required": True},
            },
            "additionalProperties": False,
        },
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.sensor.process_spawn",
        description="A sensor process started.",
        payload_schema=_object_payload("object"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.sensor.process_exit",
        description="A sensor process stopped.",
        payload_schema=_object_payload("object"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.key_value_pair.create",
        description="A datastore item was created.",
        payload_schema=_object_payload("object"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.key_value_pair.update",
        description="A datastore item was set.",
        payload_schema=_object_payload("object"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.key_value_pair.value_change",
        description="A datastore item's value changed.",
        payload_schema=_object_payload("old_object", "new_object"),
    ),
    TriggerTypeSpec(
        pack=SYSTEM_PACK,
        name="st2.key_value_pair.delete",
        description="A datastore item was deleted.",
        payload_schema=_object_payload("object"),
    ),
)


def get_trigger_type(*, session: Session, ref: str) -> TriggerTypeDB | None:
    """Return the trigger type with ``ref`` (``pack.name``), if any."""
    return session.scalars(sa.select(TriggerTypeDB).where(TriggerTypeDB.ref == ref)).first()


def get_trigger(*, session: Session, ref: str) -> TriggerDB | None:
    """Return the trigger with ``ref``, if any."""
    return session.scalars(sa.select(TriggerDB).where(TriggerDB.ref == ref)).first()


def find_trigger(
    *, session: Session, type_ref: str, parameters: Mapping[str, Any]
) -> TriggerDB | None:
    """Return the trigger of type ``type_ref`` with exactly these parameters, if any."""
    wanted = dict(parameters)
    candidates = session.scalars(
        sa.select(TriggerDB).where(TriggerDB.type == type_ref).order_by(TriggerDB.id)
    )
    return next((trigger for trigger in candidates if (trigger.parameters or {}) == wanted), None)


def upsert_trigger_type(*, session: Session, spec: TriggerTypeSpec) -> TriggerTypeDB:
    """Create or update a trigger type by ref, and its shadow trigger if it has no parameters."""
    values: dict[str, Any] = {
        "uid": content_uid("trigger_type", spec.pack, spec.name),
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "payload_schema": spec.payload_schema,
        "parameters_schema": spec.parameters_schema,
        "tags": spec.tags,
        "metadata_file": spec.metadata_file,
    }
    trigger_type = upsert_by_key(session, TriggerTypeDB, ("ref", spec.ref), values)
    if not spec.parameters_schema:
        _ensure_shadow_trigger(session, trigger_type)
    logger.debug("Registered trigger type %s", spec.ref)
    return trigger_type


def _ensure_shadow_trigger(session: Session, trigger_type: TriggerTypeDB) -> TriggerDB:
    values: dict[str, Any] = {
        "uid": trigger_uid(trigger_type.pack, trigger_type.name, {}),
        "name": trigger_type.name,
        "pack": trigger_type.pack,
        "type": trigger_type.ref,
        "parameters": {},
        "description": trigger_type.description,
    }
    return upsert_by_key(
        session, TriggerDB, ("ref", trigger_type.ref), values, on_insert={"ref_count": 0}
    )


def register_builtin_trigger_types(*, session: Session) -> int:
    """Register the engine's own trigger types in pack ``core``; safe to repeat."""
    for spec in BUILTIN_TRIGGER_TYPES:
        upsert_trigger_type(session=session, spec=spec)
    return len(BUILTIN_TRIGGER_TYPES)


def acquire_trigger(
    *, session: Session, trigger_type: TriggerTypeDB, parameters: Mapping[str, Any]
) -> TriggerDB:
    """Return the trigger a rule on ``trigger_type`` with ``parameters`` uses, made if needed.

    A trigger with parameters counts one more reference; a shadow trigger is not counted.
    """
    trigger = find_trigger(session=session, type_ref=trigger_type.ref, parameters=parameters)
    if trigger is None and not parameters and not trigger_type.parameters_schema:
        trigger = _ensure_shadow_trigger(session, trigger_type)
    if trigger is None:
        name = str(uuid.uuid4())
        trigger = TriggerDB(
            id=new_id(),
            uid=trigger_uid(trigger_type.pack, name, parameters),
            ref=f"{trigger_type.pack}.{name}",
            name=name,
            pack=trigger_type.pack,
            type=trigger_type.ref,
            parameters=dict(parameters),
            ref_count=0,
        )
        session.add(trigger)
    if parameters:
        trigger.ref_count = (trigger.ref_count or 0) + 1
    session.flush()
    if trigger.type == WEBHOOK_TRIGGER_TYPE:
        sync_webhook(session=session, trigger=trigger)
    return trigger


def release_trigger(*, session: Session, ref: str) -> None:
    """Drop one rule's reference to a trigger; a trigger with parameters goes with the last."""
    trigger = get_trigger(session=session, ref=ref)
    if trigger is None or not trigger.parameters:
        return
    trigger.ref_count = max((trigger.ref_count or 0) - 1, 0)
    if trigger.ref_count == 0:
        session.delete(trigger)
    session.flush()
    if trigger.type == WEBHOOK_TRIGGER_TYPE:
        sync_webhook(session=session, trigger=trigger)


def find_trigger_type(*, session: Session, ref_or_id: str) -> TriggerTypeDB:
    """Return a trigger type by ref, else by id; NotFoundError otherwise."""
    return find_by_ref_or_id(session, TriggerTypeDB, ref_or_id)


def list_trigger_types(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    pack: str | None = None,
    name: str | None = None,
) -> tuple[int, list[TriggerTypeDB]]:
    """Return how many trigger types match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if pack:
        conditions.append(TriggerTypeDB.pack == pack)
    if name:
        conditions.append(TriggerTypeDB.name == name)
    order = (TriggerTypeDB.pack, TriggerTypeDB.name)
    return counted_page(session, TriggerTypeDB, conditions, order, offset, limit)


def find_trigger_by_ref_or_id(*, session: Session, ref_or_id: str) -> TriggerDB:
    """Return a trigger by ref, else by id; NotFoundError otherwise."""
    return find_by_ref_or_id(session, TriggerDB, ref_or_id)


def list_triggers(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    type_ref: str | None = None,
    pack: str | None = None,
    name: str | None = None,
) -> tuple[int, list[TriggerDB]]:
    """Return how many triggers match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if type_ref:
        conditions.append(TriggerDB.type == type_ref)
    if pack:
        conditions.append(TriggerDB.pack == pack)
    if name:
        conditions.append(TriggerDB.name == name)
    order = (TriggerDB.pack, TriggerDB.name)
    return counted_page(session, TriggerDB, conditions, order, offset, limit)
