"""Reading Orquesta workflow definitions: short forms expanded as Orquesta expands them.

Inline parameters (``core.echo message="hi"``, ``publish: a=1 b=<% ... %>``) are typed as
orquesta 1.6's ``parse_inline_params`` types them, quirks included; the expected values below
were checked against it.
"""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.workflows.definition import (
    DefinitionError,
    Items,
    Retry,
    TaskDefinition,
    Transition,
    load_definition,
    parse_inline_parameters,
    read_document,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'message="hello world" count=3 ratio=0.5 neg=-2 flag=True off=false nothing=null',
            [
                ("message", "hello world"),
                ("count", 3),
                ("ratio", 0.5),
                ("neg", -2),
                ("flag", True),
                ("off", False),
                ("nothing", None),
            ],
            id="json-values",
        ),
        pytest.param("nums=[1, 2]", [("nums", [1, 2])], id="json-list"),
        pytest.param(
            'name=\'x y\' port="22" blob="[1, 2]"',
            [("name", "x y"), ("port", "22"), ("blob", "[1, 2]")],
            id="quoted-stays-text",
        ),
        pytest.param("data='{\"a\": 1}'", [("data", {"a": 1})], id="quoted-json-object"),
        pytest.param(
            'cmd=<% ctx(cmd) %> msg={{ ctx("a") }}',
            [("cmd", "<% ctx(cmd) %>"), ("msg", '{{ ctx("a") }}')],
            id="expressions",
        ),
        pytest.param(
            'note="<% ctx(x) %> done"', [("note", "<% ctx(x) %> done")], id="quoted-expression"
        ),
        pytest.param("plain=left other=1", [("other", 1)], id="bare-word-skipped"),
        pytest.param(
            "a=1 b= 2 c=\"\" d=''", [("a", 1), ("c", ""), ("d", "")], id="space-and-empty"
        ),
        # Orquesta's quirks: a list holding quotes stays text; JSON cannot read ".5"; an
        # exponent is not a number form, so only its integer part is taken.
        pytest.param('items=[1, "a"]', [("items", '[1, "a"]')], id="list-with-quotes"),
        pytest.param("x=.5 y=-.25 z=1e3", [("x", ".5"), ("y", "-.25"), ("z", 1)], id="numbers"),
        pytest.param("noparams here", [], id="none"),
        pytest.param("", [], id="empty"),
        pytest.param(None, [], id="not-text"),
    ],
)
def test_inline_parameters_are_typed_as_orquesta_types_them(
    text: Any, expected: list[tuple[str, Any]]
) -> None:
    assert parse_inline_parameters(text) == expected


def test_an_action_with_inline_parameters_takes_them_over_its_input_block() -> None:
    definition = load_definition(
        """
        version: 1.0
        tasks:
          inline:
            action: core.local cmd="echo hi" timeout=30
            input:
              cmd: never used
          block:
            action: core.echo
            input:
              message: <% ctx(x) %>
          bare:
            action: core.echo message=hi
        """
    )
    inline = definition.tasks["inline"]
    assert (inline.action, inline.input) == ("core.local", {"cmd": "echo hi", "timeout": 30})
    block = definition.tasks["block"]
    assert (block.action, block.input) == ("core.echo", {"message": "<% ctx(x) %>"})
    # A bare word is no parameter: the action is left as written, as in Orquesta.
    assert definition.tasks["bare"].action == "core.echo message=hi"
    assert definition.tasks["bare"].input is None


def test_transitions_publish_and_targets() -> None:
    definition = load_definition(
        """
        version: 1.0
        tasks:
          first:
            action: core.noop
            next:
              - when: <% succeeded() %>
                publish: a=1 b="two" c=<% result() %>
                do: second, third
              - when: <% failed() %>
                publish:
                  - x: <% result().stderr %>
                  - y: [1, 2]
                do:
                  - fail
              - publish: z=true
          second:
            action: core.noop
          third:
            action: core.noop
        """
    )
    assert definition.tasks["first"].transitions == (
        Transition(
            index=0,
            when="<% succeeded() %>",
            publish=(("a", 1), ("b", "two"), ("c", "<% result() %>")),
            do=("second", "third"),
        ),
        Transition(
            index=1,
            when="<% failed() %>",
            publish=(("x", "<% result().stderr %>"), ("y", [1, 2])),
            do=("fail",),
        ),
        # No do: continue.
        Transition(index=2, when=None, publish=(("z", True),), do=("continue",)),
    )
    assert definition.tasks["second"].transitions == ()


def test_with_items_short_and_long_forms() -> None:
    definition = load_definition(
        """
        version: 1.0
        tasks:
          short:
            action: core.echo message=<% item() %>
            with: <% ctx(hosts) %>
          named:
            action: core.echo
            with:
              items: host, port in <% zip(ctx(hosts), ctx(ports)) %>
              concurrency: <% ctx(width) %>
          tight:
            action: core.echo
            with:
              items: a,b in {{ ctx('pairs') }}
              concurrency: 2
        """
    )
    assert definition.tasks["short"].items == Items(
        text="<% ctx(hosts) %>", expression="<% ctx(hosts) %>", keys=None, concurrency=None
    )
    assert definition.tasks["named"].items == Items(
        text="host, port in <% zip(ctx(hosts), ctx(ports)) %>",
        expression="<% zip(ctx(hosts), ctx(ports)) %>",
        keys=("host", "port"),
        concurrency="<% ctx(width) %>",
    )
    tight = definition.tasks["tight"].items
    assert tight is not None
    assert (tight.keys, tight.expression, tight.concurrency) == (
        ("a", "b"),
        "{{ ctx('pairs') }}",
        2,
    )


def test_the_short_with_form_is_expanded_before_the_schema_sees_it() -> None:
    document = read_document("tasks:\n  t:\n    action: core.noop\n    with: <% ctx(x) %>\n")
    assert document["tasks"]["t"]["with"] == {"items": "<% ctx(x) %>"}


def test_retry_delay_and_join() -> None:
    definition = load_definition(
        """
        version: 1.0
        tasks:
          flaky:
            action: core.noop
            delay: 5
            retry:
              when: <% failed() %>
              count: <% ctx(times) %>
              delay: 2
            next:
              - do: both
          other:
            action: core.noop
            retry:
              count: 3
            next:
              - do: both
          both:
            join: all
            action: core.noop
          some:
            join: 2
          none:
            action: core.noop
            retry:
              delay: 1
        """
    )
    flaky = definition.tasks["flaky"]
    assert flaky.delay == 5
    assert flaky.retry == Retry(when="<% failed() %>", count="<% ctx(times) %>", delay=2)
    assert definition.tasks["other"].retry == Retry(when=None, count=3, delay=None)
    # A retry without a count is no retry (the schema refuses it anyway).
    assert definition.tasks["none"].retry is None
    assert definition.tasks["both"].is_join and definition.tasks["both"].join == "all"
    assert definition.tasks["some"].is_join and definition.tasks["some"].join == 2
    assert definition.tasks["some"].action is None
    assert not flaky.is_join


def test_input_vars_and_output() -> None:
    definition = load_definition(
        """
        version: 1.0
        description: all the sections
        input:
          - who
          - times: 2
          - nothing: null
        vars:
          - greeting: hi <% ctx(who) %>
          - count: 0
        tasks:
          only:
            action: core.noop
        output:
          - said: <% ctx(greeting) %>
          - count: <% ctx(count) %>
        """
    )
    assert definition.input == (("who", None, False), ("times", 2, True), ("nothing", None, True))
    assert definition.vars == (("greeting", "hi <% ctx(who) %>"), ("count", 0))
    assert definition.output == (("said", "<% ctx(greeting) %>"), ("count", "<% ctx(count) %>"))
    assert definition.description == "all the sections"


def test_tasks_and_engine_commands() -> None:
    definition = load_definition("tasks:\n  only:\n    action: core.noop\n")
    assert definition.task("only") == TaskDefinition(name="only", action="core.noop")
    for command in ("continue", "fail", "noop", "retry"):
        assert definition.has_task(command)
        assert definition.task(command) == TaskDefinition(name=command)
    assert not definition.has_task("other")
    with pytest.raises(DefinitionError, match=r'^Task "other" does not exist\.$'):
        definition.task("other")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: [unclosed", "The workflow definition is not valid YAML: "),
        ("- a list", "The workflow definition is not a mapping."),
        ("just text", "The workflow definition is not a mapping."),
        ("version: 1.0\n", "The workflow definition has no tasks."),
        ("tasks: {}\n", "The workflow definition has no tasks."),
    ],
)
def test_definitions_that_cannot_be_read(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_definition(text)
    assert str(refused.value).startswith(message)
