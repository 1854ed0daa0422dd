"""Tokens and API keys. Neither is stored in plaintext.

API keys keep StackStorm's storage format, ``sha512("saltnpepper" + key)``, so keys exported from
StackStorm load unchanged (``st2 apikey load``); a key is 256 random bits, so the fixed salt costs
nothing. Tokens are ``uuid4().hex`` as StackStorm issues them, stored as SHA-256 digests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.auth.models import ApiKeyDB, TokenDB, UserDB
from poundcake.engine.rbac.uids import api_key_uid
from poundcake.exceptions import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from poundcake.ids import new_id

API_KEY_SALT = "saltnpepper"
MASK = "********"


def hash_api_key(key: str) -> str:
    """StackStorm's stored form of an API key."""
    return hashlib.sha512((API_KEY_SALT + key).encode("utf-8")).hexdigest()


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A new API key in StackStorm's alphabet: base64 of a random SHA-256 hex digest."""
    digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest().encode("ascii")
    return base64.b64encode(digest, altchars=b"Ra").decode("ascii").rstrip("=")


def ensure_user(session: Session, name: str, *, is_service: bool = False) -> UserDB:
    """Return the user, creating a row for a new name (as StackStorm does for key owners)."""
    user = session.scalar(sa.select(UserDB).where(UserDB.name == name))
    if user is None:
        user = UserDB(
            id=new_id(), name=name, is_service=is_service, nicknames={}, created_at=utcnow()
        )
        session.add(user)
        session.flush()
    return user


# --- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    """A created key: the row, and the key itself (shown once, never stored)."""

    record: ApiKeyDB
    key: str


def create_api_key(
    session: Session,
    *,
    user: str,
    metadata: dict[str, Any] | None = None,
    key_hash: str | None = None,
) -> NewApiKey:
    """Create a key for ``user``; with ``key_hash``, import an exported key (no key returned)."""
    key = "" if key_hash else new_api_key()
    stored = key_hash or hash_api_key(key)
    if session.scalar(sa.select(ApiKeyDB.id).where(ApiKeyDB.key_hash == stored)):
        raise ConflictError("an API key with this hash exists already")
    ensure_user(session, user)
    record = ApiKeyDB(
        id=new_id(),
        uid=api_key_uid(stored),
        user=user,
        key_hash=stored,
        metadata_=dict(metadata or {}),
        created_at=utcnow(),
        enabled=True,
    )
    session.add(record)
    session.flush()
    return NewApiKey(record, key)


def find_api_key(session: Session, id_or_key: str) -> ApiKeyDB:
    """Find a key by the key itself (hashed first, as StackStorm does), then by id."""
    record = session.scalar(sa.select(ApiKeyDB).where(ApiKeyDB.key_hash == hash_api_key(id_or_key)))
    if record is None:
        record = session.get(ApiKeyDB, id_or_key)
    if record is None:
        raise NotFoundError(f'ApiKey with key or id "{id_or_key}" not found.')
    return record


def update_api_key(session: Session, record: ApiKeyDB, document: dict[str, Any]) -> ApiKeyDB:
    """Apply ``enabled``, ``metadata`` and ``user``; a masked ``key_hash`` keeps the stored one."""
    if "enabled" in document:
        record.enabled = bool(document["enabled"])
    if isinstance(document.get("metadata"), dict):
        record.metadata_ = document["metadata"]
    if document.get("user"):
        record.user = str(document["user"])
    key_hash = document.get("key_hash")
    if key_hash and key_hash != MASK:
        record.key_hash = str(key_hash)
        record.uid = api_key_uid(record.key_hash)
    session.flush()
    return record


def authenticate_api_key(session: Session, key: str) -> ApiKeyDB:
    """Return the enabled key record for ``key`` or raise StackStorm's 401 reasons."""
    record = session.scalar(sa.select(ApiKeyDB).where(ApiKeyDB.key_hash == hash_api_key(key)))
    if record is None:
        raise AuthenticationError("API key not found.")
    if not record.enabled:
        raise AuthenticationError("API key is disabled.")
    return record


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    """An issued token: the row and the token itself (returned once)."""

    record: TokenDB
    token: str


def issue_token(
    session: Session,
    *,
    user: str,
    ttl: int | None,
    max_ttl: int,
    service: bool = False,
    metadata: dict[str, Any] | None = None,
) -> NewToken:
    """Issue a token for ``user`` living ``ttl`` seconds (at most ``max_ttl``)."""
    if ttl is not None and ttl < 1:
        raise ValidationError("TTL must be 1 second or more.")
    if ttl is not None and ttl > max_ttl and not service:
        raise ValidationError(f"TTL specified {ttl} is greater than max allowed {max_ttl}.")
    token = uuid.uuid4().hex
    record = TokenDB(
        id=new_id(),
        user=user,
        token_hash=hash_token(token),
        expiry=utcnow() + timedelta(seconds=ttl or max_ttl),
        metadata_=dict(metadata or {}),
        service=service,
    )
    session.add(record)
    session.flush()
    return NewToken(record, token)


def validate_token(session: Session, token: str, *, now: datetime | None = None) -> TokenDB:
    """Return the live token record or raise StackStorm's 401 reasons."""
    record = session.scalar(sa.select(TokenDB).where(TokenDB.token_hash == hash_token(token)))
    if record is None:
        raise AuthenticationError("Token not found.")
    if record.expiry <= (now or utcnow()):
        raise AuthenticationError("Token has expired.")
    return record
