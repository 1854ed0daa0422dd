"""Typed reading of one metadata document: every problem names the field it is in."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.schema import type_name


class Fields:
    """The fields of one mapping from a metadata file, read with their expected types."""

    def __init__(self, document: Mapping[str, Any], prefix: str = "") -> None:
        self.document = document
        self.prefix = prefix

    def where(self, name: str) -> str:
        """Return the dotted path of field ``name``."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def only(self, allowed: Collection[str]) -> None:
        """Refuse fields outside ``allowed``, as StackStorm's API schemas do."""
        unknown = sorted(str(key) for key in self.document if key not in allowed)
        if unknown:
            raise FieldError(self.where(unknown[0]), "is not a known field here")

    def required_string(self, name: str) -> str:
        """Return a string field that must be present and non-empty."""
        value = self.document.get(name)
        if value is None or value == "":
            raise FieldError(self.where(name), "is required")
        if not isinstance(value, str):
            raise FieldError(self.where(name), f"must be a string, not {type_name(value)}")
        return value

    def optional_string(self, name: str) -> str | None:
        """Return a string field, or None when it is absent or null."""
        value = self.document.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise FieldError(self.where(name), f"must be a string, not {type_name(value)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """Return a boolean field, or ``default`` when it is absent or null."""
        value = self.document.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise FieldError(self.where(name), f"must be true or false, not {value!r}")
        return value

    def number(self, name: str) -> float | int | None:
        """Return a numeric field, or None when it is absent or null."""
        value = self.document.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(self.where(name), f"must be a number, not {type_name(value)}")
        return value

    def mapping(self, name: str, *, required: bool = False) -> dict[str, Any]:
        """Return a mapping field, or ``{}`` when it is absent or null (unless required)."""
        value = self.document.get(name)
        if value is None:
            if required:
                raise FieldError(self.where(name), "is required")
            return {}
        if not isinstance(value, Mapping):
            raise FieldError(self.where(name), f"must be a mapping, not {type_name(value)}")
        return dict(value)

    def nested(self, name: str, *, required: bool = False) -> Fields:
        """Return the fields of a nested mapping."""
        return Fields(self.mapping(name, required=required), self.where(name))

    def string_list(self, name: str, *, max_length: int | None = None) -> list[str]:
        """Return a list of strings, or ``[]`` when it is absent or null."""
        values = self.array(name)
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise FieldError(
                    f"{self.where(name)}.{index}", f"must be a string, not {type_name(value)}"
                )
            if max_length is not None and len(value) > max_length:
                raise FieldError(
                    f"{self.where(name)}.{index}", f"is longer than {max_length} characters"
                )
        return values

    def mapping_list(self, name: str) -> list[dict[str, Any]]:
        """Return a list of mappings, or ``[]`` when it is absent or null."""
        values = self.array(name)
        for index, value in enumerate(values):
            if not isinstance(value, Mapping):
                raise FieldError(
                    f"{self.where(name)}.{index}", f"must be a mapping, not {type_name(value)}"
                )
        return [dict(value) for value in values]

    def array(self, name: str) -> list[Any]:
        """Return a list field, or ``[]`` when it is absent or null."""
        value = self.document.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise FieldError(self.where(name), f"must be a list, not {type_name(value)}")
        return list(value)
