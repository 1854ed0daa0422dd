"""Action aliases as StackStorm API documents."""

from __future__ import annotations

from typing import Any

from poundcake.engine.aliases.models import ActionAliasDB


def alias_document(alias: ActionAliasDB) -> dict[str, Any]:
    """The ActionAlias API document; empty ``ack``, ``result`` and ``extra`` are left out."""
    document: dict[str, Any] = {
        "id": alias.id,
        "uid": alias.uid,
        "ref": alias.ref,
        "name": alias.name,
        "pack": alias.pack,
        "description": alias.description,
        "enabled": alias.enabled,
        "action_ref": alias.action_ref,
        "formats": alias.formats or [],
        "ack": alias.ack,
        "result": alias.result,
        "extra": alias.extra,
        "immutable_parameters": alias.immutable_parameters,
        "metadata_file": alias.metadata_file or "",
    }
    return {key: value for key, value in document.items() if value not in (None, {})}
