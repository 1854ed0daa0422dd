"""Packs, pack configs and config schemas as StackStorm API documents."""

from __future__ import annotations

from typing import Any

from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB


def pack_document(pack: PackDB) -> dict[str, Any]:
    """The Pack API document; like StackStorm, unset optional fields are left out."""
    document: dict[str, Any] = {
        "id": pack.id,
        "uid": pack.uid,
        "ref": pack.ref,
        "name": pack.name,
        "description": pack.description or "",
        "keywords": pack.keywords or [],
        "version": pack.version,
        "stackstorm_version": pack.stackstorm_version,
        "python_versions": pack.python_versions or [],
        "author": pack.author,
        "email": pack.email,
        "contributors": pack.contributors or [],
        "files": pack.files or [],
        "path": pack.path,
        "dependencies": pack.dependencies or [],
        "system": pack.system or {},
    }
    return {key: value for key, value in document.items() if value is not None}


def config_schema_document(schema: ConfigSchemaDB) -> dict[str, Any]:
    """The ConfigSchema API document."""
    return {"id": schema.id, "pack": schema.pack, "attributes": schema.attributes or {}}


def config_document(config: ConfigDB, values: dict[str, Any]) -> dict[str, Any]:
    """The Config API document with ``values`` as the caller may see them (masked or not)."""
    return {"id": config.id, "pack": config.pack, "values": values}
