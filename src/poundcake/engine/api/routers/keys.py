"""``/v1/keys``: the datastore, as ``st2 key list|get|set|delete`` use it.

Scopes are ``system`` and ``user`` (or their ``st2kv.`` forms); listing also takes ``all``:
system keys plus the caller's own user keys. Naming a ``user`` implies the user scope, and
user-scoped keys default to the caller's. Secret values are encrypted at rest and come back as
ciphertext unless ``decrypt=true``. With RBAC off every caller is an administrator, so decryption
and other users' keys are open to every caller, as to StackStorm's admins. With RBAC on,
StackStorm's rules apply: a user's own user-scoped keys are theirs alone (administrators
excepted), system keys need a system role or a grant on the key, listing shows only those, and
decrypting outside the user scope, naming another user or storing pre-encrypted values needs an
administrator. A set or delete stores its ``core.st2.key_value_pair.*`` trigger instances with
the write and announces them once committed. As in StackStorm, a set or delete holds the key's
coordination lock until it commits, so concurrent writes of one key follow each other (create,
then updates).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, Runtime, paging, truthy
from poundcake.engine.coordination.service import locked
from poundcake.engine.keyvalue import service
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.scopes import (
    ALL_SCOPE,
    SYSTEM_SCOPE,
    USER_SCOPE,
    normalise_scope,
    stored_name,
)
from poundcake.engine.rbac.enforcement import AccessDeniedError, Authorizer
from poundcake.engine.rbac.resources import key_value_pair_resource
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["keys"])


def _cipher(runtime: Runtime) -> DatastoreCipher:
    return DatastoreCipher.from_key_file(runtime.config.datastore_key_path)


def _scope(scope: str | None, user: str | None, *, allow_all: bool = False) -> str:
    """StackStorm's rules: no scope means system, ``all`` means system outside listing, and
    naming a user means the user scope."""
    if user:
        return USER_SCOPE
    if not scope:
        return SYSTEM_SCOPE
    chosen = normalise_scope(scope, allow_all=True)
    if chosen == ALL_SCOPE and not allow_all:
        return SYSTEM_SCOPE
    return chosen


def _owner(scope: str, user: str | None, rbac: Authorizer) -> str | None:
    return (user or rbac.user) if scope != SYSTEM_SCOPE else None


def _require_on_key(
    rbac: Authorizer, scope: str, name: str, owner: str | None, permission_type: str
) -> None:
    """StackStorm's check on one key, by its full scope and stored name."""
    if rbac.enabled:
        resource = key_value_pair_resource(scope, stored_name(name, scope, owner))
        rbac.require_on(resource, permission_type)


def _require_decrypt(rbac: Authorizer, scope: str, decrypt: bool) -> None:
    if decrypt and scope != USER_SCOPE and not rbac.is_admin:
        raise AccessDeniedError("Decrypt option requires administrator access")


def _visible(rbac: Authorizer, item: service.KeyValue) -> bool:
    """A listed key the caller may see: user keys are already the owner's; system keys need a
    system role or a grant on the key (StackStorm's ``get_all_system_kvp_names_for_user``)."""
    if item.scope != SYSTEM_SCOPE or rbac.has_system_role:
        return True
    return rbac.has_any_grant_on(key_value_pair_resource(item.scope, item.name).uid)


def _lock_name(scope: str, name: str, owner: str | None) -> str:
    """StackStorm's ``kvp-crud-<scope>.<name>``, with the owner of a user-scoped key."""
    return f"kvp-crud-{scope}.{owner + ':' if owner else ''}{name}"


@router.get("/keys")
def list_keys(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    prefix: Annotated[str | None, Query()] = None,
    scope: Annotated[str | None, Query()] = None,
    user: Annotated[str | None, Query()] = None,
    decrypt: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Live keys whose name starts with ``prefix``, system scope first, with ``X-Total-Count``."""
    chosen = _scope(scope, user, allow_all=True)
    reveal = bool(truthy(decrypt))
    if rbac.enabled:
        _require_decrypt(rbac, chosen, reveal)
        rbac.require_admin_for_other_user(user)
    items = service.list_values(
        session,
        scope=chosen,
        user=_owner(chosen, user, rbac),
        prefix=prefix,
        decrypt=reveal,
        cipher=_cipher(runtime) if reveal else None,
    )
    if rbac.enabled:
        items = [item for item in items if _visible(rbac, item)]
    page.headers(response, len(items))
    end = None if page.limit is None else page.offset + page.limit
    return [item.to_document() for item in items[page.offset : end]]


@router.get("/keys/{name:path}")
def get_key(
    name: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    scope: Annotated[str | None, Query()] = None,
    user: Annotated[str | None, Query()] = None,
    decrypt: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One live key; 404 when it is absent or expired."""
    chosen = _scope(scope, user)
    reveal = bool(truthy(decrypt))
    owner = _owner(chosen, user, rbac)
    if rbac.enabled:
        rbac.require_admin_for_other_user(user)
        _require_on_key(rbac, chosen, name, owner, "key_value_pair_view")
        _require_decrypt(rbac, chosen, reveal)
    item = service.get_value(
        session,
        name=name,
        scope=chosen,
        user=owner,
        decrypt=reveal,
        cipher=_cipher(runtime) if reveal else None,
    )
    return item.to_document()


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(f"'{key}' must be true or false")
    return value


@router.put("/keys/{name:path}")
def set_key(
    name: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any], Body()],
    scope: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Create or replace a key (the name in the path wins over the body's)."""
    if "value" not in body or body["value"] is None:
        raise ValidationError("'value' is a required property")
    chosen = _scope(body.get("scope") or scope, None)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ValidationError("'user' must be a string")
    secret, encrypted = _flag(body, "secret"), _flag(body, "encrypted")
    fired: list[TriggerInstanceDB] = []
    owner = _owner(chosen, user, rbac)
    if rbac.enabled:
        rbac.require_admin_for_other_user(user)
        _require_on_key(rbac, chosen, name, owner, "key_value_pair_set")
        if encrypted and not rbac.is_admin:
            raise AccessDeniedError("Pre-encrypted option requires administrator access")
    with locked(runtime.coordinator(), _lock_name(chosen, name, owner)):
        item = service.set_value(
            session,
            name=name,
            value=body["value"],
            scope=chosen,
            user=owner,
            secret=secret,
            encrypted=encrypted,
            ttl=body.get("ttl"),
            cipher=_cipher(runtime) if secret or encrypted else None,
            fired=fired,
        )
        session.commit()
    announce_trigger_instances(runtime.publisher, fired)
    return item.to_document()


@router.delete("/keys/{name:path}", status_code=204)
def delete_key(
    name: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    scope: Annotated[str | None, Query()] = None,
    user: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete a live key; 404 when it is absent or expired."""
    chosen = _scope(scope, user)
    fired: list[TriggerInstanceDB] = []
    owner = _owner(chosen, user, rbac)
    if rbac.enabled:
        rbac.require_admin_for_other_user(user)
        _require_on_key(rbac, chosen, name, owner, "key_value_pair_delete")
    with locked(runtime.coordinator(), _lock_name(chosen, name, owner)):
        service.delete_value(session, name=name, scope=chosen, user=owner, fired=fired)
        session.commit()
    announce_trigger_instances(runtime.publisher, fired)
    return Response(status_code=204)
