"""Secret action parameters at rest: sealed with the datastore key, opened only to be used.

A top-level parameter the action or runner schema marks ``secret: true`` is stored in
``execution_db.parameters``, ``execution_db.liveaction`` and ``liveaction_db.parameters`` as a
small envelope, ``{"__secret__": "<ciphertext>"}``: the JSON of the value sealed with
AES-256-GCM under the datastore key (:class:`DatastoreCipher`, ``[keyvalue]
encryption_key_path``). The action runner opens it to build the runner's request, a re-run opens
the old execution's values, and the API opens them for ``show_secrets``; every other reader
masks the parameter as before, so the envelope itself is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from poundcake.engine.keyvalue.crypto import KEY_PATH_SETTING, DatastoreCipher
from poundcake.exceptions import ConfigurationError, ValidationError

SEALED_TAG = "__secret__"


def is_sealed(value: Any) -> bool:
    """Tell whether ``value`` is a sealed parameter envelope."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED_TAG), str)


def seal_parameters(
    values: Mapping[str, Any], names: Collection[str], cipher: DatastoreCipher | None
) -> dict[str, Any]:
    """``values`` with each parameter named in ``names`` sealed; refuse without a key."""
    present = [name for name in values if name in names]
    if not present:
        return dict(values)
    if cipher is None:
        raise ConfigurationError(
            KEY_PATH_SETTING,
            "secret parameters are stored encrypted, but no datastore key is available",
        )
    sealed = dict(values)
    for name in present:
        text = json.dumps(values[name], ensure_ascii=False, separators=(",", ":"))
        sealed[name] = {SEALED_TAG: cipher.encrypt(text)}
    return sealed


def open_parameters(
    values: Mapping[str, Any], names: Collection[str], cipher: DatastoreCipher | None
) -> dict[str, Any]:
    """``values`` with each sealed parameter named in ``names`` opened (raise if it cannot be)."""
    opened = dict(values)
    for name, value in values.items():
        if name not in names or not is_sealed(value):
            continue
        if cipher is None:
            raise ValidationError(
                f"Parameter '{name}' is stored encrypted and no datastore key is available "
                f"({KEY_PATH_SETTING})"
            )
        try:
            opened[name] = json.loads(cipher.decrypt(value[SEALED_TAG]))
        except ValidationError as error:
            raise ValidationError(f"Parameter '{name}': {error}") from None
    return opened


def reveal_parameters(values: Any, names: Collection[str], cipher: DatastoreCipher | None) -> Any:
    """Like :func:`open_parameters` for display (``show_secrets``): a value that cannot be
    opened stays sealed rather than failing the whole answer."""
    if not isinstance(values, dict) or not names:
        return values
    shown = dict(values)
    for name, value in values.items():
        if name in names and is_sealed(value):
            try:
                shown[name] = open_parameters({name: value}, names, cipher)[name]
            except ValidationError:
                continue
    return shown
