"""The admission guard fields of a CAB: how often, where and how it may run.

```yaml
mode: run                   # run | shadow (record what would run, with rendered parameters)
max_runs: 1000              # runs per budget_window, per CAB and group
budget_window: 1h           # durations: seconds, or a number with s, m, h or d
group: "{{ alert.labels.instance }}"   # template; empty = the whole CAB is one group
cooldown: 0                 # after a run is admitted, the group waits this long
flap: {max_episodes: 20, window: 1h}   # a fingerprint opening more episodes is held (flapping)
target: "{{ alert.labels.instance }}"  # template; a lease lock so runs on one target never overlap
target_wait: 5m             # how long an alert waits for a locked target before giving up
storm: {max_alerts: 0, window: 1m}     # more matched alerts in the window are held (0 = off)
blast_radius:               # runs may touch at most max_share of a group within window
  group: "{{ alert.labels.cluster }}"
  max_share: 0.1
  size: 200                 # optional; else distinct targets seen in the group over lookback
  window: 1h
  lookback: 1d
approval: none              # none | required | {severity: [critical], labels: {env: prod}}
approval_ttl: 1h            # an unanswered approval expires, as denied, after this long
```

Every field has a default that keeps a CAB working as before (no lock without ``target``, no blast
radius without ``blast_radius``) while bounding a runaway: at most 1000 runs an hour, and a
fingerprint that opens more than 20 episodes an hour is held as flapping. The guards themselves
are :mod:`poundcake.remediation.guards`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poundcake.exceptions import ValidationError

MODES = ("run", "shadow")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
GUARD_TEMPLATE_NAMES = frozenset({"alert"})
DEFAULT_MAX_RUNS = 1000
DEFAULT_BUDGET_WINDOW = 3600.0
DEFAULT_FLAP_EPISODES = 20
DEFAULT_FLAP_WINDOW = 3600.0
DEFAULT_TARGET_WAIT = 300.0
DEFAULT_APPROVAL_TTL = 3600.0
APPROVAL_WORDS = ("none", "required")


@dataclass(frozen=True)
class Flap:
    """A fingerprint opening more than ``max_episodes`` episodes in ``window`` s is flapping."""

    max_episodes: int = DEFAULT_FLAP_EPISODES
    window: float = DEFAULT_FLAP_WINDOW


@dataclass(frozen=True)
class Storm:
    """More than ``max_alerts`` alerts matched to the CAB in ``window`` s trip its breaker."""

    max_alerts: int = 0
    window: float = 60.0


@dataclass(frozen=True)
class BlastRadius:
    """Runs may touch at most ``max_share`` of the targets of one ``group`` within ``window``."""

    group: str
    max_share: float
    size: int | None = None
    window: float = 3600.0
    lookback: float = 86400.0


@dataclass(frozen=True)
class Approval:
    """When a person must approve a run: never, always, or when the alert fits a condition.

    A condition holds when the alert's severity is one of ``severities`` (if any are given) and
    each label in ``labels`` has one of its values.
    """

    required: bool = False
    severities: tuple[str, ...] = ()
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def conditional(self) -> bool:
        """Tell whether the approval depends on the alert."""
        return bool(self.severities or self.labels)

    def needed(self, alert: Mapping[str, Any]) -> bool:
        """Tell whether this alert (the ``poundcake.alert`` payload) needs an approval."""
        if not self.conditional:
            return self.required
        if self.severities and str(alert.get("severity") or "") not in self.severities:
            return False
        labels = alert.get("labels") or {}
        return all(str(labels.get(name, "")) in values for name, values in self.labels)

    def document(self) -> str | dict[str, Any]:
        """``none``, ``required``, or the condition as the CAB file gives it."""
        if not self.conditional:
            return "required" if self.required else "none"
        found: dict[str, Any] = {}
        if self.severities:
            found["severity"] = list(self.severities)
        if self.labels:
            found["labels"] = {name: list(values) for name, values in self.labels}
        return found

    def text(self) -> str:
        """One short line: ``required``, or ``if severity=critical, env=prod``."""
        if not self.conditional:
            return "required" if self.required else "none"
        parts = []
        if self.severities:
            parts.append(f"severity={'|'.join(self.severities)}")
        parts.extend(f"{name}={'|'.join(values)}" for name, values in self.labels)
        return "if " + ", ".join(parts)


@dataclass(frozen=True)
class CabGuards:
    """A CAB's guard fields, defaults filled in."""

    mode: str = "run"
    max_runs: int = DEFAULT_MAX_RUNS
    budget_window: float = DEFAULT_BUDGET_WINDOW
    group: str = ""
    cooldown: float = 0.0
    flap: Flap = field(default_factory=Flap)
    target: str = ""
    target_wait: float = DEFAULT_TARGET_WAIT
    storm: Storm = field(default_factory=Storm)
    blast_radius: BlastRadius | None = None
    approval: Approval = field(default_factory=Approval)
    approval_ttl: float = DEFAULT_APPROVAL_TTL

    def templates(self) -> dict[str, str]:
        """The guard templates by field name (checked by the CAB loader like step templates)."""
        found = {"group": self.group, "target": self.target}
        if self.blast_radius is not None:
            found["blast_radius.group"] = self.blast_radius.group
        return {name: template for name, template in found.items() if template}

    def document(self) -> dict[str, Any]:
        """The fields as the API, the CLI and the CAB file show them."""
        document: dict[str, Any] = {
            "mode": self.mode,
            "max_runs": self.max_runs,
            "budget_window": _seconds_text(self.budget_window),
            "group": self.group,
            "cooldown": _seconds_text(self.cooldown),
            "flap": {
                "max_episodes": self.flap.max_episodes,
                "window": _seconds_text(self.flap.window),
            },
            "target": self.target,
            "target_wait": _seconds_text(self.target_wait),
            "storm": {
                "max_alerts": self.storm.max_alerts,
                "window": _seconds_text(self.storm.window),
            },
            "blast_radius": None,
            "approval": self.approval.document(),
            "approval_ttl": _seconds_text(self.approval_ttl),
        }
        radius = self.blast_radius
        if radius is not None:
            document["blast_radius"] = {
                "group": radius.group,
                "max_share": radius.max_share,
                "size": radius.size,
                "window": _seconds_text(radius.window),
                "lookback": _seconds_text(radius.lookback),
            }
        return document


def guards_summary(guards: CabGuards) -> str:
    """The guard fields in one short line (``cabs list``, the UI's CAB table)."""
    document = guards.document()
    parts = [
        f"{guards.mode}",
        f"{guards.max_runs}/{document['budget_window']}"
        + (f" per {guards.group}" if guards.group else ""),
    ]
    if guards.cooldown:
        parts.append(f"cooldown {document['cooldown']}")
    parts.append(f"flap>{guards.flap.max_episodes}/{document['flap']['window']}")
    if guards.target:
        parts.append(f"lock {guards.target}")
    if guards.storm.max_alerts:
        parts.append(f"storm>{guards.storm.max_alerts}/{document['storm']['window']}")
    if guards.blast_radius is not None:
        parts.append(f"blast {guards.blast_radius.max_share:g} of {guards.blast_radius.group}")
    if guards.approval.required or guards.approval.conditional:
        parts.append(f"approval {guards.approval.text()} (ttl {document['approval_ttl']})")
    return ", ".join(parts)


GUARD_KEYS = frozenset(
    {
        "mode",
        "max_runs",
        "budget_window",
        "group",
        "cooldown",
        "flap",
        "target",
        "target_wait",
        "storm",
        "blast_radius",
        "approval",
        "approval_ttl",
    }
)


def _seconds_text(seconds: float) -> str | int:
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return whole


class GuardFieldError(ValidationError):
    """A guard field that does not validate; the CAB loader reports it as a CabError."""


def _problem(where: str, name: str, message: str) -> GuardFieldError:
    prefix = f"{where}: " if where else ""
    return GuardFieldError(f"{prefix}{name}: {message}")


def parse_duration(value: Any, where: str, name: str) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise _problem(where, name, "must be a duration (seconds, or like 30s, 5m, 1h, 1d)")
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    found = DURATION.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise _problem(where, name, "must be a duration (seconds, or like 30s, 5m, 1h, 1d)")
    return float(found.group(1)) * UNIT_SECONDS[found.group(2)]


def _count(value: Any, where: str, name: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _problem(where, name, f"must be a whole number >= {least}")
    return value


def _template(value: Any, where: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _problem(where, name, "must be a template text like {{ alert.labels.instance }}")
    return value


def _mapping(value: Any, keys: frozenset[str], where: str, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _problem(where, name, f"must be a mapping with {', '.join(sorted(keys))}")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise _problem(where, f"{name}.{unknown[0]}", f"is not a field of {name}")
    return value


def _flap(value: Any, where: str) -> Flap:
    if value is None:
        return Flap()
    raw = _mapping(value, frozenset({"max_episodes", "window"}), where, "flap")
    return Flap(
        max_episodes=_count(
            raw.get("max_episodes", DEFAULT_FLAP_EPISODES), where, "flap.max_episodes", least=1
        ),
        window=parse_duration(raw.get("window", DEFAULT_FLAP_WINDOW), where, "flap.window"),
    )


def _storm(value: Any, where: str) -> Storm:
    if value is None:
        return Storm()
    raw = _mapping(value, frozenset({"max_alerts", "window"}), where, "storm")
    return Storm(
        max_alerts=_count(raw.get("max_alerts", 0), where, "storm.max_alerts"),
        window=parse_duration(raw.get("window", 60), where, "storm.window"),
    )


def _blast_radius(value: Any, where: str) -> BlastRadius | None:
    if value is None:
        return None
    keys = frozenset({"group", "max_share", "size", "window", "lookback"})
    raw = _mapping(value, keys, where, "blast_radius")
    group = _template(raw.get("group"), where, "blast_radius.group")
    if not group:
        raise _problem(where, "blast_radius.group", "is required: the group's template")
    share = raw.get("max_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise _problem(where, "blast_radius.max_share", "must be a share in (0, 1], like 0.1")
    size = raw.get("size")
    if size is not None:
        size = _count(size, where, "blast_radius.size", least=1)
    return BlastRadius(
        group=group,
        max_share=float(share),
        size=size,
        window=parse_duration(raw.get("window", 3600), where, "blast_radius.window"),
        lookback=parse_duration(raw.get("lookback", 86400), where, "blast_radius.lookback"),
    )


def _values(value: Any, where: str, name: str) -> tuple[str, ...]:
    """One text or a non-empty list of texts (numbers are read as their text)."""
    items = value if isinstance(value, list) else [value]
    if not items or any(
        isinstance(item, bool) or not isinstance(item, (str, int, float)) for item in items
    ):
        raise _problem(where, name, "must be a value or a non-empty list of values")
    return tuple(str(item) for item in items)


def _approval(value: Any, where: str) -> Approval:
    if value is None or value == "none":
        return Approval()
    if value == "required":
        return Approval(required=True)
    if isinstance(value, str) or not isinstance(value, Mapping):
        raise _problem(
            where,
            "approval",
            "must be none, required, or a condition like {severity: [critical], "
            "labels: {env: prod}}",
        )
    raw = _mapping(value, frozenset({"severity", "labels"}), where, "approval")
    if not raw:
        raise _problem(where, "approval", "a condition needs severity or labels")
    severities = _values(raw["severity"], where, "approval.severity") if "severity" in raw else ()
    labels: list[tuple[str, tuple[str, ...]]] = []
    if "labels" in raw:
        found = raw["labels"]
        if not isinstance(found, Mapping) or not found:
            raise _problem(where, "approval.labels", "must be a mapping of label to value(s)")
        for name, values in sorted(found.items(), key=lambda item: str(item[0])):
            labels.append((str(name), _values(values, where, f"approval.labels.{name}")))
    return Approval(required=True, severities=severities, labels=tuple(labels))


def parse_guards(document: Mapping[str, Any], where: str) -> CabGuards:
    """The guard fields of a CAB document (defaults for those it leaves out)."""
    mode = document.get("mode", "run")
    if mode not in MODES:
        raise _problem(where, "mode", f"must be one of {', '.join(MODES)}")
    return CabGuards(
        mode=mode,
        max_runs=_count(document.get("max_runs", DEFAULT_MAX_RUNS), where, "max_runs"),
        budget_window=parse_duration(
            document.get("budget_window", DEFAULT_BUDGET_WINDOW), where, "budget_window"
        ),
        group=_template(document.get("group"), where, "group"),
        cooldown=parse_duration(document.get("cooldown", 0), where, "cooldown"),
        flap=_flap(document.get("flap"), where),
        target=_template(document.get("target"), where, "target"),
        target_wait=parse_duration(
            document.get("target_wait", DEFAULT_TARGET_WAIT), where, "target_wait"
        ),
        storm=_storm(document.get("storm"), where),
        blast_radius=_blast_radius(document.get("blast_radius"), where),
        approval=_approval(document.get("approval"), where),
        approval_ttl=_approval_ttl(document.get("approval_ttl", DEFAULT_APPROVAL_TTL), where),
    )


def _approval_ttl(value: Any, where: str) -> float:
    seconds = parse_duration(value, where, "approval_ttl")
    if seconds <= 0:
        raise _problem(where, "approval_ttl", "must be longer than 0")
    return seconds


def guards_from_document(document: Mapping[str, Any] | None) -> CabGuards:
    """Read back :meth:`CabGuards.document` (as the rule extension stores it)."""
    return parse_guards(document or {}, "")
