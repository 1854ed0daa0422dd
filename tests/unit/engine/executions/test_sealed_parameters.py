"""Sealing secret parameters: only the named ones, any JSON type, and never without a key."""

from __future__ import annotations

import json
import os

import pytest

from poundcake.engine.executions.sealed import (
    SEALED_TAG,
    is_sealed,
    open_parameters,
    reveal_parameters,
    seal_parameters,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.exceptions import ConfigurationError, ValidationError

VALUES = {"token": "hunter2", "creds": {"pw": "swordfish", "n": [1, 2]}, "note": "plain"}
NAMES = {"token", "creds", "absent"}


def test_only_named_parameters_are_sealed_and_they_open_again() -> None:
    cipher = DatastoreCipher(os.urandom(32))
    sealed = seal_parameters(VALUES, NAMES, cipher)
    assert sealed["note"] == "plain"
    assert is_sealed(sealed["token"]) and is_sealed(sealed["creds"])
    text = json.dumps(sealed)
    assert "hunter2" not in text and "swordfish" not in text
    assert open_parameters(sealed, NAMES, cipher) == VALUES
    assert reveal_parameters(sealed, NAMES, cipher) == VALUES
    # A fresh nonce each time: equal values do not look equal.
    assert seal_parameters(VALUES, NAMES, cipher)["token"] != sealed["token"]


def test_no_key_refuses_to_seal_but_nothing_secret_needs_none() -> None:
    with pytest.raises(ConfigurationError, match="no datastore key"):
        seal_parameters(VALUES, NAMES, None)
    assert seal_parameters({"note": "plain"}, NAMES, None) == {"note": "plain"}


def test_opening_needs_the_same_key() -> None:
    sealed = seal_parameters(VALUES, NAMES, DatastoreCipher(os.urandom(32)))
    other = DatastoreCipher(os.urandom(32))
    with pytest.raises(ValidationError, match="Parameter 'token'"):
        open_parameters(sealed, NAMES, other)
    with pytest.raises(ValidationError, match="no datastore key"):
        open_parameters(sealed, NAMES, None)
    # For display, what cannot be opened stays sealed.
    assert reveal_parameters(sealed, NAMES, other) == sealed


def test_values_not_named_secret_are_never_opened() -> None:
    cipher = DatastoreCipher(os.urandom(32))
    lookalike = {"blob": {SEALED_TAG: "not ciphertext"}}
    assert open_parameters(lookalike, NAMES, cipher) == lookalike
    assert not is_sealed({SEALED_TAG: "x", "more": 1})
