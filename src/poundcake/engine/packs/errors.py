"""Errors in pack metadata: which field is wrong, and in which file.

Both are :class:`~poundcake.exceptions.ValidationError`: :class:`FieldError` is raised where the
file is not known (schema checks, service functions that also serve the API) and
:class:`MetadataError` once the file is known, so an operator reads one line naming both.
"""

from __future__ import annotations

from pathlib import Path

from poundcake.exceptions import ValidationError


class FieldError(ValidationError):
    """A metadata field is missing or wrong; ``field`` is its dotted path (``parameters.cmd``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class MetadataError(ValidationError):
    """A pack metadata file cannot be registered; names the file and, when known, the field."""

    def __init__(self, path: Path | str, field: str | None, problem: str) -> None:
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.field = field
        self.problem = problem

    @classmethod
    def from_field_error(cls, path: Path | str, error: FieldError) -> MetadataError:
        """Attach the file to a :class:`FieldError`."""
        return cls(path, error.field or None, error.problem)
