"""``st2kv.system.<key>`` and ``st2kv.user.<key>`` in templates, looked up when used.

A missing key renders as an empty string, as in StackStorm; dotted names (``st2kv.system.a.b``)
name the key ``a.b``; secret values render as ciphertext unless piped through ``decrypt_kv``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.scopes import SYSTEM_SCOPE, USER_SCOPE
from poundcake.engine.keyvalue.service import get_value
from poundcake.engine.rendering import LazyValue
from poundcake.exceptions import NotFoundError


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
