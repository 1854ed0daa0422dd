"""The datastore's triggers: ``core.st2.key_value_pair.create|update|value_change|delete``.

Every write of a key stores its trigger instances in the writer's transaction, so a rule on them
never misses a write; the caller announces them after commit
(:func:`poundcake.engine.triggers.instances.announce_trigger_instances`) and the rules engine's
poll finds any that no announcement reached. Payloads are StackStorm's: ``{"object": <key>}``,
and ``{"old_object": ..., "new_object": ...}`` for a changed value, each the key's API document
with a secret's value as ciphertext (never the plain value). A key that expires fires nothing,
as in StackStorm, where MongoDB's TTL index removes it silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from poundcake.engine.triggers.instances import create_trigger_instance
from poundcake.engine.triggers.models import TriggerInstanceDB

if TYPE_CHECKING:
    from poundcake.engine.keyvalue.service import KeyValue

CREATE_TRIGGER = "core.st2.key_value_pair.create"
UPDATE_TRIGGER = "core.st2.key_value_pair.update"
VALUE_CHANGE_TRIGGER = "core.st2.key_value_pair.value_change"
DELETE_TRIGGER = "core.st2.key_value_pair.delete"


def fire_written(
    session: Session, *, new: KeyValue, old: KeyValue | None
) -> list[TriggerInstanceDB]:
    """Store the instances of a set: ``create``, or ``update`` (and ``value_change``)."""
    if old is None:
        return [_fire(session, CREATE_TRIGGER, {"object": new.to_document()})]
    fired = [_fire(session, UPDATE_TRIGGER, {"object": new.to_document()})]
    if old.value != new.value:
        payload = {"old_object": old.to_document(), "new_object": new.to_document()}
        fired.append(_fire(session, VALUE_CHANGE_TRIGGER, payload))
    return fired


def fire_deleted(session: Session, *, old: KeyValue) -> list[TriggerInstanceDB]:
    """Store the ``delete`` instance of a deleted key."""
    return [_fire(session, DELETE_TRIGGER, {"object": old.to_document()})]


def _fire(session: Session, trigger: str, payload: Mapping[str, Any]) -> TriggerInstanceDB:
    return create_trigger_instance(session=session, trigger_ref=trigger, payload=payload)
