"""The key-value datastore: set, get, delete and list values in ``st2kv.system`` and ``st2kv.user``.

Every function takes the session, flushes and never commits. Names are matched exactly (case and
trailing spaces count, as in StackStorm) even where the database collation would not. A key past
its ``expire_timestamp`` behaves as absent. Secret values are stored encrypted; they come back as
ciphertext with ``encrypted=True`` unless the caller asks to decrypt. Every set and delete stores
its ``core.st2.key_value_pair.*`` trigger instances in the same transaction
(:mod:`poundcake.engine.keyvalue.triggers`) and appends them to ``fired``, for the caller to
announce after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.keyvalue.crypto import KEY_PATH_SETTING, DatastoreCipher
from poundcake.engine.keyvalue.models import KeyValuePairDB
from poundcake.engine.keyvalue.scopes import (
    ALL_SCOPE,
    SYSTEM_SCOPE,
    USER_SCOPE,
    USER_SEPARATOR,
    check_user,
    normalise_scope,
    split_stored_name,
    stored_name,
)
from poundcake.engine.keyvalue.triggers import fire_deleted, fire_written
from poundcake.engine.rbac.uids import key_value_pair_uid
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import ConfigurationError, ConflictError, NotFoundError, ValidationError
from poundcake.ids import new_id

MAX_NAME_LENGTH = 512


@dataclass(frozen=True)
class KeyValue:
    """One datastore value as callers see it: ``name`` without the user prefix."""

    id: str
    uid: str
    name: str
    scope: str
    value: str
    secret: bool
    encrypted: bool
    expire_timestamp: datetime | None
    user: str | None

    @property
    def stored_name(self) -> str:
        """Return the name in the table: ``<user>:<name>`` in the user scope."""
        return stored_name(self.name, self.scope, self.user)

    def to_document(self) -> dict[str, Any]:
        """Return StackStorm's KeyValuePair API shape."""
        document: dict[str, Any] = {
            "id": self.id,
            "uid": self.uid,
            "name": self.name,
            "scope": self.scope,
            "value": self.value,
            "secret": self.secret,
            "encrypted": self.encrypted,
        }
        if self.user is not None:
            document["user"] = self.user
        if self.expire_timestamp is not None:
            document["expire_timestamp"] = self.expire_timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return document


def _not_expired(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(KeyValuePairDB.expire_timestamp.is_(None), KeyValuePairDB.expire_timestamp > now)


def _is_live(row: KeyValuePairDB, now: datetime) -> bool:
    return row.expire_timestamp is None or row.expire_timestamp > now


def _require_cipher(cipher: DatastoreCipher | None) -> DatastoreCipher:
    if cipher is None:
        raise ConfigurationError(KEY_PATH_SETTING, "secret values need the datastore key")
    return cipher


def _view(row: KeyValuePairDB, *, decrypt: bool, cipher: DatastoreCipher | None) -> KeyValue:
    name, user = split_stored_name(row.name, row.scope)
    value, encrypted = row.value, bool(row.secret)
    if row.secret and decrypt:
        try:
            value = _require_cipher(cipher).decrypt(row.value)
        except ValidationError as error:
            raise ConfigurationError(
                KEY_PATH_SETTING, f'cannot decrypt the value of "{row.name}": {error}'
            ) from None
        encrypted = False
    return KeyValue(
        id=row.id,
        uid=row.uid,
        name=name,
        scope=row.scope,
        value=value,
        secret=bool(row.secret),
        encrypted=encrypted,
        expire_timestamp=row.expire_timestamp,
        user=user if row.scope == USER_SCOPE else row.user,
    )


def _candidates(session: Session, scope: str, stored: str) -> list[KeyValuePairDB]:
    """Rows the database considers equal to ``stored`` (its collation may ignore case)."""
    query = sa.select(KeyValuePairDB).where(
        KeyValuePairDB.scope == scope, KeyValuePairDB.name == stored
    )
    return list(session.scalars(query))


def _find(session: Session, scope: str, stored: str, now: datetime) -> KeyValuePairDB:
    for row in _candidates(session, scope, stored):
        if row.name == stored and _is_live(row, now):
            return row
    raise NotFoundError(f"KeyValuePair with name: {stored} and scope: {scope} not found in db.")


def _check_name(name: str, scope: str, user: str | None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("A key name is required.")
    stored = stored_name(name, scope, user)
    if len(stored) > MAX_NAME_LENGTH:
        raise ValidationError(f"The key name is longer than {MAX_NAME_LENGTH} characters.")
    return stored


def _check_ttl(ttl: int | None) -> None:
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise ValidationError(f"ttl must be a whole number of seconds, at least 1 (got {ttl!r}).")


def _stored_value(
    value: str, *, secret: bool, encrypted: bool, cipher: DatastoreCipher | None
) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"A datastore value must be a string (got {type(value).__name__}).")
    if encrypted:
        # Already ciphertext (an exported secret being loaded back): it must open with our key.
        _require_cipher(cipher).decrypt(value)
        return value
    if secret:
        return _require_cipher(cipher).encrypt(value)
    return value


def set_value(
    session: Session,
    *,
    name: str,
    value: str,
    scope: str = SYSTEM_SCOPE,
    user: str | None = None,
    secret: bool = False,
    encrypted: bool = False,
    ttl: int | None = None,
    cipher: DatastoreCipher | None = None,
    now: datetime | None = None,
    fired: list[TriggerInstanceDB] | None = None,
) -> KeyValue:
    """Create or replace a value; ``ttl`` seconds sets its expiry, no ttl clears it.

    ``secret`` encrypts the value; ``encrypted`` says it is already ciphertext made with our key.
    Returns the value as stored (ciphertext for secrets).
    """
    scope = normalise_scope(scope)
    stored = _check_name(name, scope, user)
    _check_ttl(ttl)
    secret = secret or encrypted
    stored_value = _stored_value(value, secret=secret, encrypted=encrypted, cipher=cipher)
    now = now or utcnow()
    row: KeyValuePairDB | None = None
    old: KeyValue | None = None
    for candidate in _candidates(session, scope, stored):
        if candidate.name == stored:
            row = candidate
            if _is_live(candidate, now):
                old = _view(candidate, decrypt=False, cipher=None)
        elif _is_live(candidate, now):
            raise ConflictError(
                f'Key "{stored}" conflicts with the existing key "{candidate.name}" in {scope} '
                "(the names differ only in case or trailing spaces)."
            )
        else:
            session.delete(candidate)
    if row is None:
        row = KeyValuePairDB(
            id=new_id(), uid=key_value_pair_uid(scope, stored), name=stored, scope=scope
        )
        session.add(row)
    row.value = stored_value
    row.secret = secret
    row.encrypted = secret
    row.expire_timestamp = now + timedelta(seconds=ttl) if ttl is not None else None
    row.user = user if scope == USER_SCOPE else None
    try:
        session.flush()
    except sa.exc.IntegrityError:
        raise ConflictError(f'Key "{stored}" in {scope} was created concurrently.') from None
    new = _view(row, decrypt=False, cipher=None)
    instances = fire_written(session, new=new, old=old)
    if fired is not None:
        fired.extend(instances)
    return new


def get_value(
    session: Session,
    *,
    name: str,
    scope: str = SYSTEM_SCOPE,
    user: str | None = None,
    decrypt: bool = False,
    cipher: DatastoreCipher | None = None,
    now: datetime | None = None,
) -> KeyValue:
    """Return one live value; raise NotFoundError if it is absent or expired."""
    scope = normalise_scope(scope)
    stored = _check_name(name, scope, user)
    row = _find(session, scope, stored, now or utcnow())
    return _view(row, decrypt=decrypt, cipher=cipher)


def delete_value(
    session: Session,
    *,
    name: str,
    scope: str = SYSTEM_SCOPE,
    user: str | None = None,
    now: datetime | None = None,
    fired: list[TriggerInstanceDB] | None = None,
) -> None:
    """Delete one live value; raise NotFoundError if it is absent or expired."""
    scope = normalise_scope(scope)
    stored = _check_name(name, scope, user)
    row = _find(session, scope, stored, now or utcnow())
    old = _view(row, decrypt=False, cipher=None)
    session.delete(row)
    session.flush()
    instances = fire_deleted(session, old=old)
    if fired is not None:
        fired.extend(instances)


def _scope_clauses(scope: str, user: str | None, prefix: str) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if scope in (SYSTEM_SCOPE, ALL_SCOPE):
        clause = KeyValuePairDB.scope == SYSTEM_SCOPE
        if prefix:
            clause = sa.and_(clause, KeyValuePairDB.name.startswith(prefix, autoescape=True))
        clauses.append(clause)
    if scope in (USER_SCOPE, ALL_SCOPE):
        clause = KeyValuePairDB.scope == USER_SCOPE
        if user is not None:
            user_prefix = f"{user}{USER_SEPARATOR}{prefix}"
            clause = sa.and_(clause, KeyValuePairDB.name.startswith(user_prefix, autoescape=True))
        clauses.append(clause)
    return clauses


def _listed(rows: Iterable[KeyValuePairDB], user: str | None, prefix: str) -> list[KeyValuePairDB]:
    """Apply the exact (case-sensitive) prefix and owner match the collation may have blurred."""
    kept = []
    for row in rows:
        name, owner = split_stored_name(row.name, row.scope)
        if not name.startswith(prefix):
            continue
        if row.scope == USER_SCOPE and user is not None and owner != user:
            continue
        kept.append(row)
    return kept


def list_values(
    session: Session,
    *,
    scope: str = SYSTEM_SCOPE,
    user: str | None = None,
    prefix: str | None = None,
    decrypt: bool = False,
    cipher: DatastoreCipher | None = None,
    limit: int | None = None,
    offset: int = 0,
    now: datetime | None = None,
) -> list[KeyValue]:
    """List live values whose name starts with ``prefix``, ordered by scope and name.

    ``scope`` may also be ``all``. In the user scope ``user`` picks one user's keys; without a
    user every user's keys are listed.
    """
    scope = normalise_scope(scope, allow_all=True)
    if user is not None:
        check_user(user)
    if (limit is not None and limit < 0) or offset < 0:
        raise ValidationError("limit and offset must not be negative.")
    prefix = prefix or ""
    query = sa.select(KeyValuePairDB).where(
        sa.or_(*_scope_clauses(scope, user, prefix)), _not_expired(now or utcnow())
    )
    # Ordered here, by code point, so every backend's collation gives the same pages.
    rows = sorted(_listed(session.scalars(query), user, prefix), key=lambda r: (r.scope, r.name))
    end = None if limit is None else offset + limit
    return [_view(row, decrypt=decrypt, cipher=cipher) for row in rows[offset:end]]


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete every value past its expiry; return how many were deleted."""
    result = session.execute(
        sa.delete(KeyValuePairDB).where(KeyValuePairDB.expire_timestamp <= (now or utcnow()))
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
