"""Datastore scopes and the stored names of user-scoped keys (``<user>:<name>``)."""

from __future__ import annotations

from poundcake.exceptions import ValidationError

SYSTEM_SCOPE = "st2kv.system"
USER_SCOPE = "st2kv.user"
ALL_SCOPE = "all"
USER_SEPARATOR = ":"

_SCOPES = {
    "system": SYSTEM_SCOPE,
    SYSTEM_SCOPE: SYSTEM_SCOPE,
    "user": USER_SCOPE,
    USER_SCOPE: USER_SCOPE,
}


def normalise_scope(scope: str, *, allow_all: bool = False) -> str:
    """Return the full scope name for ``system``, ``user`` or their ``st2kv.`` forms.

    ``all`` (and ``st2kv.all``) is accepted only where ``allow_all`` says so (listing).
    """
    value = scope.strip().lower()
    if allow_all and value in (ALL_SCOPE, "st2kv.all"):
        return ALL_SCOPE
    try:
        return _SCOPES[value]
    except KeyError:
        allowed = [SYSTEM_SCOPE, USER_SCOPE] + ([ALL_SCOPE] if allow_all else [])
        raise ValidationError(
            f'Invalid scope "{scope}". Allowed scopes are: {", ".join(allowed)}.'
        ) from None


def check_user(user: str | None) -> str:
    """Return ``user`` if it can own user-scoped keys; raise ValidationError otherwise."""
    if not user or not user.strip():
        raise ValidationError(f"A user is required for the {USER_SCOPE} scope.")
    if USER_SEPARATOR in user:
        raise ValidationError(f'User name "{user}" must not contain "{USER_SEPARATOR}".')
    return user


def stored_name(name: str, scope: str, user: str | None) -> str:
    """Return the name a key is stored under: ``<user>:<name>`` in the user scope."""
    if scope == USER_SCOPE:
        return f"{check_user(user)}{USER_SEPARATOR}{name}"
    return name


def split_stored_name(stored: str, scope: str) -> tuple[str, str | None]:
    """Return ``(name, user)`` for a stored name; ``user`` is None in the system scope."""
    if scope == USER_SCOPE and USER_SEPARATOR in stored:
        user, _, name = stored.partition(USER_SEPARATOR)
        return name, user
    return stored, None
