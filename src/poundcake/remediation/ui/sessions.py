"""Web UI logins: the engine's password users, server-side sessions, CSRF tokens, throttling.

A login checks the user and password of the engine's users (``st2-setup-auth``) and stores a
session under the SHA-256 of a random cookie token; the token itself is only ever in the
browser's cookie. Unknown users cost the same scrypt work as wrong passwords, and both get the
same answer. Each session has a CSRF token the browser sends back on writes. Failed logins are
throttled per client address and per user name, in memory (one poundcake-api process).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.public import UserDB, hash_password, verify_password
from poundcake.exceptions import AuthenticationError, PoundCakeError
from poundcake.remediation.ui.models import UiSession

COOKIE_NAME = "poundcake_session"
CSRF_HEADER = "X-CSRF-Token"
INVALID_LOGIN = "Invalid username or password."
NOT_LOGGED_IN = "Not logged in."
SESSION_EXPIRED = "Session expired. Log in again."
WRONG_CSRF = "Missing or wrong CSRF token."
TOO_MANY_FAILURES = "Too many failed logins. Try again later."
MAX_CREDENTIAL = 1024


class CsrfError(PoundCakeError):
    """A write without the session's CSRF token (HTTP 403)."""

    http_status = 403

    def __init__(self) -> None:
        super().__init__(WRONG_CSRF)


class TooManyLoginsError(PoundCakeError):
    """Too many failed logins from one address or for one user (HTTP 429)."""

    http_status = 429

    def __init__(self) -> None:
        super().__init__(TOO_MANY_FAILURES)


@dataclass(frozen=True)
class Login:
    """A logged-in browser, as the API shows it (without its cookie token)."""

    username: str
    csrf_token: str
    expires_at: datetime

    def document(self) -> dict[str, str]:
        """``{"username", "csrf_token", "expires_at"}``."""
        return {
            "username": self.username,
            "csrf_token": self.csrf_token,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
        }


def token_hash(token: str) -> str:
    """What is stored of a cookie token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    # Checked against for unknown users, so they cost the same scrypt work as known ones.
    return hash_password(secrets.token_urlsafe(16))


def check_password(session: Session, *, username: str, password: str) -> bool:
    """Tell whether ``username`` logs in with ``password``; as slow for unknown users."""
    if not username or len(username) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
        verify_password(password[:MAX_CREDENTIAL], _decoy_hash())
        return False
    stored = session.scalar(sa.select(UserDB.password_hash).where(UserDB.name == username))
    if stored is None:
        verify_password(password, _decoy_hash())
        return False
    return verify_password(password, stored)


def create_session(
    session: Session, *, username: str, password: str, lifetime_seconds: int
) -> tuple[str, Login]:
    """Log ``username`` in: the new cookie token and the login; AuthenticationError otherwise."""
    if not check_password(session, username=username, password=password):
        raise AuthenticationError(INVALID_LOGIN)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    row = UiSession(
        token_hash=token_hash(token),
        username=username,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds),
    )
    session.add(row)
    session.execute(sa.delete(UiSession).where(UiSession.expires_at < now))
    session.flush()
    return token, Login(row.username, row.csrf_token, row.expires_at)


def find_session(session: Session, token: str | None) -> Login:
    """The login of a cookie token; AuthenticationError when absent, unknown or expired."""
    if not token:
        raise AuthenticationError(NOT_LOGGED_IN)
    row = session.get(UiSession, token_hash(token))
    if row is None:
        raise AuthenticationError(NOT_LOGGED_IN)
    if row.expires_at <= utcnow():
        raise AuthenticationError(SESSION_EXPIRED)
    return Login(row.username, row.csrf_token, row.expires_at)


def delete_session(session: Session, token: str | None) -> None:
    """Log a cookie token out (nothing when it is unknown)."""
    if token:
        session.execute(sa.delete(UiSession).where(UiSession.token_hash == token_hash(token)))


def check_csrf(login: Login, presented: str | None) -> None:
    """Refuse a write whose ``X-CSRF-Token`` is not the session's (constant time)."""
    if not presented or not hmac.compare_digest(
        presented.encode("utf-8"), login.csrf_token.encode("utf-8")
    ):
        raise CsrfError


class LoginThrottle:
    """At most ``limit`` failed logins per client address and per user name in ``window``
    seconds; a success forgets the user's failures."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        while found and found[0] <= now - self.window:
            found.popleft()
        return found

    def check(self, client: str, username: str) -> None:
        """Raise :class:`TooManyLoginsError` when either key has failed too often."""
        now = self._clock()
        with self._lock:
            for key in (f"client:{client}", f"user:{username}"):
                if len(self._recent(key, now)) >= self.limit:
                    raise TooManyLoginsError

    def failed(self, client: str, username: str) -> None:
        """Count a failed login."""
        now = self._clock()
        with self._lock:
            for key in (f"client:{client}", f"user:{username}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        """Forget the user's failures."""
        with self._lock:
            self._failures.pop(f"user:{username}", None)
