"""A CAB's run safety: what surrounds and follows its run (issue 21's silences, verification
and crash-safe retries), one block of CAB fields with safe defaults.

```yaml
silence: false            # true: an Alertmanager silence covers the alert while the CAB runs
verify_within: null       # seconds (or "90s", "5m", "1h"): after success, wait that long for
                          # the alert to resolve; the episode ends verified or unverified
on_unverified: null       # what an unverified fix does: a CAB's name (run it) or "escalate"
idempotent: false         # true: a step a crashed action runner abandoned may run again
retry:
  on_abandoned: 0         # how many times an abandoned run is resumed (idempotent: 2)
```

Every default leaves today's behaviour: no silence, no verification, an abandoned step ends the
episode ``failed``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUN_SAFETY_KEYS = frozenset({"silence", "verify_within", "on_unverified", "idempotent", "retry"})
RETRY_KEYS = frozenset({"on_abandoned"})
ESCALATE = "escalate"
# How many times an idempotent CAB's abandoned run is resumed when ``retry`` does not say.
IDEMPOTENT_RETRIES = 2
MAX_RETRIES = 10
MAX_VERIFY_SECONDS = 7 * 24 * 3600
_DURATION = re.compile(r"^(\d+)\s*(s|m|h)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class RunSafety:
    """The run safety fields of one CAB, checked."""

    silence: bool = False
    verify_within: int | None = None
    on_unverified: str | None = None
    idempotent: bool = False
    retry_on_abandoned: int = 0

    def document(self) -> dict[str, Any]:
        """The fields as the API, ``cabs list --json`` and the CAB file show them."""
        return {
            "silence": self.silence,
            "verify_within": self.verify_within,
            "on_unverified": self.on_unverified,
            "idempotent": self.idempotent,
            "retry": {"on_abandoned": self.retry_on_abandoned},
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> RunSafety:
        """Read back what :meth:`document` stored (a rule extension's ``run_safety``)."""
        if not document:
            return cls()
        return parse_run_safety(document, lambda field_name, message: ValueError(message))


def _duration(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return int(match.group(1)) * _UNITS[match.group(2) or "s"]
    return None


def parse_run_safety(document: Mapping[str, Any], problem: Any) -> RunSafety:
    """Check the run safety fields of a CAB document; ``problem(field, message)`` makes the
    exception raised for a bad one."""
    silence = document.get("silence", False)
    if not isinstance(silence, bool):
        raise problem("silence", "must be true or false")
    idempotent = document.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise problem("idempotent", "must be true or false")
    verify_within = None
    if document.get("verify_within") is not None:
        verify_within = _duration(document["verify_within"])
        if verify_within is None or not 1 <= verify_within <= MAX_VERIFY_SECONDS:
            raise problem(
                "verify_within", 'must be a duration from 1 second to 7 days (60, "90s", "5m")'
            )
    on_unverified = document.get("on_unverified")
    if on_unverified is not None:
        if not isinstance(on_unverified, str) or not on_unverified:
            raise problem("on_unverified", f'must name a CAB or be "{ESCALATE}"')
        if verify_within is None:
            raise problem("on_unverified", "needs verify_within (nothing is verified without it)")
    retries = _retries(document, idempotent, problem)
    return RunSafety(
        silence=silence,
        verify_within=verify_within,
        on_unverified=on_unverified,
        idempotent=idempotent,
        retry_on_abandoned=retries,
    )


def _retries(document: Mapping[str, Any], idempotent: bool, problem: Any) -> int:
    retry = document.get("retry")
    if retry is None:
        return IDEMPOTENT_RETRIES if idempotent else 0
    if not isinstance(retry, Mapping):
        raise problem("retry", "must be a mapping like {on_abandoned: 2}")
    unknown = sorted(set(retry) - RETRY_KEYS)
    if unknown:
        raise problem(f"retry.{unknown[0]}", "is not a retry field (retry takes on_abandoned)")
    count = retry.get("on_abandoned", IDEMPOTENT_RETRIES if idempotent else 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_RETRIES:
        raise problem("retry.on_abandoned", f"must be a whole number from 0 to {MAX_RETRIES}")
    if count and "idempotent" in document and not idempotent:
        raise problem(
            "retry.on_abandoned", "re-runs abandoned steps, which idempotent: false forbids"
        )
    return int(count)
