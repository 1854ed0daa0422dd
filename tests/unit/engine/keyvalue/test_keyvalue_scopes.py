"""Datastore scope names and user-scoped key names."""

from __future__ import annotations

import re

import pytest

from poundcake.engine.keyvalue.scopes import (
    ALL_SCOPE,
    SYSTEM_SCOPE,
    USER_SCOPE,
    check_user,
    normalise_scope,
    split_stored_name,
    stored_name,
)
from poundcake.exceptions import ValidationError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("system", SYSTEM_SCOPE),
        ("st2kv.system", SYSTEM_SCOPE),
        ("SYSTEM", SYSTEM_SCOPE),
        ("user", USER_SCOPE),
        ("st2kv.user", USER_SCOPE),
        (" user ", USER_SCOPE),
    ],
)
def test_scope_aliases(given: str, expected: str) -> None:
    assert normalise_scope(given) == expected


def test_all_is_only_for_listing() -> None:
    assert normalise_scope("all", allow_all=True) == ALL_SCOPE
    with pytest.raises(ValidationError, match='Invalid scope "all"'):
        normalise_scope("all")


@pytest.mark.parametrize("scope", ["", "st2kv", "global", "st2kv.users"])
def test_unknown_scopes_are_refused(scope: str) -> None:
    with pytest.raises(
        ValidationError, match=re.escape("Allowed scopes are: st2kv.system, st2kv.user")
    ):
        normalise_scope(scope, allow_all=True)


def test_user_keys_are_stored_under_user_colon_name() -> None:
    assert stored_name("token", USER_SCOPE, "alice") == "alice:token"
    assert stored_name("a:b", USER_SCOPE, "alice") == "alice:a:b"
    assert stored_name("token", SYSTEM_SCOPE, "alice") == "token"
    assert split_stored_name("alice:a:b", USER_SCOPE) == ("a:b", "alice")
    assert split_stored_name("pack.Action:x", SYSTEM_SCOPE) == ("pack.Action:x", None)


@pytest.mark.parametrize("user", [None, "", "  ", "a:b"])
def test_user_scope_needs_a_plain_user(user: str | None) -> None:
    with pytest.raises(ValidationError):
        stored_name("token", USER_SCOPE, user)
    with pytest.raises(ValidationError):
        check_user(user)
