"""A CAB's run safety fields (issue 21): defaults, refusals naming the field, what the API
shows, and which failed runs count as abandoned only."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.remediation.cabs.definition import CabError, parse_cab
from poundcake.remediation.cabs.run_safety import RunSafety
from poundcake.remediation.cabs.service import check_run_safety
from poundcake.remediation.tracking.observe import StepRecord, abandoned_only

BASE: dict[str, Any] = {
    "name": "restart_web",
    "alert_name_pattern": "^WebDown$",
    "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
}


def cab(**fields: Any) -> Any:
    return parse_cab({**BASE, **fields})


def test_the_defaults_keep_todays_behaviour_and_are_shown() -> None:
    parsed = cab()
    assert parsed.run_safety == RunSafety()
    shown = parsed.document()
    assert shown["silence"] is False
    assert shown["verify_within"] is None
    assert shown["on_unverified"] is None
    assert shown["idempotent"] is False
    assert shown["retry"] == {"on_abandoned": 0}


@pytest.mark.parametrize(
    ("given", "seconds"), [(90, 90), ("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600)]
)
def test_verify_within_takes_seconds_or_a_duration(given: Any, seconds: int) -> None:
    assert cab(verify_within=given).run_safety.verify_within == seconds


def test_idempotent_means_two_resumes_unless_retry_says() -> None:
    assert cab(idempotent=True).run_safety.retry_on_abandoned == 2
    assert cab(idempotent=True, retry={"on_abandoned": 5}).run_safety.retry_on_abandoned == 5
    assert cab(retry={"on_abandoned": 1}).run_safety.retry_on_abandoned == 1


def test_the_file_document_parses_back_to_the_same_cab() -> None:
    parsed = cab(silence=True, verify_within="2m", on_unverified="escalate", idempotent=True)
    again = parse_cab(parsed.file_document())
    assert again.run_safety == parsed.run_safety
    assert RunSafety.from_document(parsed.run_safety.document()) == parsed.run_safety


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"silence": "yes"}, "silence: must be true or false"),
        ({"idempotent": 1}, "idempotent: must be true or false"),
        ({"verify_within": 0}, "verify_within: must be a duration"),
        ({"verify_within": "soon"}, "verify_within: must be a duration"),
        ({"verify_within": True}, "verify_within: must be a duration"),
        ({"on_unverified": "escalate"}, "on_unverified: needs verify_within"),
        ({"verify_within": 60, "on_unverified": ""}, "on_unverified: must name a CAB"),
        ({"retry": 3}, "retry: must be a mapping"),
        ({"retry": {"on_failure": 1}}, "retry.on_failure: is not a retry field"),
        ({"retry": {"on_abandoned": -1}}, "retry.on_abandoned: must be a whole number"),
        ({"retry": {"on_abandoned": 11}}, "retry.on_abandoned: must be a whole number"),
        (
            {"idempotent": False, "retry": {"on_abandoned": 2}},
            "retry.on_abandoned: re-runs abandoned steps, which idempotent: false forbids",
        ),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(CabError, match=named):
        cab(**fields)


def test_cross_cab_and_configuration_checks() -> None:
    silenced = cab(silence=True)
    with pytest.raises(CabError, match="silence: needs POUNDCAKE_ALERTMANAGER_URL"):
        check_run_safety([silenced], alertmanager_url=None)
    check_run_safety([silenced], alertmanager_url="http://127.0.0.1:9093")
    missing = cab(verify_within=60, on_unverified="page_someone")
    with pytest.raises(CabError, match='on_unverified: no CAB named "page_someone"'):
        check_run_safety([missing], alertmanager_url=None)
    itself = cab(verify_within=60, on_unverified="restart_web")
    with pytest.raises(CabError, match="on_unverified: cannot run the same CAB again"):
        check_run_safety([itself], alertmanager_url=None)
    other = parse_cab({**BASE, "name": "page_someone"})
    check_run_safety([missing, other], alertmanager_url=None)


def step(status: str | None, matched: bool | None = None) -> StepRecord:
    return StepRecord(execution_id="x", status=status, result_matched=matched, cab_name="c")


@pytest.mark.parametrize(
    ("workflow", "steps", "expected"),
    [
        ("abandoned", [step("succeeded", True), step("abandoned")], True),
        ("abandoned", [step("succeeded", True), step("running")], True),
        ("abandoned", [], True),
        ("failed", [step("succeeded", True), step("abandoned", False), step("skipped")], True),
        ("failed", [step("succeeded", True), step("failed", False)], False),
        ("failed", [step("abandoned", False), step("failed", False)], False),
        ("failed", [step("succeeded", False), step("abandoned", False)], False),
        ("abandoned", [step("timeout")], False),
        ("canceled", [step("abandoned")], False),
        ("succeeded", [step("succeeded", True)], False),
    ],
)
def test_only_a_run_that_lost_work_to_a_crash_counts_as_abandoned(
    workflow: str, steps: list[StepRecord], expected: bool
) -> None:
    assert abandoned_only(workflow, steps) is expected
