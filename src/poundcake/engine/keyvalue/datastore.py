"""The runners' :class:`~poundcake.engine.runners.base.Datastore` on top of the datastore service.

Each call is its own unit of work. With ``local=True`` (StackStorm's default for actions and
sensors) names are namespaced ``<pack>.<class>:<name>`` when a ``local_prefix`` is given.
User-scoped calls act for ``user``. A write's ``core.st2.key_value_pair.*`` trigger instances
commit with it and are announced through ``publisher`` when one is given (otherwise the rules
engine's poll finds them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.session import unit_of_work
from poundcake.engine.keyvalue import service
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import Publisher
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import ConflictError, NotFoundError

LOCAL_SEPARATOR = ":"


class SessionDatastore:
    """Datastore access for runners and actions, one transaction per call."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        key_path: Path | None = None,
        user: str | None = None,
        local_prefix: str | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher
        self._key_path = key_path
        self._cipher: DatastoreCipher | None = None
        self._user = user
        self._local_prefix = local_prefix

    def _cipher_or_none(self) -> DatastoreCipher | None:
        if self._cipher is None and self._key_path is not None:
            self._cipher = DatastoreCipher.from_key_file(self._key_path)
        return self._cipher

    def _announce(self, fired: list[TriggerInstanceDB]) -> None:
        if self._publisher is not None:
            announce_trigger_instances(self._publisher, fired)

    def _name(self, name: str, local: bool) -> str:
        if local and self._local_prefix:
            return f"{self._local_prefix}{LOCAL_SEPARATOR}{name}"
        return name

    def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        """Return the value, or None when the key is absent or expired."""
        cipher = self._cipher_or_none() if decrypt else None
        try:
            with unit_of_work(self._session_factory) as session:
                item = service.get_value(
                    session,
                    name=self._name(name, local),
                    scope=scope,
                    user=self._user,
                    decrypt=decrypt,
                    cipher=cipher,
                )
        except NotFoundError:
            return None
        return item.value

    def set_value(
        self,
        name: str,
        value: str,
        *,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        """Create or replace the value; ``encrypt`` stores it as a secret."""
        cipher = self._cipher_or_none() if encrypt else None
        for attempt in (1, 2):
            fired: list[TriggerInstanceDB] = []
            try:
                with unit_of_work(self._session_factory) as session:
                    service.set_value(
                        session,
                        name=self._name(name, local),
                        value=value,
                        scope=scope,
                        user=self._user,
                        secret=encrypt,
                        ttl=ttl,
                        cipher=cipher,
                        fired=fired,
                    )
                break
            except ConflictError:
                # Another writer created the key between our look-up and insert: update it.
                if attempt == 2:
                    raise
        self._announce(fired)
        return True

    def delete_value(self, name: str, *, local: bool = True, scope: str = "system") -> bool:
        """Delete the value; return False when there was none."""
        fired: list[TriggerInstanceDB] = []
        try:
            with unit_of_work(self._session_factory) as session:
                service.delete_value(
                    session, name=self._name(name, local), scope=scope, user=self._user, fired=fired
                )
        except NotFoundError:
            return False
        self._announce(fired)
        return True

    def list_values(
        self,
        *,
        local: bool = True,
        prefix: str | None = None,
        scope: str = "system",
        decrypt: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """List values as StackStorm's KeyValuePair documents."""
        full_prefix = self._name(prefix or "", local)
        cipher = self._cipher_or_none() if decrypt else None
        with unit_of_work(self._session_factory) as session:
            items = service.list_values(
                session,
                scope=scope,
                user=self._user,
                prefix=full_prefix,
                decrypt=decrypt,
                cipher=cipher,
                limit=limit,
                offset=offset,
            )
        return [item.to_document() for item in items]
