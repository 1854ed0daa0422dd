"""Rotating PoundCake's engine API key without downtime (``poundcake engine-key --rotate``).

The steps, in an order where no request fails: create a new key in the engine's database (both
keys work now), replace the key file atomically (a reader sees the old file or the new one,
never half of one), have the running processes read it (SIGHUP, :mod:`poundcake.ops.reload`),
then delete the old key. A request still carrying the old key after that is answered 401 and
repeated once with the file read again (:class:`~poundcake.remediation.engine_api.EngineClient`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import Settings
from poundcake.db.session import unit_of_work
from poundcake.engine.auth.models import ApiKeyDB
from poundcake.engine.auth.service import authenticate_api_key, create_api_key
from poundcake.exceptions import AuthenticationError, ConfigurationError

logger = logging.getLogger(__name__)

KEY_USER = "poundcake"


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: where the new key is, its id, and the id of the key it replaced."""

    path: Path
    new_id: str
    old_id: str | None


def write_key_file(path: Path, key: str) -> None:
    """Replace ``path`` with ``key`` atomically, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(key + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _old_key_id(session: Session, path: Path) -> str | None:
    try:
        old = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not old:
        return None
    try:
        return authenticate_api_key(session, old).id
    except AuthenticationError:
        return None


def rotate_engine_key(
    sessions: sessionmaker[Session],
    path: Path,
    settings: Settings,
    reload: Callable[[], None],
) -> Rotation:
    """Create a new key, write it to ``path``, call ``reload``, delete the old key."""
    if settings.st2_api_key is not None:
        raise ConfigurationError(
            "ST2_API_KEY",
            "is set, and a running process reads it only at start; to rotate without a "
            "restart, unset it and keep the key in ST2_API_KEY_FILE (see docs/operations.md)",
        )
    with unit_of_work(sessions) as session:
        old_id = _old_key_id(session, path)
        created = create_api_key(
            session, user=KEY_USER, metadata={"used_by": "poundcake", "rotated_from": old_id}
        )
        new_id = created.record.id
    write_key_file(path, created.key)
    logger.info("Wrote engine API key %s to %s", new_id, path)
    reload()
    if old_id is not None:
        with unit_of_work(sessions) as session:
            record = session.get(ApiKeyDB, old_id)
            if record is not None:
                session.delete(record)
        logger.info("Deleted the old engine API key %s", old_id)
    return Rotation(path=path, new_id=new_id, old_id=old_id)
