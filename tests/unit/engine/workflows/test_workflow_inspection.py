"""Inspecting workflow definitions: each kind of problem Orquesta's inspection finds (and
StackStorm's content check), with its spec and schema path, in StackStorm's order.

The definitions are ours; every expected list was checked against orquesta 1.6's
``WorkflowSpec.inspect`` flattened as StackStorm's ``format_inspection_result`` does (and the
whole set of StackStorm's example workflows inspects the same here as there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from poundcake.engine.workflows.definition import load_definition
from poundcake.engine.workflows.inspection import (
    RUNTIME_CONTEXT_KEYS,
    TASK_PATH,
    describe,
    inspect_content,
    inspect_text,
)

NEXT = f"{TASK_PATH}.properties.next.items.properties"


def syntax(message: str, spec_path: str | None, schema_path: str | None) -> dict[str, Any]:
    return {
        "type": "syntax",
        "message": message,
        "spec_path": spec_path,
        "schema_path": schema_path,
    }


def semantic(message: str, spec_path: str, schema_path: str = TASK_PATH) -> dict[str, Any]:
    return {
        "type": "semantic",
        "message": message,
        "spec_path": spec_path,
        "schema_path": schema_path,
    }


def expression(
    kind: str, language: str, text: str, message: str, spec_path: str, schema_path: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "language": language,
        "expression": text,
        "message": message,
        "spec_path": spec_path,
        "schema_path": schema_path,
    }


def unassigned(
    name: str, language: str, text: str, spec_path: str, schema_path: str
) -> dict[str, Any]:
    message = f'Variable "{name}" is referenced before assignment.'
    return expression("context", language, text, message, spec_path, schema_path)


def test_syntax_problems_against_orquestas_schema() -> None:
    problems = inspect_text(
        """
        version: 2.0
        bogus: true
        tasks:
          task1:
            action: core.local
            input:
              - cmd: echo hi
            join: sometimes
            next:
              - when: <% succeeded() %>
                go: task2
          task2:
            action: core.noop
            retry:
              delay: 3
        """
    )
    assert problems == [
        syntax(
            "Additional properties are not allowed ('bogus' was unexpected)",
            None,
            "additionalProperties",
        ),
        syntax(
            "[{'cmd': 'echo hi'}] is not valid under any of the given schemas",
            "tasks.task1.input",
            f"{TASK_PATH}.properties.input.oneOf",
        ),
        syntax(
            "'sometimes' is not valid under any of the given schemas",
            "tasks.task1.join",
            f"{TASK_PATH}.properties.join.oneOf",
        ),
        syntax(
            "Additional properties are not allowed ('go' was unexpected)",
            "tasks.task1.next[0]",
            f"{TASK_PATH}.properties.next.items.additionalProperties",
        ),
        syntax(
            "'count' is a required property",
            "tasks.task2.retry",
            f"{TASK_PATH}.properties.retry.required",
        ),
        syntax("2.0 is not one of ['1.0', 1.0]", "version", "properties.version.enum"),
    ]


def test_syntax_messages_are_unescaped_as_orquesta_does() -> None:
    problems = inspect_text("tasks:\n  t:\n    action: core.noop\n    with:\n      items: hosts\n")
    pattern = (
        r"^(\s+)?({{.*?}}|<%.*?%>)(\s+)?$|^(\s+)?((\w+,\s?|\s+)+)?(\w+)\s+in\s+({{.*?}}|<%.*?%>)"
        r"(\s+)?$"
    )
    assert problems == [
        syntax(
            f"'hosts' does not match '{pattern}'",
            "tasks.t.with.items",
            f"{TASK_PATH}.properties.with.properties.items.pattern",
        )
    ]


def test_unreadable_text_is_one_syntax_problem() -> None:
    problems = inspect_text("tasks: [unclosed")
    assert len(problems) == 1
    assert problems[0]["type"] == "syntax"
    assert problems[0]["message"].startswith("The workflow definition is not valid YAML: ")
    assert (problems[0]["spec_path"], problems[0]["schema_path"]) == (None, None)
    assert inspect_text("- a list") == [
        syntax("The workflow definition is not a mapping.", None, None)
    ]
    # Tasks that are no mapping: the schema says why, and nothing else is inspected.
    assert inspect_text("tasks: [a, b]") == [
        syntax("['a', 'b'] is not of type 'object'", "tasks", "properties.tasks.type")
    ]


def test_semantic_problems() -> None:
    problems = inspect_text(
        """
        version: 1.0
        input:
          - hosts
        tasks:
          noop:
            action: core.noop
          start:
            with: <% ctx(hosts) %>
            next:
              - do: missing
              - when: <% failed() %>
                do: [fail, gone]
        """
    )
    assert problems == [
        semantic('The task name "noop" is reserved with special function.', "tasks.noop"),
        semantic("The action property is required for with items task.", "tasks.start"),
        semantic('The task "missing" is not defined.', "tasks.start.next[0].do", f"{NEXT}.do"),
        semantic('The task "gone" is not defined.', "tasks.start.next[1].do", f"{NEXT}.do"),
    ]


def test_a_workflow_without_a_start_task() -> None:
    problems = inspect_text(
        "tasks:\n  a:\n    action: core.noop\n    next: [{do: b}]\n"
        "  b:\n    action: core.noop\n    next: [{do: a}]\n"
    )
    assert problems == [
        semantic(
            "Unable to identify any tasks to start the workflow. If the workflow has a loop, "
            "please add a task that serves as an entry point (or lead) into the loop.",
            "tasks",
            "properties.tasks",
        )
    ]


def test_tasks_no_start_task_reaches_are_refused() -> None:
    # Orquesta itself only finds unplaceable joins; a task nothing leads to is ours.
    problems = inspect_text(
        """
        tasks:
          begin:
            action: core.noop
          ping:
            action: core.noop
            next: [{do: pong}]
          pong:
            action: core.noop
            next: [{do: ping}]
        """
    )
    assert problems == [
        semantic(
            f'The task "{name}" is unreachable: no transition from a task the workflow starts '
            "with leads to it.",
            f"tasks.{name}",
        )
        for name in ("ping", "pong")
    ]


# A fork into two branches that meet in a shared task before a join; TARGETS is what the fork
# leads to, LOOP what follows the join.
SHARED_TASK = """
tasks:
  enter:
    action: core.noop
    next: [{do: fan}]
  fan:
    action: core.noop
    next:
      - do: TARGETS
  one:
    action: core.noop
    next: [{do: funnel}]
  two:
    action: core.noop
    next: [{do: funnel}]
  funnel:
    action: core.noop
    next: [{do: gather}]
  gather:
    join: all
    action: core.noop
    LOOP
"""


def test_a_join_after_a_fork_of_a_shared_task_cannot_be_placed() -> None:
    message = (
        'The join task "{}" is unreachable. A join task is determined to be unreachable if '
        "there are nested forks from multi-referenced tasks that join on the said task. This "
        "is ambiguous to the workflow engine because it does not know at which level should "
        "the join occurs."
    )
    problems = inspect_text(SHARED_TASK.replace("TARGETS", "one, two, gather").replace("LOOP", ""))
    assert problems == [semantic(message.format("gather"), "tasks.gather")]
    # Every branch through the shared task is fine, and so is a join inside a loop.
    placed = SHARED_TASK.replace("TARGETS", "one, two")
    assert inspect_text(placed.replace("LOOP", "")) == []
    loop = "next:\n      - when: <% ctx(again) %>\n        do: fan"
    assert inspect_text(placed.replace("LOOP", loop) + "input:\n  - again: false\n") == []


def test_expressions_that_do_not_parse() -> None:
    problems = inspect_text(
        """
        version: 1.0
        input:
          - a: <% 1 + %>
        vars:
          - b: "{{ 1 + }}"
        tasks:
          t:
            action: core.echo
            input:
              message: <% ctx(a) ) %>
            with:
              items: <% [1, 2 %>
            retry:
              when: "{% if %}"
              count: 2
            next:
              - when: <% succeeded( %>
        output:
          - d: <% $.a.. %>
        """
    )
    end = "Parse error: unexpected end of statement"
    assert problems == [
        expression("expression", "yaql", "<% 1 + %>", end, "input", "properties.input"),
        expression(
            "expression",
            "yaql",
            "<% $.a.. %>",
            "Parse error: unexpected '.' at position 4 of expression '$.a..'",
            "output",
            "properties.output",
        ),
        expression(
            "expression",
            "yaql",
            "<% ctx(a) ) %>",
            "Parse error: unexpected ')' at position 7 of expression 'ctx(a) )'",
            "tasks.t.input",
            f"{TASK_PATH}.properties.input",
        ),
        expression(
            "expression", "yaql", "<% succeeded( %>", end, "tasks.t.next[0].when", f"{NEXT}.when"
        ),
        expression(
            "expression",
            "jinja",
            "{% if %}",
            "Expected an expression, got 'end of statement block'",
            "tasks.t.retry.when",
            f"{TASK_PATH}.properties.retry.properties.when",
        ),
        expression(
            "expression",
            "yaql",
            "<% [1, 2 %>",
            end,
            "tasks.t.with.items",
            f"{TASK_PATH}.properties.with.properties.items",
        ),
        expression(
            "expression",
            "jinja",
            "{{ 1 + }}",
            "unexpected 'end of print statement'",
            "vars",
            "properties.vars",
        ),
    ]


def test_variables_referenced_before_assignment() -> None:
    second_input = "{{ ctx('d') }} {{ ctx().st2.user }} {{ ctx('parent') }}"
    problems = inspect_text(
        f"""
        version: 1.0
        input:
          - a
        vars:
          - b: <% ctx(a) %>
          - c: <% ctx(zzz) %>
        tasks:
          first:
            action: core.echo message=<% ctx(b) %>
            next:
              - publish: d=<% ctx(c) %> e=<% ctx(later) %>
                do: second
          second:
            action: core.echo
            input:
              message: "{second_input}"
            next:
              - publish:
                  - later: 1
        output:
          - out: <% ctx(later) %> <% ctx(nope) %>
        """
    )
    # st2 and parent are the runtime context; later is published after first's transition.
    assert problems == [
        unassigned(
            "nope", "yaql", "<% ctx(later) %> <% ctx(nope) %>", "output[0]", "properties.output"
        ),
        unassigned(
            "later",
            "yaql",
            "<% ctx(later) %>",
            "tasks.first.next[0].publish[1]",
            f"{NEXT}.publish",
        ),
        unassigned("zzz", "yaql", "<% ctx(zzz) %>", "vars[1]", "properties.vars"),
    ]
    assert RUNTIME_CONTEXT_KEYS == ("st2", "parent")


def test_a_private_variable_is_named_as_such() -> None:
    text = "{{ ctx('__secret') }}"
    problems = inspect_text(
        f'tasks:\n  t:\n    action: core.echo\n    input:\n      message: "{text}"\n'
    )
    assert problems[0] == expression(
        "context",
        "jinja",
        text,
        'Variable "__secret" that is prefixed with double underscores is considered a private '
        "variable and cannot be referenced.",
        "tasks.t.input",
        f"{TASK_PATH}.properties.input",
    )


def test_an_unassigned_private_variable_is_also_unassigned() -> None:
    text = "{{ ctx('__secret') }}"
    problems = inspect_text(
        f'tasks:\n  t:\n    action: core.echo\n    input:\n      message: "{text}"\n'
    )
    assert len(problems) == 2
    assert problems[1] == unassigned(
        "__secret", "jinja", text, "tasks.t.input", f"{TASK_PATH}.properties.input"
    )


JOIN_OF_UNEVEN_BRANCHES = """
version: 1.0
tasks:
  fork:
    action: core.noop
    next:
      - do: short, long_one
  short:
    action: core.noop
    next:
      - publish: s=1
        do: meet
  long_one:
    action: core.noop
    next:
      - publish: l=1
        do: long_two
  long_two:
    action: core.noop
    next:
      - publish: m=1
        do: meet
  meet:
    join: all
    action: core.echo message="<% ctx(s) %> <% ctx(l) %> <% ctx(m) %>"
output:
  - all: <% ctx(s) %><% ctx(l) %><% ctx(m) %>
"""


def test_a_join_sees_only_what_arrived_before_orquesta_walked_it() -> None:
    # Orquesta walks the tasks breadth first and a join once: the longer branch's publishes
    # have not reached it yet (a limitation of Orquesta's inspection, kept for fidelity).
    problems = inspect_text(JOIN_OF_UNEVEN_BRANCHES)
    meet_input = "<% ctx(s) %> <% ctx(l) %> <% ctx(m) %>"
    assert [p for p in problems if p["spec_path"] == "tasks.meet.input"] == [
        unassigned(name, "yaql", meet_input, "tasks.meet.input", f"{TASK_PATH}.properties.input")
        for name in ("l", "m")
    ]


def test_publishes_after_a_join_was_walked_are_unknown_to_the_output() -> None:
    problems = inspect_text(JOIN_OF_UNEVEN_BRANCHES)
    assert [p for p in problems if p["spec_path"] == "output[0]"] == [
        unassigned(
            "m",
            "yaql",
            "<% ctx(s) %><% ctx(l) %><% ctx(m) %>",
            "output[0]",
            "properties.output",
        )
    ]


ECHO = {
    "message": {"type": "string", "required": True},
    "cmd": {"type": "string", "required": True, "default": "echo", "immutable": True},
    "timeout": {"type": "integer", "default": 60},
}


def parameters_of(ref: str) -> Mapping[str, Any] | None:
    return {"core.echo": ECHO, "core.noop": {}}.get(ref)


def test_content_problems_need_what_is_registered() -> None:
    definition = load_definition(
        """
        tasks:
          unformatted:
            action: echo
          unknown:
            action: core.echoz
          incomplete:
            action: core.echo
            input:
              messages: hi
              timeout: 5
          fine:
            action: core.echo message="hi"
          computed:
            action: <% ctx(which) %>
          rendered_input:
            action: core.echo
            input: <% ctx(everything) %>
          bare:
            action: core.noop
          no_action: {}
        """
    )
    action = f"{TASK_PATH}.properties.action"
    content = "content"
    assert inspect_content(definition, parameters_of) == [
        {
            "type": content,
            "message": 'The action reference "echo" is not formatted correctly.',
            "spec_path": "tasks.unformatted.action",
            "schema_path": action,
        },
        {
            "type": content,
            "message": 'The action "core.echoz" is not registered in the database.',
            "spec_path": "tasks.unknown.action",
            "schema_path": action,
        },
        {
            "type": content,
            "message": 'Action "core.echo" is missing required input "message".',
            "spec_path": "tasks.incomplete.input",
            "schema_path": f"{TASK_PATH}.properties.input",
        },
        {
            "type": content,
            "message": 'Action "core.echo" has unexpected input "messages".',
            "spec_path": "tasks.incomplete.input.messages",
            "schema_path": f"{TASK_PATH}.properties.input.patternProperties.^\\w+$",
        },
    ]


def test_problems_are_ordered_by_type_then_schema_path() -> None:
    problems = inspect_text(
        """
        version: 1.0
        tasks:
          first:
            action: nodot
            input:
              message: <% ctx(missing) %>
            next:
              - when: <% <% succeeded() %>
                do: second
          second:
            action: core.echo
            join: sometimes
            input:
              message: <% ctx().macro %>
        """,
        action_parameters=parameters_of,
    )
    assert [(p["type"], p["spec_path"]) for p in problems] == [
        ("content", "tasks.first.action"),
        ("context", "tasks.first.input"),
        ("context", "tasks.second.input"),
        ("expression", "tasks.first.next[0].when"),
        ("syntax", "tasks.second.join"),
    ]
    assert problems[3]["message"] == (
        "Parse error: unexpected '<' at position 0 of expression '<% succeeded()'"
    )


def test_a_clean_definition_has_no_problems() -> None:
    text = """
        version: 1.0
        input:
          - who
        tasks:
          greet:
            action: core.echo message="hi <% ctx(who) %> from <% ctx(st2).user %>"
            next:
              - publish: said=<% result().stdout %>
        output:
          - said: <% ctx(said) %>
    """
    assert inspect_text(text) == []
    assert inspect_text(text, action_parameters=parameters_of) == []


def test_describe_names_the_place_then_the_problem() -> None:
    assert describe(semantic('The task "gone" is not defined.', "tasks.t.next[0].do")) == (
        'tasks.t.next[0].do: semantic error: The task "gone" is not defined.'
    )
    context = unassigned("x", "yaql", "<% ctx(x) %>", "output[0]", "properties.output")
    assert describe(context) == (
        'output[0]: context error (<% ctx(x) %>): Variable "x" is referenced before assignment.'
    )
    assert describe(syntax("broken", None, None)) == "(the whole definition): syntax error: broken"


def test_joins_that_can_never_join_are_refused() -> None:
    # Ours, as the unreachable tasks are: Orquesta runs the first join as a start task and
    # never runs the second.
    problems = inspect_text(
        """
        tasks:
          begin:
            action: core.noop
            next: [{do: [left, right]}]
          left:
            action: core.noop
            next: [{do: three}]
          right:
            action: core.noop
            next: [{do: three}]
          three:
            join: 3
          lonely:
            join: all
        """
    )
    assert [(p["message"], p["spec_path"]) for p in problems] == [
        (
            'The join task "lonely" has no inbound task: no transition leads to it.',
            "tasks.lonely.join",
        ),
        (
            'The join task "three" waits for 3 inbound tasks but only 2 lead to it (left, right).',
            "tasks.three.join",
        ),
    ]
