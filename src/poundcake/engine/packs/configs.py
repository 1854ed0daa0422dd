"""Pack configuration values as the API reads and sets them.

A new config is checked against the pack's ``config.schema.yaml`` (Jinja expressions such as
``{{ st2kv.system.token }}`` pass, they are rendered when an action runs), written to
``<configs_dir>/<pack>.yaml`` so that ``st2ctl reload`` keeps it, and stored with the schema's
defaults filled in, as registration stores it. Attributes the schema marks ``secret`` are masked
for callers who do not ask to see them. Functions flush; the caller commits.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.loader import CONFIG_SCHEMA_FILE
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.packs.schema import apply_defaults, object_schema, validate
from poundcake.engine.packs.service import register_config
from poundcake.exceptions import NotFoundError, ValidationError

MASK = "********"


def _not_found(pack: str) -> NotFoundError:
    return NotFoundError(f'Unable to identify resource with pack_ref "{pack}".')


def get_config_schema(session: Session, pack: str) -> ConfigSchemaDB:
    """Return the config schema of ``pack``; NotFoundError if the pack has none."""
    row = session.scalar(sa.select(ConfigSchemaDB).where(ConfigSchemaDB.pack == pack))
    if row is None:
        raise _not_found(pack)
    return row


def schema_attributes(session: Session, pack: str) -> dict[str, Any] | None:
    """Return the attributes of the pack's config schema, or None when it has no schema."""
    attributes = session.scalar(
        sa.select(ConfigSchemaDB.attributes).where(ConfigSchemaDB.pack == pack)
    )
    return dict(attributes) if attributes is not None else None


def get_config(session: Session, pack: str) -> ConfigDB:
    """Return the stored config of ``pack``; NotFoundError if it has none."""
    row = session.scalar(sa.select(ConfigDB).where(ConfigDB.pack == pack))
    if row is None:
        raise _not_found(pack)
    return row


def check_values(values: Any, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate config values against schema attributes; return them with defaults filled in."""
    if not isinstance(values, Mapping):
        raise ValidationError("A pack config must be an object of attribute names to values.")
    if attributes is None:
        return dict(values)
    schema = object_schema(attributes)
    completed = apply_defaults(dict(values), schema)
    validate(completed, schema, "", allow_templates=True)
    return dict(completed)


def _write_yaml(path: Path, values: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            yaml.safe_dump(dict(values), handle, default_flow_style=False, sort_keys=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def set_config(
    *, session: Session, pack: str, values: Any, configs_dir: Path
) -> tuple[ConfigDB, dict[str, Any] | None]:
    """Validate, write and store the config of an installed pack; return it and its schema."""
    if session.scalar(sa.select(PackDB.id).where(PackDB.ref == pack)) is None:
        raise _not_found(pack)
    attributes = schema_attributes(session, pack)
    path = configs_dir / f"{pack}.yaml"
    try:
        completed = check_values(values, attributes)
    except FieldError as error:
        raise ValidationError(
            f'Config of pack "{pack}" ({path}) does not match its {CONFIG_SCHEMA_FILE}: {error}'
        ) from None
    _write_yaml(path, values)
    return register_config(session=session, pack=pack, values=completed), attributes


def mask_secrets(values: Mapping[str, Any], attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``values`` with every attribute the schema marks ``secret`` replaced by a mask."""
    masked = dict(values)
    for name, spec in (attributes or {}).items():
        if not isinstance(spec, Mapping) or masked.get(name) is None:
            continue
        if spec.get("secret") is True:
            masked[name] = MASK
        elif isinstance(spec.get("properties"), Mapping) and isinstance(masked[name], Mapping):
            masked[name] = mask_secrets(masked[name], spec["properties"])
    return masked
