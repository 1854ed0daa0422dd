"""The ``approval`` and ``approval_ttl`` fields of a CAB: read, shown, applied, refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.remediation.cabs.definition import CabError, parse_cab
from poundcake.remediation.cabs.guard_fields import (
    Approval,
    guards_from_document,
    guards_summary,
)

BASE: dict[str, Any] = {
    "name": "gated",
    "alert_name_pattern": "^DiskFull$",
    "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
}


def _alert(severity: str, **labels: str) -> dict[str, Any]:
    return {"severity": severity, "labels": {"severity": severity, **labels}}


def test_no_approval_by_default_and_an_hour_to_answer() -> None:
    guards = parse_cab(BASE).guards
    assert guards.approval == Approval()
    assert not guards.approval.needed(_alert("critical"))
    assert guards.approval_ttl == 3600.0
    shown = parse_cab(BASE).document()
    assert (shown["approval"], shown["approval_ttl"]) == ("none", "1h")
    assert "approval" not in guards_summary(guards)


def test_required_asks_for_every_alert() -> None:
    cab = parse_cab({**BASE, "approval": "required", "approval_ttl": "10m"})
    guards = cab.guards
    assert guards.approval.needed(_alert("info")) and guards.approval_ttl == 600.0
    shown = cab.document()
    assert (shown["approval"], shown["approval_ttl"]) == ("required", "10m")
    assert parse_cab(cab.file_document()).guards == guards
    assert guards_from_document(guards.document()) == guards
    assert "approval required (ttl 10m)" in guards_summary(guards)


def test_none_is_the_same_as_leaving_it_out() -> None:
    assert parse_cab({**BASE, "approval": "none"}).guards == parse_cab(BASE).guards


def test_a_condition_on_severity_and_labels() -> None:
    cab = parse_cab(
        {
            **BASE,
            "approval": {
                "severity": ["critical", "page"],
                "labels": {"env": "prod", "tier": [1, 2]},
            },
        }
    )
    approval = cab.guards.approval
    assert approval.needed(_alert("critical", env="prod", tier="1"))
    assert approval.needed(_alert("page", env="prod", tier="2"))
    assert not approval.needed(_alert("warning", env="prod", tier="1"))
    assert not approval.needed(_alert("critical", env="staging", tier="1"))
    assert not approval.needed(_alert("critical", env="prod"))
    shown = cab.document()["approval"]
    assert shown == {
        "severity": ["critical", "page"],
        "labels": {"env": ["prod"], "tier": ["1", "2"]},
    }
    assert parse_cab(cab.file_document()).guards == cab.guards
    assert "approval if severity=critical|page, env=prod, tier=1|2" in guards_summary(cab.guards)


def test_a_condition_on_severity_alone() -> None:
    approval = parse_cab({**BASE, "approval": {"severity": "critical"}}).guards.approval
    assert approval.needed({"severity": "critical"})
    assert not approval.needed({"severity": "warning"})
    assert not approval.needed({})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"approval": "yes"}, "approval: must be none, required, or a condition"),
        ({"approval": True}, "approval: must be none, required, or a condition"),
        ({"approval": ["required"]}, "approval: must be none, required, or a condition"),
        ({"approval": {}}, "approval: a condition needs severity or labels"),
        ({"approval": {"env": "prod"}}, "approval.env: is not a field of approval"),
        ({"approval": {"severity": []}}, "approval.severity: must be a value or a non-empty"),
        ({"approval": {"severity": [{"x": 1}]}}, "approval.severity: must be a value"),
        ({"approval": {"labels": "env=prod"}}, "approval.labels: must be a mapping"),
        ({"approval": {"labels": {}}}, "approval.labels: must be a mapping"),
        ({"approval": {"labels": {"env": None}}}, "approval.labels.env: must be a value"),
        ({"approval": "required", "approval_ttl": "soon"}, "approval_ttl: must be a duration"),
        ({"approval": "required", "approval_ttl": 0}, "approval_ttl: must be longer than 0"),
        ({"approval_ttl": -5}, "approval_ttl: must be a duration"),
    ],
)
def test_a_bad_approval_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(CabError) as refused:
        parse_cab({**BASE, **fields}, source="cabs/gated.yaml")
    assert named in str(refused.value)
    assert str(refused.value).startswith("cabs/gated.yaml: ")
