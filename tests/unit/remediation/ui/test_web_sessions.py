"""The web UI's login throttle, CSRF check and session documents (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from poundcake.remediation.ui.sessions import (
    CsrfError,
    Login,
    LoginThrottle,
    TooManyLoginsError,
    check_csrf,
    token_hash,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_per_client_and_per_user_are_limited_for_a_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(limit=3, window=60.0, clock=clock)
    for _ in range(3):
        throttle.check("10.0.0.1", "alice")
        throttle.failed("10.0.0.1", "alice")
    with pytest.raises(TooManyLoginsError):
        throttle.check("10.0.0.1", "bob")
    with pytest.raises(TooManyLoginsError):
        throttle.check("10.0.0.2", "alice")
    throttle.check("10.0.0.2", "bob")
    clock.now += 61
    throttle.check("10.0.0.1", "alice")


def test_a_success_forgets_the_users_failures() -> None:
    throttle = LoginThrottle(limit=2, window=60.0, clock=Clock())
    throttle.failed("10.0.0.1", "alice")
    throttle.succeeded("alice")
    throttle.failed("10.0.0.2", "alice")
    throttle.check("10.0.0.3", "alice")


def test_the_csrf_token_must_be_the_sessions() -> None:
    login = Login("alice", "the-token", datetime(2026, 1, 1, tzinfo=UTC))
    check_csrf(login, "the-token")
    for presented in (None, "", "the-token ", "other"):
        with pytest.raises(CsrfError):
            check_csrf(login, presented)


def test_only_a_hash_of_the_cookie_is_kept() -> None:
    assert token_hash("abc") != "abc"
    assert len(token_hash("abc")) == 64
    assert Login("a", "c", datetime(2026, 1, 1, tzinfo=UTC)).document()["expires_at"] == (
        "2026-01-01T00:00:00Z"
    )
