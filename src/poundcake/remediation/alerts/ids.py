"""Identifiers of alert episodes, derived from what Alertmanager sends so intake never reads first.

An episode is one (fingerprint, startsAt): the same label set firing again later gets the same
fingerprint and a new ``startsAt``. Its id is the first 24 hex digits of
``sha256("<fingerprint>|<startsAt as UTC isoformat()>")``, e.g.
``sha256("8f3c9a01d2e4b5c6|2026-05-01T10:00:00.123456+00:00")`` (``isoformat`` leaves out the
fraction when it is zero). ``startsAt`` is taken at microsecond precision, as it is stored.

When an alert carries no fingerprint, :func:`label_fingerprint` computes Alertmanager's own one
from the labels (prometheus/common ``LabelSet.Fingerprint``: FNV-1a 64 over the label pairs
sorted by name, each name and value followed by the byte 0xff, printed as 16 hex digits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF


def alert_id(fingerprint: str, starts_at: datetime) -> str:
    """Return the 24-hex id of the episode (``fingerprint``, ``starts_at``)."""
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    key = f"{fingerprint}|{starts_at.astimezone(UTC).isoformat()}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Return the fingerprint Alertmanager gives an alert with these labels."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{value:016x}"
