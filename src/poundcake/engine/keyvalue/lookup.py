"""``st2kv.system.<key>`` and ``st2kv.user.<key>`` in templates, looked up when used; ``st2kv()``
in workflow expressions (:class:`ExpressionDatastore`).

A missing key renders as an empty string, as in StackStorm; dotted names (``st2kv.system.a.b``)
name the key ``a.b``; secret values render as ciphertext unless piped through ``decrypt_kv``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.scopes import SYSTEM_SCOPE, USER_SCOPE, stored_name
from poundcake.engine.keyvalue.service import get_value
from poundcake.engine.rendering import LazyValue
from poundcake.exceptions import DatabaseUnavailableError, NotFoundError


class KeyValueLookup(LazyValue):
    """One datastore key (or the start of a dotted one) in one scope."""

    def __init__(
        self,
        session: Session,
        *,
        scope: str,
        user: str | None = None,
        cipher: DatastoreCipher | None = None,
        key: str = "",
    ) -> None:
        self._session = session
        self._scope = scope
        self._user = user
        self._cipher = cipher
        self._key = key

    def __getattr__(self, name: str) -> KeyValueLookup:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> KeyValueLookup:
        key = f"{self._key}.{name}" if self._key else name
        return KeyValueLookup(
            self._session, scope=self._scope, user=self._user, cipher=self._cipher, key=key
        )

    def _lookup(self, decrypt: bool) -> Any:
        if not self._key:
            return ""
        try:
            found = get_value(
                self._session,
                name=self._key,
                scope=self._scope,
                user=self._user,
                decrypt=decrypt,
                cipher=self._cipher,
            )
        except NotFoundError:
            return ""
        return found.value

    def _resolve(self) -> Any:
        return self._lookup(decrypt=False)

    def _decrypted(self) -> Any:
        return self._lookup(decrypt=True)


def datastore_context(
    session: Session, *, user: str | None, cipher: DatastoreCipher | None
) -> dict[str, Any]:
    """The ``st2kv`` variable and the ``decrypt_kv`` helper for a render context."""
    st2kv = {
        "system": KeyValueLookup(session, scope=SYSTEM_SCOPE, cipher=cipher),
        "user": KeyValueLookup(session, scope=USER_SCOPE, user=user, cipher=cipher),
    }
    context: dict[str, Any] = {"st2kv": st2kv}
    if cipher is not None:
        context["decrypt_kv_value"] = cipher.decrypt
    return context


SYSTEM_KEY_PREFIX = "system."


class ExpressionDatastore:
    """``st2kv()`` in workflow expressions: ``system.<name>`` or the user's own ``<name>``.

    StackStorm's key lookup: a key starting with ``system.`` is read from the system scope without
    that prefix, any other from the user scope of ``user``. A missing or expired key raises
    NotFoundError with StackStorm's text; a secret is decrypted only when asked to. A database that
    fails to answer raises DatabaseUnavailableError, which expressions do not turn into a failure of
    the workflow.
    """

    def __init__(self, session: Session, *, cipher: DatastoreCipher | None) -> None:
        self._session = session
        self._cipher = cipher

    def get(self, key: str, *, user: str, decrypt: bool) -> str:
        """The value of ``key`` as ``user`` reads it."""
        if key.startswith(SYSTEM_KEY_PREFIX):
            scope, name = SYSTEM_SCOPE, key[len(SYSTEM_KEY_PREFIX) :]
        else:
            scope, name = USER_SCOPE, key
        try:
            found = get_value(
                self._session,
                name=name,
                scope=scope,
                user=user,
                decrypt=decrypt,
                cipher=self._cipher,
            )
        except NotFoundError:
            stored = stored_name(name, scope, user)
            raise NotFoundError(
                f'The key "{stored}" does not exist in the StackStorm datastore.'
            ) from None
        except sa_exc.OperationalError as error:
            # The database, not the expression, failed: the caller may retry the transition.
            raise DatabaseUnavailableError(str(error.orig)) from error
        return found.value
