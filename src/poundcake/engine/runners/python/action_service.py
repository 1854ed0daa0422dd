"""``self.action_service`` of a Python action, as StackStorm 3.9's python runner gives it.

The datastore methods behave as StackStorm's ``ActionDatastoreService`` does (names local to
``<pack>.<ActionClass>:`` unless ``local=False``, values stored as text, a ``ttl`` of 0 meaning
none, ``list_values`` items with attribute access), and also accept ``scope="user"``, which
StackStorm's action service refuses. The database is reached directly (StackStorm goes through its
API with a temporary token) and only on first use, so an action that never touches the datastore
needs no database and imports none of the engine's database libraries, whose versions a pack's
virtualenv may pin differently.

``get_api_client()`` is StackStorm's: st2client's ``Client`` for the API with the run's token,
when st2client can be imported (the pack's virtualenv lists it); without st2client it offers
``webhooks.post_generic_webhook`` only and refuses any other resource by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from poundcake.config import St2Config
    from poundcake.engine.keyvalue.datastore import SessionDatastore
    from poundcake.engine.messaging import Publisher

SYSTEM_SCOPE = "system"


@dataclass(frozen=True)
class ApiAccess:
    """The API address and the run's token (``ST2_ACTION_API_URL``, ``ST2_ACTION_AUTH_TOKEN``)."""

    url: str
    token: str = field(repr=False)


class KeyValuePair(dict[str, Any]):
    """A datastore item as ``list_values`` returns it: read ``item.name`` or ``item["name"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<KeyValuePair name={self.get('name')},value={self.get('value')}>"


class DatastoreService:
    """Datastore access for one pack's class (action or sensor), acting for ``user``."""

    def __init__(
        self,
        *,
        pack: str,
        class_name: str,
        user: str,
        api: ApiAccess | None = None,
    ) -> None:
        self._pack = pack
        self._class_name = class_name
        self._user = user
        self._api = api
        self._client: Any = None
        self._config: St2Config | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._datastore: SessionDatastore | None = None
        self._publisher: Publisher | None = None

    def _connect(self) -> tuple[sessionmaker[Session], Publisher]:
        """Open the database and broker connections on first use."""
        if self._sessions is None or self._publisher is None:
            from poundcake.config import load_st2_config
            from poundcake.db.engine import make_st2_engine
            from poundcake.db.session import make_session_factory
            from poundcake.engine.messaging import Publisher

            self._config = load_st2_config()
            self._engine = make_st2_engine(self._config, pool_size=1)
            self._publisher = Publisher(self._config.messaging_url)
            self._sessions = make_session_factory(self._engine)
        return self._sessions, self._publisher

    def _store(self) -> SessionDatastore:
        if self._datastore is None:
            from poundcake.engine.keyvalue.crypto import key_path_from_config
            from poundcake.engine.keyvalue.datastore import SessionDatastore

            sessions, publisher = self._connect()
            assert self._config is not None  # set by _connect
            self._datastore = SessionDatastore(
                sessions,
                key_path=key_path_from_config(self._config),
                user=self._user,
                local_prefix=f"{self._pack}.{self._class_name}",
                publisher=publisher,
            )
        return self._datastore

    def get_api_client(self) -> Any:
        """StackStorm's API client with this run's token, or, without st2client, the part of it
        packs use from an action: ``webhooks.post_generic_webhook`` (``core.inject_trigger``)."""
        if self._client is None:
            self._client = self._st2client() or ApiClient(self)
        return self._client

    def _st2client(self) -> Any:
        if self._api is None:
            return None
        try:
            from st2client.client import Client  # type: ignore[import-not-found]
        except ImportError:
            return None
        return Client(api_url=self._api.url, token=self._api.token)

    def get_user_info(self) -> dict[str, Any]:
        """Return who the datastore calls act for: the user who ran the execution."""
        return {
            "username": self._user,
            "authentication": {"method": "action execution", "location": "environment"},
            "rbac": {"enabled": False, "roles": [], "is_admin": True},
        }

    def list_values(
        self,
        local: bool = True,
        prefix: str | None = None,
        limit: int | None = None,
        offset: int | None = 0,
        scope: str = SYSTEM_SCOPE,
        decrypt: bool = False,
    ) -> list[KeyValuePair]:
        """List the items whose names start with ``prefix`` (within the local namespace)."""
        documents = self._store().list_values(
            local=local,
            prefix=prefix,
            limit=limit,
            offset=offset or 0,
            scope=scope,
            decrypt=decrypt,
        )
        return [KeyValuePair(document) for document in documents]

    def get_value(
        self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE, decrypt: bool = False
    ) -> str | None:
        """Return an item's value, or None when there is none."""
        return self._store().get_value(name, local=local, scope=scope, decrypt=decrypt)

    def set_value(
        self,
        name: str,
        value: Any,
        ttl: int | None = None,
        local: bool = True,
        scope: str = SYSTEM_SCOPE,
        encrypt: bool = False,
    ) -> bool:
        """Store ``str(value)``; ``encrypt`` makes it a secret, ``ttl`` (seconds) expires it."""
        return self._store().set_value(
            name, str(value), ttl=ttl or None, local=local, scope=scope, encrypt=encrypt
        )

    def delete_value(self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE) -> bool:
        """Delete an item; False when there was none."""
        return self._store().delete_value(name, local=local, scope=scope)

    def close(self) -> None:
        """Release the database and broker connections, if any were opened."""
        if self._publisher is not None:
            self._publisher.close()
        if self._engine is not None:
            self._engine.dispose()


class ActionService(DatastoreService):
    """What ``self.action_service`` offers: the datastore methods, ``get_user_info`` and
    ``datastore_service``."""

    def __init__(
        self,
        *,
        pack: str,
        class_name: str,
        user: str,
        log_level: str,
        api: ApiAccess | None = None,
    ) -> None:
        super().__init__(pack=pack, class_name=class_name, user=user, api=api)
        # Read by StackStorm's Action base class through ``_action_wrapper``.
        self._log_level = log_level
        self._action_wrapper = self

    @property
    def datastore_service(self) -> DatastoreService:
        """The datastore service itself, as StackStorm exposes it."""
        return self


class WebhooksClient:
    """``client.webhooks`` of StackStorm's API client: posting to the generic webhook."""

    def __init__(self, service: DatastoreService) -> None:
        self._service = service

    def post_generic_webhook(
        self, trigger: str, payload: Any = None, trace_tag: str | None = None
    ) -> dict[str, Any]:
        """Store an instance of ``trigger`` as ``POST /v1/webhooks/st2`` does and return the
        body that endpoint echoes. ``trace_tag`` is accepted and not kept (there are no traces)."""
        from poundcake.engine.triggers.instances import announce_trigger_instances
        from poundcake.engine.webhooks.service import dispatch_generic

        body = {"trigger": trigger, "payload": payload or {}}
        sessions, publisher = self._service._connect()
        with sessions() as session:
            instance = dispatch_generic(session=session, body=body)
            session.commit()
        announce_trigger_instances(publisher, [instance])
        return body


class ApiClient:
    """What ``get_api_client()`` returns when st2client cannot be imported: only
    ``webhooks.post_generic_webhook``; any other resource is refused by name rather than
    missing silently."""

    def __init__(self, service: DatastoreService) -> None:
        self.webhooks = WebhooksClient(service)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"client.{name} needs st2client: list it in the pack's requirements.txt for "
            "StackStorm's whole API client; without it an action's API client has only "
            "webhooks.post_generic_webhook"
        )
