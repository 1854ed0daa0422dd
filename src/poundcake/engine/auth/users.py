"""Engine users who log in with a password (``st2-setup-auth``), stored as scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.auth.models import UserDB
from poundcake.exceptions import ValidationError
from poundcake.ids import new_id

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """Return ``scrypt$N$r$p$salt$hash`` for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    fields = [str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P)]
    fields += [base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    return "$".join(["scrypt", *fields])


def verify_password(password: str, stored: str | None) -> bool:
    """Tell whether ``password`` matches a stored hash (constant-time comparison)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class PasswordChange:
    """What :func:`set_password` did."""

    user: str
    created: bool
    changed: bool


def set_password(session: Session, *, name: str, password: str) -> PasswordChange:
    """Create ``name`` with ``password``, or change its password; unchanged if it matches."""
    if not name or ":" in name:
        raise ValidationError("user name must be non-empty and must not contain ':'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalar(sa.select(UserDB).where(UserDB.name == name))
    if user is None:
        session.add(
            UserDB(
                id=new_id(),
                name=name,
                is_service=False,
                nicknames={},
                password_hash=hash_password(password),
                created_at=utcnow(),
            )
        )
        session.flush()
        return PasswordChange(user=name, created=True, changed=True)
    if verify_password(password, user.password_hash):
        return PasswordChange(user=name, created=False, changed=False)
    user.password_hash = hash_password(password)
    session.flush()
    return PasswordChange(user=name, created=False, changed=True)


def authenticate(session: Session, *, name: str, password: str) -> bool:
    """Tell whether ``name`` may log in with ``password``."""
    stored = session.scalar(sa.select(UserDB.password_hash).where(UserDB.name == name))
    return verify_password(password, stored)
