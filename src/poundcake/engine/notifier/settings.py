"""``notify`` settings as StackStorm reads them: which sections apply to a finished execution.

A section (``on-complete``, ``on-success``, ``on-failure``) posts one notify trigger per route;
``routes`` wins over the deprecated ``channels``, and a section without either posts nothing.
``on-complete`` applies to every finished execution, ``on-success`` to a succeeded one and
``on-failure`` to a failed, timed out or abandoned one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECTIONS = ("on-complete", "on-success", "on-failure")
FAILED_STATUSES = frozenset({"failed", "timeout", "abandoned"})


def _applies(section: str, status: str) -> bool:
    if section == "on-success":
        return status == "succeeded"
    if section == "on-failure":
        return status in FAILED_STATUSES
    return True


_DEFAULT_SUFFIX = {"on-complete": "completed.", "on-success": "succeeded.", "on-failure": "failed."}


@dataclass(frozen=True)
class NotifySection:
    """One section that applies: its routes, message template (or the default) and data."""

    name: str
    routes: tuple[str, ...]
    message: str
    data: dict[str, Any]


def has_notify(notify: Mapping[str, Any] | None) -> bool:
    """Tell whether ``notify`` has any section (StackStorm's ``_is_notify_empty``, negated)."""
    return notify is not None and any(notify.get(section) for section in SECTIONS)


def execution_notify(
    action_notify: Mapping[str, Any] | None,
    requested: Mapping[str, Any] | None,
    *,
    skip: bool = False,
) -> dict[str, Any]:
    """The notify an execution carries: none when skipped, else the action's own when it has
    any (StackStorm's ``create_request``), else what the request asked for."""
    if skip:
        return {}
    if has_notify(action_notify):
        return dict(action_notify or {})
    return dict(requested or {}) if has_notify(requested) else {}


def applicable_sections(
    notify: Mapping[str, Any] | None, *, status: str, action_ref: str
) -> list[NotifySection]:
    """The sections of ``notify`` that post for an execution of ``action_ref`` ending in
    ``status``, in StackStorm's order (complete, success, failure)."""
    found = []
    for name in SECTIONS:
        section = (notify or {}).get(name)
        if not isinstance(section, Mapping) or not section or not _applies(name, status):
            continue
        routes = section.get("routes") or section.get("channels") or []
        if not routes:
            continue
        message = section.get("message") or f"Action {action_ref} {_DEFAULT_SUFFIX[name]}"
        data = section.get("data") or {}
        found.append(
            NotifySection(name, tuple(str(route) for route in routes), str(message), dict(data))
        )
    return found
