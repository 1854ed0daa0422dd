"""Encryption at rest for secret datastore values: AES-256-GCM with a key kept in a key file.

The key file is JSON (``{"cipher": "AES-256-GCM", "key": "<64 hex digits>"}``), readable by its
owner only. It is created on first use when missing. Ciphertext is stored the way StackStorm
stores it, as one upper-case hex string: here the 12-byte nonce followed by the sealed value.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from poundcake.config import St2Config
from poundcake.exceptions import ConfigurationError, ValidationError

logger = logging.getLogger(__name__)

CIPHER_NAME = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_PATH_SETTING = "[keyvalue] encryption_key_path"


def default_key_path(data_dir: Path) -> Path:
    """Return where the datastore key lives unless configured: ``<data_dir>/keys/datastore.key``."""
    return data_dir / "keys" / "datastore.key"


def key_path_from_config(config: St2Config) -> Path:
    """Return ``[keyvalue] encryption_key_path`` from st2.conf, else the default path."""
    return config.datastore_key_path


def _write_new_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = {"cipher": CIPHER_NAME, "key": AESGCM.generate_key(bit_length=256).hex()}
    # mkstemp creates the file 0600; linking it into place is atomic and never overwrites a key
    # another process created meanwhile.
    descriptor, temporary = tempfile.mkstemp(prefix=".datastore-key-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        logger.info("Created the datastore encryption key %s", path)
    finally:
        os.unlink(temporary)


def load_key(path: Path, *, create: bool = True) -> bytes:
    """Read the key file at ``path``, creating it (mode 0600) first when missing and allowed."""
    if create and not path.exists():
        _write_new_key(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            KEY_PATH_SETTING, f"cannot read the key file {path}: {error.strerror}"
        ) from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("The datastore key file %s is readable by other users", path)
    try:
        document = json.loads(text)
        key = bytes.fromhex(document["key"])
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(KEY_PATH_SETTING, f"{path} is not a datastore key file") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(KEY_PATH_SETTING, f"{path} does not hold a 256-bit key")
    return key


class DatastoreCipher:
    """Encrypts and decrypts datastore values with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the datastore key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = True) -> DatastoreCipher:
        """Build a cipher from the key file at ``path`` (created when missing and allowed)."""
        return cls(load_key(path, create=create))

    def encrypt(self, plaintext: str) -> str:
        """Return ``plaintext`` sealed under a fresh nonce, as upper-case hex."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return (nonce + sealed).hex().upper()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext of a value :meth:`encrypt` produced with the same key."""
        try:
            raw = bytes.fromhex(ciphertext)
        except ValueError:
            raise ValidationError("the value is not valid ciphertext (expected hex)") from None
        if len(raw) <= NONCE_BYTES:
            raise ValidationError("the value is not valid ciphertext (too short)")
        try:
            plaintext = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
        except InvalidTag:
            raise ValidationError(
                "the value cannot be decrypted with the datastore key (wrong key or tampered)"
            ) from None
        return plaintext.decode("utf-8")
