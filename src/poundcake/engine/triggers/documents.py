"""Trigger types, triggers and trigger instances as StackStorm API documents."""

from __future__ import annotations

from typing import Any

from poundcake.engine.documents import isoformat
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB, TriggerTypeDB


def trigger_type_document(trigger_type: TriggerTypeDB) -> dict[str, Any]:
    """The TriggerType API document."""
    return {
        "id": trigger_type.id,
        "uid": trigger_type.uid,
        "ref": trigger_type.ref,
        "name": trigger_type.name,
        "pack": trigger_type.pack,
        "description": trigger_type.description or "",
        "payload_schema": trigger_type.payload_schema or {},
        "parameters_schema": trigger_type.parameters_schema or {},
        "tags": trigger_type.tags or [],
        "metadata_file": trigger_type.metadata_file or "",
    }


def trigger_document(trigger: TriggerDB) -> dict[str, Any]:
    """The Trigger API document (``ref_count`` stays in the database, as in StackStorm)."""
    document: dict[str, Any] = {
        "id": trigger.id,
        "uid": trigger.uid,
        "ref": trigger.ref,
        "name": trigger.name,
        "pack": trigger.pack,
        "type": trigger.type,
        "parameters": trigger.parameters or {},
    }
    if trigger.description:
        document["description"] = trigger.description
    return document


def trigger_instance_document(instance: TriggerInstanceDB) -> dict[str, Any]:
    """The TriggerInstance API document."""
    return {
        "id": instance.id,
        "trigger": instance.trigger,
        "payload": instance.payload or {},
        "occurrence_time": isoformat(instance.occurrence_time),
        "status": instance.status,
    }
