"""The conductor on its own: workflows we write, run by a small in-process simulation.

The simulation plays the service's part: it asks the conductor what to run, marks it running,
completes action-less tasks at once, and reports each action's outcome in request order, as the
workflow engine does with real executions. Outcomes are scripted per task (and item) attempt.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.conductor import Conductor
from poundcake.engine.workflows.definition import load_definition
from poundcake.engine.workflows.events import ActionEvent, ActionSpec, ConductorError
from poundcake.engine.workflows.graph import WorkflowGraph
from poundcake.engine.workflows.state import WorkflowState

RUNTIME = {"st2": {"user": "stanley", "action_execution_id": "a1"}, "parent": {"user": "stanley"}}


@dataclass
class MemoryRuntime:
    """The conductor's surroundings, kept in memory."""

    contexts: list[dict[str, Any]] = field(default_factory=list)
    items: dict[tuple[str, int], dict[int, ActionSpec]] = field(default_factory=dict)
    records: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    datastore: None = None

    def context(self, index: int) -> Mapping[str, Any]:
        return self.contexts[index]

    def add_context(self, values: Mapping[str, Any]) -> int:
        self.contexts.append(dict(values))
        return len(self.contexts) - 1

    def task_record(self, task_id: str, route: int) -> Mapping[str, Any] | None:
        return self.records.get((task_id, route))

    def item_specs(self, task_id: str, route: int, item_ids: Sequence[int]) -> list[ActionSpec]:
        specs = self.items[(task_id, route)]
        return [specs[item_id] for item_id in item_ids]


@dataclass
class Run:
    """A workflow being simulated."""

    conductor: Conductor
    runtime: MemoryRuntime
    queue: list[tuple[str, int, int | None, ActionSpec]] = field(default_factory=list)
    attempts: dict[tuple[str, int, int | None], int] = field(default_factory=dict)
    requested: list[tuple[str, Any]] = field(default_factory=list)
    item_results: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    item_status: dict[tuple[str, int, int], str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.conductor.state.status

    def statuses(self) -> list[tuple[str, int, str]]:
        return [(e["id"], e["route"], e.get("status")) for e in self.conductor.state.sequence]

    def request_next(self) -> None:
        conductor = self.conductor
        while True:
            requests = conductor.next_tasks()
            if not requests:
                return
            for request in requests:
                if request.items is not None:
                    self.runtime.items[(request.task_id, request.route)] = {
                        spec.item_id: spec for spec in request.items if spec.item_id is not None
                    }
                conductor.mark_running(request)
                for action in request.actions:
                    if action.item_id is not None:
                        key = (request.task_id, request.route, action.item_id)
                        self.item_status[key] = m.RUNNING
            for request in requests:
                task = conductor.definition.task(request.task_id)
                if task.action is None or (request.itemized and request.items_count == 0):
                    result = [] if request.itemized else None
                    conductor.update_task(
                        request.task_id, request.route, ActionEvent(m.SUCCEEDED, result)
                    )
                    continue
                for action in request.actions:
                    self.queue.append((request.task_id, request.route, action.item_id, action))
                    self.requested.append((request.task_id, action.input))
                    if request.itemized:
                        self.item_results.setdefault(
                            (request.task_id, request.route), [None] * int(request.items_count or 0)
                        )

    def finish_next(self, outcome: Any = None) -> tuple[str, int, int | None]:
        """Report the oldest requested action's outcome: ``outcome`` is a status, a (status,
        result) pair, or a function of (task, attempt, item) returning one."""
        task_id, route, item_id, action = self.queue.pop(0)
        key = (task_id, route, item_id)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if callable(outcome):
            outcome = outcome(task_id, self.attempts[key], item_id)
        status, result = (outcome, None) if isinstance(outcome, str) else outcome or (None, None)
        status = status or m.SUCCEEDED
        if result is None:
            result = {"stdout": f"{task_id}:{action.input}", "succeeded": status == m.SUCCEEDED}
        if item_id is None:
            event = ActionEvent(status, result=result)
        else:
            results = self.item_results[(task_id, route)]
            results[item_id] = result
            previous = self.item_status[(task_id, route, item_id)]
            self.item_status[(task_id, route, item_id)] = status
            snapshot = list(results)
            event = ActionEvent(
                status, result, item_id=item_id, previous=previous, accumulated=lambda: snapshot
            )
        self.conductor.update_task(task_id, route, event)
        return key

    def run(self, outcome: Any = None, limit: int = 200) -> Run:
        """Run until nothing is left to do."""
        self.request_next()
        for _ in range(limit):
            if not self.queue:
                break
            self.finish_next(outcome)
            self.request_next()
        self.conductor.render_output()
        return self


def start(text: str, inputs: Mapping[str, Any] | None = None) -> Run:
    definition = load_definition(textwrap.dedent(text))
    runtime = MemoryRuntime()
    conductor = Conductor(definition, WorkflowGraph(definition), WorkflowState(), runtime)
    conductor.start(inputs or {}, RUNTIME)
    if conductor.state.status not in m.ABENDED:
        conductor.request_status(m.REQUESTED)
        conductor.request_status(m.RUNNING)
    return Run(conductor, runtime)


def failing(*tasks: str, attempts: Sequence[int] = (1,)) -> Any:
    def outcome(task_id: str, attempt: int, item_id: int | None) -> str:
        name = task_id if item_id is None else f"{task_id}[{item_id}]"
        return m.FAILED if name in tasks and attempt in attempts else m.SUCCEEDED

    return outcome


SEQUENTIAL = """
    version: 1.0
    input:
      - who
      - greeting: hello
    vars:
      - shout: <% ctx(greeting).toUpper() %>
    tasks:
      first:
        action: core.echo message="<% ctx(shout) %>, <% ctx(who) %>"
        next:
          - when: <% succeeded() %>
            publish: said=<% result().stdout %>
            do: second
      second:
        action: core.echo
        input:
          message: "{{ ctx('said') }}!"
        next:
          - publish:
              - last: <% result().stdout %>
    output:
      - said: <% ctx(said) %>
      - last: <% ctx(last) %>
"""


def test_a_sequence_renders_inputs_vars_and_publishes_into_the_output() -> None:
    run = start(SEQUENTIAL, {"who": "ops"}).run()

    assert run.status == m.SUCCEEDED
    assert run.requested == [
        ("first", {"message": "HELLO, ops"}),
        ("second", {"message": "first:{'message': 'HELLO, ops'}!"}),
    ]
    assert run.conductor.state.output == {
        "said": "first:{'message': 'HELLO, ops'}",
        "last": "second:{'message': \"first:{'message': 'HELLO, ops'}!\"}",
    }
    assert [s for s in run.statuses() if s[0] != "continue"] == [
        ("first", 0, m.SUCCEEDED),
        ("second", 0, m.SUCCEEDED),
    ]


BRANCH = """
    version: 1.0
    tasks:
      check:
        action: core.local cmd="test"
        next:
          - when: <% succeeded() %>
            do: good
          - when: <% failed() %>
            publish: reason=<% result().stdout %>
            do: repair
      good:
        action: core.noop
      repair:
        action: core.noop
    output:
      - reason: <% ctx().get(reason) %>
"""


def test_a_failure_taken_by_a_transition_is_remediated_and_the_workflow_succeeds() -> None:
    run = start(BRANCH).run(failing("check"))

    assert run.status == m.SUCCEEDED
    assert [task for task, _ in run.requested] == ["check", "repair"]
    assert run.conductor.state.output == {"reason": "check:{'cmd': 'test'}"}
    assert run.conductor.state.errors == [
        {
            "type": "error",
            "message": "Execution failed. See result for details.",
            "task_id": "check",
            "result": {"stdout": "check:{'cmd': 'test'}", "succeeded": False},
        }
    ]


JOIN = """
    version: 1.0
    tasks:
      split:
        next:
          - do: [a, b, c]
      a:
        action: core.noop
        next:
          - publish: x=1
            do: all_of_them
      b:
        action: core.noop
        next:
          - publish: y=2
            do: [all_of_them, two_of_them]
      c:
        action: core.noop
        next:
          - when: <% succeeded() %>
            do: [all_of_them, two_of_them]
      all_of_them:
        join: all
        action: core.noop
      two_of_them:
        join: 2
        action: core.noop
    output:
      - sum: <% ctx(x) + ctx(y) %>
"""


def test_joins_wait_for_all_or_for_a_count_and_merge_the_branches_contexts() -> None:
    run = start(JOIN).run()

    assert run.status == m.SUCCEEDED
    names = [task for task, _ in run.requested]
    assert sorted(names) == ["a", "all_of_them", "b", "c", "two_of_them"]
    assert names.index("all_of_them") > max(names.index(t) for t in "abc")
    assert run.conductor.state.output == {"sum": 3}


def test_a_join_that_can_no_longer_be_satisfied_fails_the_workflow() -> None:
    text = """
        version: 1.0
        tasks:
          split:
            next:
              - do: [a, b]
          a:
            action: core.noop
            next:
              - when: <% succeeded() %>
                do: meet
          b:
            action: core.noop
            next:
              - when: <% succeeded() %>
                do: meet
              - when: <% failed() %>
                do: noop
          meet:
            join: all
            action: core.noop
    """
    run = start(text).run(failing("b"))

    assert run.status == m.FAILED
    assert run.conductor.state.errors[-1] == {
        "type": "error",
        "message": 'UnreachableJoinError: The join task|route "meet|0" is partially satisfied '
        "but unreachable.",
        "task_id": "meet",
        "route": 0,
    }


CYCLE = """
    version: 1.0
    vars:
      - count: 0
    tasks:
      init:
        action: core.noop
        next:
          - do: step
      step:
        action: core.noop
        next:
          - when: <% ctx(count) < 3 %>
            publish: count=<% ctx(count) + 1 %>
            do: step
          - when: <% ctx(count) >= 3 %>
            do: done
      done:
        action: core.noop
    output:
      - count: <% ctx(count) %>
"""


def test_a_cycle_runs_until_its_condition_and_stays_on_one_route() -> None:
    run = start(CYCLE).run()

    assert run.status == m.SUCCEEDED
    assert [task for task, _ in run.requested] == ["init", "step", "step", "step", "step", "done"]
    assert run.conductor.state.output == {"count": 3}
    assert run.conductor.state.routes == [[]]


ITEMS = """
    version: 1.0
    input:
      - hosts
      - ports
    tasks:
      probe:
        with:
          items: host, port in <% zip(ctx(hosts), ctx(ports)) %>
          concurrency: 2
        action: core.local cmd="probe <% item(host) %>:<% item(port) %>"
        next:
          - publish: outs=<% result().select($.stdout) %>
    output:
      - outs: <% ctx(outs) %>
"""


def test_with_items_zips_names_each_item_and_keeps_to_its_concurrency() -> None:
    run = start(ITEMS, {"hosts": ["a", "b", "c", "d", "e"], "ports": [1, 2, 3, 4, 5]})
    run.request_next()
    assert len(run.queue) == 2, "two items at a time"
    staged = run.conductor.staged("probe", 0)
    assert staged is not None
    assert staged["items"]["statuses"] == {m.RUNNING: 2, m.UNSET: 3}
    run.finish_next()
    run.request_next()
    assert len(run.queue) == 2
    run.run()

    assert run.status == m.SUCCEEDED
    assert [spec["cmd"] for _, spec in run.requested] == [
        "probe a:1",
        "probe b:2",
        "probe c:3",
        "probe d:4",
        "probe e:5",
    ]
    assert run.conductor.state.output == {
        "outs": [
            f"probe:{{'cmd': 'probe {h}:{p}'}}" for h, p in zip("abcde", range(1, 6), strict=True)
        ]
    }


def test_a_failed_item_fails_its_task_once_the_running_items_finish() -> None:
    run = start(ITEMS, {"hosts": ["a", "b", "c"], "ports": [1, 2, 3]}).run(failing("probe[0]"))

    # As in Orquesta, the failure takes effect once no item is running: the free slot still
    # starts the next item meanwhile.
    assert run.status == m.FAILED
    assert [spec["cmd"] for _, spec in run.requested] == ["probe a:1", "probe b:2", "probe c:3"]
    assert run.statuses() == [("probe", 0, m.FAILED), ("continue", 0, m.SUCCEEDED)]


def test_an_empty_list_of_items_succeeds_at_once() -> None:
    run = start(ITEMS, {"hosts": [], "ports": []}).run()

    assert run.status == m.SUCCEEDED
    assert run.requested == []
    assert run.conductor.state.output == {"outs": []}


RETRY = """
    version: 1.0
    tasks:
      flaky:
        action: core.local cmd=flaky
        retry:
          when: <% failed() %>
          count: 2
          delay: 3
        next:
          - when: <% succeeded() %>
            do: after
      after:
        action: core.noop
"""


def test_retry_runs_a_failed_task_again_with_its_delay_until_it_succeeds() -> None:
    run = start(RETRY)
    run.run(failing("flaky", attempts=(1,)))

    assert run.status == m.SUCCEEDED
    assert [task for task, _ in run.requested] == ["flaky", "flaky", "after"]
    entry = run.conductor.entry("flaky", 0)
    assert entry is not None
    assert entry["retry"] == {"when": "<% failed() %>", "count": 2, "delay": 3, "tally": 1}


def test_retry_that_runs_out_leaves_the_task_failed() -> None:
    run = start(RETRY).run(failing("flaky", attempts=(1, 2, 3)))

    assert run.status == m.FAILED
    assert [task for task, _ in run.requested] == ["flaky", "flaky", "flaky"]


def test_the_retry_command_retries_three_times_when_its_condition_holds() -> None:
    text = """
        version: 1.0
        tasks:
          poll:
            action: core.noop
            next:
              - when: <% result().stdout != "ready" %>
                do: retry
              - when: <% result().stdout = "ready" %>
                do: use
          use:
            action: core.noop
    """

    def outcome(task: str, attempt: int, item: int | None) -> Any:
        stdout = "ready" if task == "poll" and attempt == 3 else "wait"
        return m.SUCCEEDED, {"stdout": stdout}

    run = start(text).run(outcome)

    assert run.status == m.SUCCEEDED
    assert [task for task, _ in run.requested] == ["poll", "poll", "poll", "use"]


@pytest.mark.parametrize(
    ("command", "status", "errors"),
    [
        ("noop", m.SUCCEEDED, 1),
        ("continue", m.FAILED, 1),
        ("fail", m.FAILED, 2),
    ],
)
def test_engine_commands_after_a_failure(command: str, status: str, errors: int) -> None:
    text = f"""
        version: 1.0
        tasks:
          work:
            action: core.noop
            next:
              - when: <% failed() %>
                publish: handled=true
                do: {command}
        output:
          - handled: <% ctx(handled) %>
    """
    run = start(text).run(failing("work"))

    assert run.status == status
    assert run.conductor.state.output == {"handled": True}
    assert len(run.conductor.state.errors) == errors


def test_a_task_run_with_fail_still_runs_its_remediation_sibling() -> None:
    text = """
        version: 1.0
        tasks:
          work:
            action: core.noop
            next:
              - when: <% failed() %>
                do: [cleanup, fail]
          cleanup:
            action: core.noop
    """
    run = start(text).run(failing("work"))

    assert run.status == m.FAILED
    assert [task for task, _ in run.requested] == ["work", "cleanup"]


def test_an_expression_error_in_a_transition_fails_the_workflow_with_where_it_was() -> None:
    text = """
        version: 1.0
        tasks:
          one:
            action: core.noop
            next:
              - when: <% result().missing %>
                do: two
          two:
            action: core.noop
    """
    run = start(text).run()

    assert run.status == m.FAILED
    assert run.conductor.state.errors == [
        {
            "type": "error",
            "message": "YaqlEvaluationException: Unable to resolve key 'missing' in expression "
            "'<% result().missing %>' from context.",
            "task_id": "one",
            "route": 0,
            "task_transition_id": "two__t0",
        }
    ]


def test_input_that_cannot_render_fails_the_workflow_before_any_task() -> None:
    text = """
        version: 1.0
        input:
          - broken: <% ctx(nothing) %>
        tasks:
          one:
            action: core.noop
    """
    run = start(text)

    assert run.status == m.FAILED
    assert run.runtime.contexts == []
    assert run.conductor.state.errors[0]["message"].startswith("YaqlEvaluationException")


def test_a_pause_waits_for_running_tasks_and_a_resume_goes_on() -> None:
    run = start(SEQUENTIAL, {"who": "ops"})
    run.request_next()
    run.conductor.request_status(m.PAUSED)
    assert run.status == m.PAUSING
    run.finish_next()
    assert run.status == m.PAUSED
    assert run.conductor.next_tasks() == []

    run.conductor.request_status(m.RESUMING)
    run.run()
    assert run.status == m.SUCCEEDED


def test_a_cancel_lets_the_running_task_finish_then_ends_canceled() -> None:
    run = start(SEQUENTIAL, {"who": "ops"})
    run.request_next()
    run.conductor.request_status(m.CANCELED)
    assert run.status == m.CANCELING
    run.finish_next()
    run.request_next()

    assert run.status == m.CANCELED
    assert run.queue == []


def test_a_pending_task_pauses_the_workflow_and_its_success_resumes_it() -> None:
    run = start(SEQUENTIAL, {"who": "ops"})
    run.request_next()
    run.conductor.update_task("first", 0, ActionEvent(m.PENDING))
    assert run.status == m.PAUSED

    run.conductor.request_status(m.RESUMING)
    run.queue.clear()
    run.conductor.update_task("first", 0, ActionEvent(m.SUCCEEDED, {"stdout": "yes"}))
    run.run()
    assert run.status == m.SUCCEEDED


def test_a_paused_workflow_that_has_nothing_left_succeeds_when_resumed() -> None:
    text = """
        version: 1.0
        tasks:
          only:
            action: core.noop
    """
    run = start(text)
    run.request_next()
    run.conductor.request_status(m.PAUSED)
    run.finish_next()
    assert run.status == m.PAUSED

    run.conductor.request_status(m.RESUMING)
    assert run.status == m.SUCCEEDED


def test_an_illegal_request_is_refused() -> None:
    run = start(SEQUENTIAL, {"who": "ops"}).run()

    with pytest.raises(ConductorError, match="workflow_paused"):
        run.conductor.request_status(m.PAUSED)


def test_rerun_from_a_failed_task_keeps_what_succeeded_and_runs_on() -> None:
    text = """
        version: 1.0
        tasks:
          prepare:
            action: core.noop
            next:
              - publish: ready="yes"
                do: apply
          apply:
            action: core.local cmd="apply <% ctx(ready) %>"
            next:
              - when: <% succeeded() %>
                do: verify
          verify:
            action: core.noop
    """
    run = start(text).run(failing("apply"))
    assert run.status == m.FAILED

    run.conductor.rerun([("apply", 0, False)])
    assert run.status == m.RESUMING
    run.requested.clear()
    run.run()

    assert run.status == m.SUCCEEDED
    assert run.requested == [("apply", {"cmd": "apply yes"}), ("verify", {})]


def test_rerun_of_with_items_runs_the_failed_items_or_all_of_them_when_reset() -> None:
    inputs = {"hosts": ["a", "b", "c"], "ports": [1, 2, 3]}
    for reset, expected in (
        (False, ["probe b:2"]),
        (True, ["probe a:1", "probe b:2", "probe c:3"]),
    ):
        run = start(ITEMS, inputs).run(failing("probe[1]"))
        assert run.status == m.FAILED
        run.conductor.rerun([("probe", 0, reset)], failed_items=lambda task, route: [1])
        run.requested.clear()
        run.run()

        assert run.status == m.SUCCEEDED
        assert [spec["cmd"] for _, spec in run.requested] == expected


def test_rerun_refuses_a_workflow_still_running_and_unknown_tasks() -> None:
    run = start(SEQUENTIAL, {"who": "ops"})
    run.request_next()
    with pytest.raises(ConductorError, match="not in a completed state"):
        run.conductor.rerun([("first", 0, False)])
    run.run()
    with pytest.raises(ConductorError, match=r"nope\|0"):
        run.conductor.rerun([("nope", 0, False)])


def test_task_functions_read_the_state_and_the_task_records() -> None:
    text = """
        version: 1.0
        tasks:
          one:
            action: core.noop
            next:
              - publish:
                  - mine: <% task_status(one) %>
                  - other: <% task_status(two) %>
                  - record: <% task(one).result %>
    """
    run = start(text)
    run.runtime.records[("one", 0)] = {"task_id": "one", "result": {"ok": True}}
    run.run()

    assert run.status == m.SUCCEEDED
    assert run.runtime.contexts[-1] == {
        "mine": "succeeded",
        "other": "null",
        "record": {"ok": True},
    }


def test_a_split_task_runs_once_per_arrival_on_routes_of_its_own() -> None:
    text = """
        version: 1.0
        tasks:
          a:
            action: core.noop
            next:
              - do: shared
          b:
            action: core.noop
            next:
              - do: shared
          shared:
            action: core.noop
    """
    run = start(text).run()

    assert run.status == m.SUCCEEDED
    assert run.conductor.state.routes == [[], ["a__t0"], ["b__t0"]]
    assert sorted(s for s in run.statuses() if s[0] == "shared") == [
        ("shared", 1, m.SUCCEEDED),
        ("shared", 2, m.SUCCEEDED),
    ]
