"""RBAC definitions on disk: ``roles/*.yaml``, ``assignments/*.yaml`` and ``mappings/*.yaml``
under the definitions directory, read and checked as StackStorm's st2-rbac-backend does.

Every file is read and checked before anything is applied; the first problem is raised as a
:class:`MetadataError` naming the file and the field. Disabled roles and assignments
(``enabled: false``) are skipped, as in StackStorm; a mapping keeps its ``enabled`` flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from poundcake.engine.packs.errors import FieldError, MetadataError
from poundcake.engine.packs.fields import Fields
from poundcake.engine.rbac.types import (
    ALL_PERMISSION_TYPES,
    GLOBAL_PERMISSION_TYPES,
    PERMISSION_TYPES,
    SYSTEM_ROLES,
    resource_type_of_uid,
)
from poundcake.exceptions import ValidationError

T = TypeVar("T")


@dataclass(frozen=True)
class GrantDefinition:
    """Permission types on one resource (``resource_uid``), or global ones (no uid)."""

    resource_uid: str | None
    resource_type: str | None
    permission_types: tuple[str, ...]


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str | None
    grants: tuple[GrantDefinition, ...]
    source: str


@dataclass(frozen=True)
class AssignmentDefinition:
    """A user's roles from one file; ``source`` is ``assignments/<file>``, as StackStorm keeps."""

    username: str
    roles: tuple[str, ...]
    description: str | None
    source: str


@dataclass(frozen=True)
class MappingDefinition:
    group: str
    roles: tuple[str, ...]
    description: str | None
    enabled: bool
    source: str


@dataclass(frozen=True)
class Definitions:
    roles: tuple[RoleDefinition, ...]
    assignments: tuple[AssignmentDefinition, ...]
    mappings: tuple[MappingDefinition, ...]


def load_definitions(directory: Path) -> Definitions:
    """Read and check every definition file under ``directory``."""
    if not directory.is_dir():
        # Applying "no files" would remove every role a file defined: refuse instead.
        raise ValidationError(
            f"{directory}: the RBAC definitions directory does not exist (create it with "
            "roles/, assignments/ and mappings/, or set [system] base_path)"
        )
    roles = _load_all(directory, "roles", _role, key=lambda role: role.name, what="role")
    assignments = _load_all(
        directory, "assignments", _assignment, key=lambda a: a.username, what="user"
    )
    mappings = _load_all(directory, "mappings", _mapping, key=lambda m: m.group, what="group")
    known = {role.name for role in roles if role is not None} | set(SYSTEM_ROLES)
    for entry in (*assignments, *mappings):
        if entry is None:
            continue
        for index, name in enumerate(entry.roles):
            if name not in known:
                raise MetadataError(
                    directory / entry.source, f"roles.{index}", f'role "{name}" does not exist'
                )
    return Definitions(
        roles=tuple(role for role in roles if role is not None),
        assignments=tuple(a for a in assignments if a is not None),
        mappings=tuple(m for m in mappings if m is not None),
    )


def _load_all(
    directory: Path,
    folder: str,
    parse: Callable[[Fields, str], T | None],
    *,
    key: Callable[[T], str],
    what: str,
) -> list[T | None]:
    """Every ``<folder>/*.yaml`` parsed, sorted by file name; one definition per name."""
    found: list[T | None] = []
    seen: dict[str, Path] = {}
    for path in sorted((directory / folder).glob("*.yaml"), key=lambda p: p.name):
        source = f"{folder}/{path.name}"
        try:
            definition = parse(Fields(_read(path)), source)
        except FieldError as error:
            raise MetadataError.from_field_error(path, error) from None
        if definition is None:
            continue
        # MariaDB compares these names without case, so "Ops" and "ops" are one name.
        name = key(definition)
        if name.casefold() in seen:
            raise MetadataError(
                path, None, f'{what} "{name}" is already defined in {seen[name.casefold()].name}'
            )
        seen[name.casefold()] = path
        found.append(definition)
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MetadataError(path, None, f"cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise MetadataError(path, None, f"is not valid YAML: {error}") from None
    if not document:
        raise MetadataError(path, None, "is empty")
    if not isinstance(document, dict):
        raise MetadataError(path, None, "must be a mapping")
    return document


def _role(fields: Fields, source: str) -> RoleDefinition | None:
    fields.only(("name", "description", "enabled", "permission_grants"))
    name = fields.required_string("name")
    if name in SYSTEM_ROLES:
        raise FieldError("name", f'"{name}" is a system role and cannot be defined in a file')
    description = fields.optional_string("description")
    enabled = fields.boolean("enabled", True)
    grants = tuple(
        _grant(Fields(grant, f"permission_grants.{index}"))
        for index, grant in enumerate(fields.mapping_list("permission_grants"))
    )
    if not enabled:
        return None
    return RoleDefinition(name, description, grants, source)


def _grant(fields: Fields) -> GrantDefinition:
    fields.only(("resource_uid", "permission_types"))
    uid = fields.optional_string("resource_uid") or None
    types = _unique_strings(fields, "permission_types")
    resource_type = None
    if uid is not None:
        try:
            resource_type = resource_type_of_uid(uid)
        except ValueError as error:
            raise FieldError(fields.where("resource_uid"), str(error)) from None
        if resource_type not in PERMISSION_TYPES:
            raise FieldError(
                fields.where("resource_uid"),
                f'unknown resource type "{resource_type}" (known: '
                f"{', '.join(sorted(PERMISSION_TYPES))})",
            )
    for index, permission in enumerate(types):
        where = f"{fields.where('permission_types')}.{index}"
        if permission not in ALL_PERMISSION_TYPES:
            raise FieldError(where, f'unknown permission type "{permission}"')
        if resource_type is not None and permission not in PERMISSION_TYPES[resource_type]:
            raise FieldError(
                where,
                f'invalid permission type "{permission}" for resource type "{resource_type}" '
                f"(valid: {', '.join(PERMISSION_TYPES[resource_type])})",
            )
        if resource_type is None and permission not in GLOBAL_PERMISSION_TYPES:
            raise FieldError(
                where,
                f'"{permission}" needs a resource_uid; valid global permission types which '
                f"can be used without a resource id are: {', '.join(GLOBAL_PERMISSION_TYPES)}",
            )
    return GrantDefinition(uid, resource_type, types)


def _assignment(fields: Fields, source: str) -> AssignmentDefinition | None:
    fields.only(("username", "description", "enabled", "roles"))
    username = fields.required_string("username")
    description = fields.optional_string("description")
    enabled = fields.boolean("enabled", True)
    roles = _unique_strings(fields, "roles", required=True)
    return AssignmentDefinition(username, roles, description, source) if enabled else None


def _mapping(fields: Fields, source: str) -> MappingDefinition:
    fields.only(("group", "description", "enabled", "roles"))
    group = fields.required_string("group")
    description = fields.optional_string("description")
    enabled = fields.boolean("enabled", True)
    roles = _unique_strings(fields, "roles", required=True)
    return MappingDefinition(group, roles, description, enabled, source)


def _unique_strings(fields: Fields, name: str, *, required: bool = False) -> tuple[str, ...]:
    if required and fields.document.get(name) is None:
        raise FieldError(fields.where(name), "is required")
    values = fields.string_list(name, max_length=255)
    for index, value in enumerate(values):
        if value in values[:index]:
            raise FieldError(f"{fields.where(name)}.{index}", f'"{value}" is listed twice')
    return tuple(values)
