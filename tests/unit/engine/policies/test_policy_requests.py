"""What the policies API accepts before it looks at the database, and Orquesta's check of the
tasks its ``notify`` parameter names."""

from __future__ import annotations

import pytest

from poundcake.engine.policies.service import policy_from_document
from poundcake.engine.runners.orquesta.runner import unknown_notify_tasks
from poundcake.exceptions import ValidationError

POLICY = {
    "name": "busy.concurrency",
    "pack": "mine",
    "resource_ref": "mine.busy",
    "policy_type": "action.concurrency",
    "parameters": {"threshold": 1},
}


def test_a_policy_document_becomes_a_spec() -> None:
    spec = policy_from_document(
        {**POLICY, "id": "x", "uid": "policy:mine:busy.concurrency", "enabled": False}
    )
    assert (spec.ref, spec.resource_ref, spec.enabled) == (
        "mine.busy.concurrency",
        "mine.busy",
        False,
    )
    assert policy_from_document({**POLICY, "pack": None}, pack="theirs").pack == "theirs"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"threshold": 3}, "threshold"),
        ({"resource_ref": None}, "resource_ref"),
        ({"pack": None}, "pack"),
        ({"parameters": [1]}, "parameters"),
    ],
)
def test_a_bad_policy_document_is_refused_by_field(change: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        policy_from_document({**POLICY, **change})


def test_notify_tasks_the_workflow_lacks_are_named() -> None:
    document = {"version": 1.0, "tasks": {"first": {}, "second": {}}}
    assert unknown_notify_tasks(["first"], document) == ""
    assert unknown_notify_tasks(["first", "zeta", "alpha"], document) == (
        "The following tasks in the notify parameter do not exist in the workflow definition: "
        "alpha, zeta."
    )
