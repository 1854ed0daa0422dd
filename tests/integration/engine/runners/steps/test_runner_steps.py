"""The steps runner through the real scheduler and action runner, on MariaDB and RabbitMQ."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.executions.service import cancel_execution
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.registration import register_packs
from poundcake.engine.runners.steps.runner import STEP_RESULT_MAX_BYTES, StepsRunner
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.shell_engine import statuses

PACK = "steptests"
ALERT = {"labels": {"alertname": "DiskFull", "mountpoint": "/var"}, "annotations": {}}

WORKFLOWS = {
    "all_ok": """
steps:
  - name: first
    ref: core.local
    parameters: {cmd: "printf %s {{ alert.labels.mountpoint }}"}
    expected_result: {succeeded: true, stdout_contains: /var}
  - name: second
    ref: core.local
    parameters: {cmd: "printf '%s-%s' {{ first.stdout }} {{ request_id }}"}
    expected_result: {return_code: 0, result: {stdout: "/var-req-1"}}
  - name: big
    ref: core.local
    parameters: {cmd: "head -c 40000 /dev/zero | tr '\\\\0' a"}
    expected_result: {stdout_matches: "^a{40000}$"}
  - name: done
    ref: core.noop
""",
    "mismatch_stop": """
steps:
  - name: first
    ref: core.local
    parameters: {cmd: "echo hello"}
  - name: second
    ref: core.local
    parameters: {cmd: "echo hello"}
    expected_result: {stdout_contains: bye}
  - name: third
    ref: core.local
    parameters: {cmd: "echo never"}
""",
    "mismatch_continue": """
stop_on_first_failure: false
steps:
  - name: first
    ref: core.local
    parameters: {cmd: "echo hello"}
  - name: second
    ref: core.local
    parameters: {cmd: "echo hello; exit 4"}
  - name: third
    ref: core.local
    parameters: {cmd: "echo still here"}
""",
    "hostile": """
steps:
  - name: show
    ref: core.local
    parameters:
      cmd: "printf '%s|%s' {{ alert.labels.mountpoint }} {{ alert.labels.summary }}"
""",
    "resumable": """
steps:
  - name: first
    ref: core.local
    parameters: {cmd: "echo first >> {{ alert.labels.marker }}; sleep 2"}
  - name: second
    ref: core.local
    parameters: {cmd: "echo second >> {{ alert.labels.marker }}"}
""",
    "render_error": """
steps:
  - name: first
    ref: core.local
    parameters: {cmd: "echo {{ alert.labels.no_such_label }}"}
  - name: second
    ref: core.noop
""",
    "missing_action": """
steps:
  - name: first
    ref: core.noop
  - name: second
    ref: steptests.does_not_exist
""",
    "timeout": """
steps:
  - name: slow
    ref: core.local
    parameters: {cmd: "sleep 30"}
    timeout_seconds: 1
  - name: after
    ref: core.noop
""",
    "stubborn_timeout": """
steps:
  - name: slow
    ref: steptests.stubborn
    parameters: {cmd: "sleep 30"}
    timeout_seconds: 1
""",
    "three_sleeps": """
steps:
  - name: one
    ref: core.local
    parameters: {cmd: "sleep 2; echo one"}
  - name: two
    ref: core.local
    parameters: {cmd: "echo two"}
  - name: three
    ref: core.local
    parameters: {cmd: "echo three"}
""",
    "secret_step": """
steps:
  - name: guarded
    ref: core.local
    parameters: {cmd: "printf done", sudo_password: "{{ alert.labels.mountpoint }}-pw"}
    expected_result: {stdout_contains: done}
""",
}

STEPS_ACTION = """
name: {name}
runner_type: steps
description: A steps workflow for the tests.
enabled: true
entry_point: workflows/{name}.yaml
parameters:
  alert:
    type: object
    required: true
  request_id:
    type: string
"""

# A shell action that does not let a step pass its timeout: only the runner's wait ends it.
STUBBORN_ACTION = """
name: stubborn
runner_type: local-shell-cmd
description: A shell command whose timeout is fixed.
enabled: true
entry_point: ""
parameters:
  cmd:
    type: string
    required: true
  timeout:
    default: 60
    immutable: true
"""


def write_pack(packs_dir: Path) -> None:
    pack = packs_dir / PACK
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        f"ref: {PACK}\nname: {PACK}\ndescription: Steps tests.\nversion: 1.0.0\nauthor: tests\n"
    )
    for name, text in WORKFLOWS.items():
        (pack / "actions" / f"{name}.yaml").write_text(STEPS_ACTION.format(name=name))
        (pack / "actions" / "workflows" / f"{name}.yaml").write_text(text)
    (pack / "actions" / "stubborn.yaml").write_text(STUBBORN_ACTION)


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    packs_dir = tmp_path / "packs"
    write_pack(packs_dir)
    extra = (
        f"\n[system]\ndata_dir = {tmp_path / 'data'}\n\n[content]\npacks_base_paths = {packs_dir}\n"
    )
    with engine_stack(tmp_path, scratch_database, extra) as running:
        with unit_of_work(running.runtime.sessions) as session:
            register_packs(
                session=session,
                locations=content_locations(running.config),
                packs=None,
                types=None,
                system_user="stanley",
            )
        running.start_scheduler()
        running.start_runner(concurrency=3)
        yield running


def run_workflow(
    stack: EngineStack, name: str, alert: dict[str, Any] | None = None, **kw: Any
) -> str:
    parameters = {"alert": alert or ALERT, "request_id": "req-1"}
    return stack.request(f"{PACK}.{name}", parameters, **kw).execution_id


def children_of(stack: EngineStack, execution_id: str) -> list[ExecutionDB]:
    return [stack.execution(child) for child in stack.execution(execution_id).children]


def summary(done: ExecutionDB) -> list[tuple[str, str, bool | None]]:
    return [(s["name"], s["status"], s["result_matched"]) for s in done.result["steps"]]


def cancel(stack: EngineStack, execution_id: str) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        assert cancel_execution(session, execution_id, user="tester").refused is None


def first_child(stack: EngineStack, execution_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not stack.execution(execution_id).children:
        assert time.monotonic() < deadline, "the workflow never requested its first step"
        time.sleep(0.02)
    return str(stack.execution(execution_id).children[0])


def test_every_step_runs_and_matches(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "all_ok"))
    assert done.status == "succeeded", done.result
    assert summary(done) == [
        ("first", "succeeded", True),
        ("second", "succeeded", True),
        ("big", "succeeded", True),
        ("done", "succeeded", True),
    ]
    assert done.result["stop_on_first_failure"] is True
    assert done.result["stopped_at"] is None
    assert done.result["canceled"] is False
    steps = done.result["steps"]
    children = children_of(stack, done.id)
    assert [step["execution_id"] for step in steps] == [child.id for child in children]
    assert [step["step_order"] for step in steps] == [1, 2, 3, 4]
    assert [step["action_ref"] for step in steps] == ["core.local"] * 3 + ["core.noop"]
    assert steps[0]["expected_result"] == {"succeeded": True, "stdout_contains": "/var"}
    assert steps[3]["expected_result"] is None
    assert steps[0]["result"]["stdout"] == "/var"
    assert children[1].parameters == {"cmd": "printf '%s-%s' /var req-1"}
    assert steps[1]["result"]["stdout"] == "/var-req-1"
    assert len(json.dumps(steps[2]["result"])) <= STEP_RESULT_MAX_BYTES
    assert len(stack.execution(steps[2]["execution_id"]).result["stdout"]) == 40000
    for order, child in enumerate(children, start=1):
        assert child.parent == done.id
        assert child.context["step_order"] == order
        assert child.context["parent"]["execution_id"] == done.id


def test_a_mismatch_stops_the_run_and_skips_the_rest(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "mismatch_stop"))
    assert done.status == "failed"
    assert summary(done) == [
        ("first", "succeeded", True),
        ("second", "succeeded", False),
        ("third", "skipped", None),
    ]
    assert done.result["stopped_at"] == "second"
    second, third = done.result["steps"][1:]
    assert second["mismatches"] == ["stdout_contains: 'bye' not in 'hello'"]
    assert second["expected_result"] == {"stdout_contains": "bye"}
    assert third["execution_id"] is None
    assert third["result"] is None
    assert len(done.children) == 2


def test_without_stop_on_first_failure_every_step_runs(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "mismatch_continue"))
    assert done.status == "failed"
    assert summary(done) == [
        ("first", "succeeded", True),
        ("second", "failed", False),
        ("third", "succeeded", True),
    ]
    assert done.result["stop_on_first_failure"] is False
    assert done.result["stopped_at"] is None
    assert len(done.children) == 3


def test_hostile_alert_labels_stay_data(stack: EngineStack, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    label = f"$(touch {marker}); rm -rf {tmp_path}/nothing `touch {marker}`"
    alert = {"labels": {"mountpoint": label, "summary": "{{ 7 * 7 }}"}}
    # As a rule requests it: the trigger's values are final, never rendered again.
    done = stack.wait(run_workflow(stack, "hostile", alert, rendered=True))
    assert done.status == "succeeded", done.result
    assert done.result["steps"][0]["result"]["stdout"] == f"{label}|{{{{ 7 * 7 }}}}"
    assert not marker.exists()


def test_request_and_alert_ids_reach_every_step(stack: EngineStack) -> None:
    context = {"request_id": "req-1", "alert_id": "a1" * 12, "unrelated": "x"}
    done = stack.wait(run_workflow(stack, "mismatch_continue", context=context))
    children = children_of(stack, done.id)
    assert len(children) == 3
    names = ["first", "second", "third"]
    for order, (child, name) in enumerate(zip(children, names, strict=True), start=1):
        assert child.context["request_id"] == "req-1"
        assert child.context["alert_id"] == "a1" * 12
        assert child.context["step_order"] == order
        assert child.context["step"] == name
        assert "unrelated" not in child.context
        assert child.context["parent"]["request_id"] == "req-1"


def test_a_render_error_fails_the_step_without_running_it(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "render_error"))
    assert done.status == "failed"
    assert summary(done) == [("first", "failed", False), ("second", "skipped", None)]
    first = done.result["steps"][0]
    assert first["execution_id"] is None
    assert first["result"]["error"].startswith(
        'Step "first": rendering parameter "cmd" failed: failed to render'
    )
    assert "no_such_label" in first["result"]["error"]
    assert done.children == []


def test_a_missing_action_fails_before_any_step_runs(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "missing_action"))
    assert done.status == "failed"
    assert done.result["error"] == (
        'Step "second": Action "steptests.does_not_exist" cannot be found.'
    )
    assert summary(done) == [("first", "skipped", None), ("second", "skipped", None)]
    assert done.children == []


def test_timeout_seconds_is_passed_as_the_action_timeout(stack: EngineStack) -> None:
    started = time.monotonic()
    done = stack.wait(run_workflow(stack, "timeout"), timeout=30)
    assert time.monotonic() - started < 15
    assert done.status == "failed"
    assert summary(done) == [("slow", "timeout", False), ("after", "skipped", None)]
    [child] = children_of(stack, done.id)
    assert child.parameters["timeout"] == 1
    assert child.status == "timeout"


def test_a_step_past_its_timeout_is_canceled(
    stack: EngineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StepsRunner, "timeout_grace_seconds", 0.5)
    started = time.monotonic()
    done = stack.wait(run_workflow(stack, "stubborn_timeout"), timeout=30)
    assert time.monotonic() - started < 15
    assert done.status == "failed"
    assert summary(done) == [("slow", "timeout", False)]
    assert done.result["steps"][0]["mismatches"] == [
        "timeout_seconds: not finished within 1 seconds; canceled"
    ]
    [child] = children_of(stack, done.id)
    assert "timeout" not in child.parameters
    assert child.status == "canceled"


def test_cancel_lets_the_running_step_finish_and_starts_no_more(stack: EngineStack) -> None:
    workflow_id = run_workflow(stack, "three_sleeps")
    child_id = first_child(stack, workflow_id)
    stack.wait(child_id, {"running"})
    cancel(stack, workflow_id)
    assert stack.execution(workflow_id).status == "canceling"
    assert stack.execution(child_id).status == "running"
    done = stack.wait(workflow_id, timeout=30)
    assert done.status == "canceled"
    assert summary(done) == [
        ("one", "succeeded", True),
        ("two", "canceled", None),
        ("three", "canceled", None),
    ]
    assert done.result["canceled"] is True
    assert done.result["stopped_at"] is None
    assert done.result["message"] == "Action canceled by user."
    child = stack.execution(child_id)
    assert child.status == "succeeded"
    assert child.result["stdout"] == "one"
    assert done.children == [child_id]


def test_cancel_before_a_step_started_cancels_that_step(stack: EngineStack) -> None:
    # Three long commands hold the runner's three action threads (the workflow runs in the
    # workflow pool), so its first step waits, scheduled, for a thread.
    sleepers = [stack.request("core.local", {"cmd": "sleep 30"}).execution_id for _ in range(3)]
    for sleeper in sleepers:
        stack.wait(sleeper, {"running"})
    workflow_id = run_workflow(stack, "three_sleeps")
    child_id = first_child(stack, workflow_id)
    stack.wait(workflow_id, {"running"})
    assert stack.execution(child_id).status in ("requested", "scheduled")
    cancel(stack, workflow_id)
    assert stack.execution(child_id).status == "canceled"
    done = stack.wait(workflow_id, timeout=15)
    assert done.status == "canceled"
    assert summary(done) == [
        ("one", "canceled", False),
        ("two", "canceled", None),
        ("three", "canceled", None),
    ]
    assert done.result["steps"][0]["execution_id"] == child_id
    assert done.children == [child_id]
    for sleeper in sleepers:
        cancel(stack, sleeper)


def test_more_workflows_than_action_threads_all_finish(stack: EngineStack) -> None:
    # Workflows wait for their steps in a pool of their own: ten of them at once never take
    # the runner's three action threads away from their steps (no deadlock).
    workflow_ids = [run_workflow(stack, "all_ok") for _ in range(10)]
    for workflow_id in workflow_ids:
        done = stack.wait(workflow_id, timeout=120)
        assert done.status == "succeeded", done.result


def test_a_step_secret_parameter_is_stored_sealed(stack: EngineStack) -> None:
    done = stack.wait(run_workflow(stack, "secret_step"))
    assert done.status == "succeeded", done.result
    [child] = children_of(stack, done.id)
    assert child.status == "succeeded"
    assert "/var-pw" not in json.dumps([child.parameters, child.liveaction])
    assert set(child.parameters["sudo_password"]) == {"__secret__"}
    opened = open_parameters(child.parameters, {"sudo_password"}, stack.cipher())
    assert opened == {"cmd": "printf done", "sudo_password": "/var-pw"}


def test_a_workflow_in_flight_at_shutdown_is_released_and_resumed(
    stack: EngineStack, tmp_path: Path
) -> None:
    """The scheduler and the runner stop together while a step runs: the step finishes, the
    next one stays requested, the workflow goes back to ``scheduled`` (not ``abandoned``), and
    after a restart it resumes with the next step; no step runs twice."""
    marker = tmp_path / "marker"
    alert = {"labels": {"alertname": "DiskFull", "marker": str(marker)}, "annotations": {}}
    workflow = run_workflow(stack, "resumable", alert)
    first = first_child(stack, workflow)
    stack.wait(first, {"running"}, timeout=30)

    stack.stop.set()
    for thread in stack.threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a service did not drain"

    released = stack.execution(workflow)
    assert released.status == "scheduled", released.result
    assert statuses(released) == ["requested", "scheduled", "running", "scheduled"]
    children = children_of(stack, workflow)
    assert [child.status for child in children][:1] == ["succeeded"]
    assert all(child.status in ("requested", "scheduled") for child in children[1:])
    assert marker.read_text() == "first\n"

    stack.stop, stack.threads = threading.Event(), []
    stack.start_scheduler()
    stack.start_runner(concurrency=3)
    done = stack.wait(workflow)
    assert done.status == "succeeded", done.result
    assert summary(done) == [("first", "succeeded", True), ("second", "succeeded", True)]
    assert statuses(done)[-3:] == ["scheduled", "running", "succeeded"]
    assert done.result["steps"][0]["execution_id"] == first
    assert len(done.children) == 2
    assert marker.read_text() == "first\nsecond\n"


def test_a_run_resuming_an_abandoned_one_reruns_only_its_abandoned_steps(
    stack: EngineStack, tmp_path: Path
) -> None:
    """A workflow whose context names ``resume_from`` takes over the earlier run's steps: one
    that did not end ``abandoned`` is taken as it is (its child, not a new one), an abandoned
    one runs again; a second resume follows the chain."""
    marker = tmp_path / "marker"
    alert = {"labels": {"alertname": "DiskFull", "marker": str(marker)}, "annotations": {}}
    earlier = stack.wait(run_workflow(stack, "resumable", alert))
    assert earlier.status == "succeeded", earlier.result
    first, second = earlier.children
    with unit_of_work(stack.runtime.sessions) as session:
        session.get(ExecutionDB, second).status = "abandoned"  # type: ignore[union-attr]

    resumed = stack.wait(
        run_workflow(stack, "resumable", alert, context={"resume_from": earlier.id})
    )
    assert resumed.status == "succeeded", resumed.result
    steps = resumed.result["steps"]
    assert steps[0]["execution_id"] == first
    assert steps[1]["execution_id"] != second
    assert len(resumed.children) == 1
    assert marker.read_text() == "first\nsecond\nsecond\n"

    again = stack.wait(run_workflow(stack, "resumable", alert, context={"resume_from": resumed.id}))
    assert [step["execution_id"] for step in again.result["steps"]] == [
        first,
        steps[1]["execution_id"],
    ]
    assert again.children == []
    assert marker.read_text() == "first\nsecond\nsecond\n"
