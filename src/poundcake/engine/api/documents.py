"""Engine rows as StackStorm API documents (the shapes the ``st2`` CLI reads)."""

from __future__ import annotations

from typing import Any

from poundcake.engine.auth.models import ApiKeyDB, TokenDB
from poundcake.engine.auth.service import MASK
from poundcake.engine.documents import action_document, isoformat, runner_document

__all__ = ["action_document", "api_key_document", "runner_document", "token_document"]


def api_key_document(record: ApiKeyDB, *, show_secrets: bool = False) -> dict[str, Any]:
    """The ApiKey API document; the hash is masked unless asked for."""
    return {
        "id": record.id,
        "uid": record.uid,
        "user": record.user,
        "key_hash": record.key_hash if show_secrets else MASK,
        "metadata": record.metadata_ or {},
        "created_at": isoformat(record.created_at),
        "enabled": record.enabled,
    }


def token_document(record: TokenDB, token: str) -> dict[str, Any]:
    """The Token API document returned once, when the token is issued."""
    return {
        "id": record.id,
        "user": record.user,
        "token": token,
        "expiry": isoformat(record.expiry),
        "metadata": record.metadata_ or {},
        "service": record.service,
    }
