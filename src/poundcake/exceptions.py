"""The one exception tree of PoundCake and its engine.

Domain code raises these; the edges (HTTP APIs, CLI commands, Celery tasks) map them to status
codes, StackStorm's ``{"faultstring": ...}`` bodies or exit codes in one place each.

    PoundCakeError
    ├── ConfigurationError          a setting is missing, malformed or points at something unusable
    ├── DatabaseError
    │   ├── DatabaseUnavailableError    the server cannot be reached or refused the login
    │   └── SchemaError                 tables are missing or at a revision this code does not know
    ├── ValidationError             input breaks a schema or a rule (HTTP 400)
    ├── AuthenticationError         missing, expired or unknown credentials (HTTP 401)
    ├── PermissionDeniedError       authenticated but not allowed (HTTP 403)
    ├── NotFoundError               the named object does not exist (HTTP 404)
    └── ConflictError               a unique name or ref is already taken (HTTP 409)
"""

from __future__ import annotations


class PoundCakeError(Exception):
    """Base of every error PoundCake raises on purpose; ``http_status`` is what an API answers."""

    http_status = 500


class ConfigurationError(PoundCakeError):
    """A configuration value is wrong; ``setting`` names it the way the operator wrote it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class DatabaseError(PoundCakeError):
    """Something is wrong with a database PoundCake or the engine uses."""


class DatabaseUnavailableError(DatabaseError):
    """The database server cannot be reached or refused the credentials."""

    http_status = 503


class SchemaError(DatabaseError):
    """Tables are missing or carry a migration revision this code does not know."""


class ValidationError(PoundCakeError):
    """Input breaks a schema or a rule."""

    http_status = 400


class AuthenticationError(PoundCakeError):
    """Credentials are missing, expired, disabled or unknown."""

    http_status = 401


class PermissionDeniedError(PoundCakeError):
    """The caller is known but not allowed to do this."""

    http_status = 403


class NotFoundError(PoundCakeError):
    """The named object does not exist."""

    http_status = 404


class ConflictError(PoundCakeError):
    """A unique name, ref or key is already taken."""

    http_status = 409
