"""The guard fields of a CAB: safe defaults, durations, every bad field named, round trips."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.remediation.cabs.definition import CabError, parse_cab
from poundcake.remediation.cabs.guard_fields import (
    CabGuards,
    guards_from_document,
    guards_summary,
)

BASE: dict[str, Any] = {
    "name": "guarded",
    "alert_name_pattern": "^DiskFull$",
    "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
}


def test_defaults_keep_a_cab_running_and_bound_a_runaway() -> None:
    guards = parse_cab(BASE).guards
    assert guards == CabGuards()
    assert (guards.mode, guards.max_runs, guards.budget_window) == ("run", 1000, 3600.0)
    assert (guards.target, guards.group, guards.blast_radius) == ("", "", None)
    assert (guards.flap.max_episodes, guards.flap.window) == (20, 3600.0)
    assert guards.storm.max_alerts == 0


def test_every_field_is_read_and_shown() -> None:
    cab = parse_cab(
        {
            **BASE,
            "mode": "shadow",
            "max_runs": 3,
            "budget_window": "10m",
            "group": "{{ alert.labels.instance }}",
            "cooldown": 90,
            "flap": {"max_episodes": 3, "window": "5m"},
            "target": "{{ alert.labels.instance }}",
            "target_wait": "30s",
            "storm": {"max_alerts": 50, "window": "2m"},
            "blast_radius": {
                "group": "{{ alert.labels.cluster }}",
                "max_share": 0.1,
                "size": 200,
                "window": "1h",
                "lookback": "1d",
            },
        }
    )
    guards = cab.guards
    assert (guards.budget_window, guards.cooldown, guards.target_wait) == (600.0, 90.0, 30.0)
    assert guards.blast_radius is not None and guards.blast_radius.size == 200
    shown = cab.document()
    assert shown["budget_window"] == "10m" and shown["cooldown"] == 90
    assert shown["blast_radius"]["lookback"] == "1d"
    assert parse_cab(cab.file_document()).guards == guards
    assert guards_from_document(guards.document()) == guards
    assert "shadow" in guards_summary(guards) and "blast 0.1" in guards_summary(guards)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"mode": "dry-run"}, "mode: must be one of run, shadow"),
        ({"max_runs": -1}, "max_runs: must be a whole number >= 0"),
        ({"max_runs": True}, "max_runs"),
        ({"budget_window": "5 years"}, "budget_window: must be a duration"),
        ({"cooldown": -3}, "cooldown: must be a duration"),
        ({"flap": {"max_episodes": 0}}, "flap.max_episodes: must be a whole number >= 1"),
        ({"flap": {"episodes": 3}}, "flap.episodes: is not a field of flap"),
        ({"flap": 3}, "flap: must be a mapping"),
        ({"target": 7}, "target: must be a template text"),
        ({"target": "{{ host }}"}, "target: template '{{ host }}' uses host"),
        ({"group": "{{ alert.labels.x"}, "group: invalid template"),
        ({"storm": {"max_alerts": "many"}}, "storm.max_alerts"),
        ({"blast_radius": {"max_share": 0.1}}, "blast_radius.group: is required"),
        ({"blast_radius": {"group": "{{ alert.labels.c }}", "max_share": 2}}, "max_share"),
        ({"blast_radius": {"group": "{{ alert.labels.c }}", "max_share": 0.1, "size": 0}}, "size"),
    ],
)
def test_a_bad_guard_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(CabError, match=None) as refused:
        parse_cab({**BASE, **fields}, source="cabs/guarded.yaml")
    assert named in str(refused.value)
    assert str(refused.value).startswith("cabs/guarded.yaml: ")
