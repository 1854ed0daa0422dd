"""The datastore cipher and its key file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from poundcake.config import load_st2_config
from poundcake.engine.keyvalue.crypto import (
    DatastoreCipher,
    default_key_path,
    key_path_from_config,
    load_key,
)
from poundcake.exceptions import ConfigurationError, ValidationError


@pytest.fixture
def cipher(tmp_path: Path) -> DatastoreCipher:
    return DatastoreCipher.from_key_file(tmp_path / "keys" / "datastore.key")


def test_roundtrip(cipher: DatastoreCipher) -> None:
    for text in ("", "s3cr3t", "päss wörd ✓", "x" * 100_000):
        sealed = cipher.encrypt(text)
        assert sealed != text
        assert cipher.decrypt(sealed) == text


def test_ciphertext_is_upper_hex_and_fresh_each_time(cipher: DatastoreCipher) -> None:
    first, second = cipher.encrypt("same"), cipher.encrypt("same")
    assert first != second
    assert first == first.upper()
    bytes.fromhex(first)


def test_other_key_cannot_decrypt(tmp_path: Path, cipher: DatastoreCipher) -> None:
    other = DatastoreCipher.from_key_file(tmp_path / "other.key")
    with pytest.raises(ValidationError, match="wrong key or tampered"):
        other.decrypt(cipher.encrypt("secret"))


def test_tampered_ciphertext_is_refused(cipher: DatastoreCipher) -> None:
    sealed = bytearray.fromhex(cipher.encrypt("secret"))
    sealed[-1] ^= 0x01
    with pytest.raises(ValidationError, match="wrong key or tampered"):
        cipher.decrypt(sealed.hex())


@pytest.mark.parametrize("value", ["not hex", "ABCD", ""])
def test_malformed_ciphertext_is_refused(cipher: DatastoreCipher, value: str) -> None:
    with pytest.raises(ValidationError):
        cipher.decrypt(value)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "datastore.key"
    first = load_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["cipher"] == "AES-256-GCM"
    assert load_key(path) == first
    assert len(first) == 32
    assert [p.name for p in path.parent.iterdir()] == ["datastore.key"]


def test_missing_key_file_is_an_error_when_creation_is_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="encryption_key_path"):
        load_key(tmp_path / "absent.key", create=False)


@pytest.mark.parametrize(
    "content", ["not json", '{"key": "zz"}', '{"key": "00ff"}', '{"nokey": 1}']
)
def test_malformed_key_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match="encryption_key_path"):
        load_key(path)


def test_key_path_comes_from_st2_conf_or_the_data_dir(tmp_path: Path) -> None:
    plain = tmp_path / "plain.conf"
    plain.write_text(f"[system]\ndata_dir = {tmp_path / 'data'}\n")
    assert key_path_from_config(load_st2_config(plain)) == default_key_path(tmp_path / "data")
    assert default_key_path(tmp_path / "data") == tmp_path / "data" / "keys" / "datastore.key"
    configured = tmp_path / "configured.conf"
    configured.write_text(f"[keyvalue]\nencryption_key_path = {tmp_path / 'k' / 'my.key'}\n")
    assert key_path_from_config(load_st2_config(configured)) == tmp_path / "k" / "my.key"
