"""Workflow expressions (YAQL and Jinja) behave as orquesta 1.6 and StackStorm 3.9 evaluate them.

Expected values and error texts come from StackStorm's integration tests of the Orquesta runner
(``test_wiring_error_handling``, ``test_wiring_functions*``) and the expressions of the examples
pack's ``orquesta-test-yaql-*`` and ``orquesta-test-jinja-*`` workflows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from poundcake.engine.workflows.expressions import (
    EXPRESSION_PATTERNS,
    NO_RESULT,
    CurrentTask,
    ExpressionError,
    Scope,
    evaluate,
    extract_variables,
    has_expressions,
    validate,
    yaql_expressions,
    yaql_limits,
)
from poundcake.exceptions import NotFoundError

ST2 = {
    "user": "stanley",
    "action_execution_id": "5f1c0a9e8d3b4a0001a1b2c3",
    "workflow_execution_id": "5f1c0a9e8d3b4a0001a1b2c4",
    "api_url": "http://127.0.0.1:9101/v1",
    "pack": "examples",
}


class Workflow:
    """A running workflow as the task functions see it: statuses and task documents by id."""

    def __init__(self, statuses: dict[str, str], results: dict[tuple[str, int], Any]) -> None:
        self.statuses = statuses
        self.results = results

    def task_status(self, task_id: str, route: int) -> str:
        return self.statuses.get(f"{task_id}__r{route}", "null")

    def task(self, task_id: str, route: int) -> Mapping[str, Any]:
        if (task_id, route) not in self.results:
            raise ExpressionError(f'Unable to find task execution for "{task_id}".')
        return {
            "task_id": task_id,
            "task_name": task_id,
            "route": route,
            "result": self.results[(task_id, route)],
            "status": self.statuses.get(f"{task_id}__r{route}", "null"),
        }


class Datastore:
    """st2kv's datastore over a dict: ``(scope, stored name) -> (value, ciphertext or None)``."""

    def __init__(self, values: dict[tuple[str, str], tuple[str, str | None]]) -> None:
        self.values = values
        self.reads: list[tuple[str, str, bool]] = []

    def get(self, key: str, *, user: str, decrypt: bool) -> str:
        self.reads.append((key, user, decrypt))
        if key.startswith("system."):
            scope, name = "system", key[len("system.") :]
        else:
            scope, name = "user", f"{user}:{key}"
        if (scope, name) not in self.values:
            raise NotFoundError(f'The key "{name}" does not exist in the StackStorm datastore.')
        plain, ciphertext = self.values[(scope, name)]
        return plain if decrypt or ciphertext is None else ciphertext


def scope(**variables: Any) -> Scope:
    return Scope(variables={"st2": ST2, **variables})


def fails(statement: Any, the_scope: Scope) -> str:
    with pytest.raises(ExpressionError) as caught:
        evaluate(statement, the_scope)
    return f"{caught.value.kind}: {caught.value}"


# Evaluation: types, substitution, nesting, recursion


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("<% ctx(n) %>", 5),
        ("<% ctx().n + 1 %>", 6),
        ("<% ctx(items) %>", [1, 2, 3]),
        ("<% ctx(mapping) %>", {"a": {"b": [True, None]}}),
        ("<% ctx(flag) %>", True),
        ("<% ctx(nothing) %>", None),
        ("n=<% ctx(n) %>", "n=5"),
        (" <% ctx(n) %>", " 5"),
        ("<% ctx(n) %><% ctx(n) %>", "55"),
        ("<% ctx(flag) %> and <% ctx(nothing) %>", "True and None"),
        ("m: <% ctx(mapping) %>", "m: {'a': {'b': [True, None]}}"),
        ("{{ ctx('n') }}", 5),
        ("{{ ctx().n + 1 }}", 6),
        ("{{ ctx('items') }}", [1, 2, 3]),
        ("{{ ctx().mapping }}", {"a": {"b": [True, None]}}),
        ("{{ ctx().nothing }}", None),
        ("n={{ ctx('n') }}", "n=5"),
        ("{{ ctx().flag }} and {{ ctx().nothing }}", "True and None"),
        ("{% for i in ctx().numbers %}{{ i }}{% endfor %}", "123"),
        ("{% if ctx().flag %}yes{% else %}no{% endif %}", "yes"),
        ("no expression", "no expression"),
        ("", ""),
    ],
)
def test_values_keep_their_type_only_when_alone(statement: str, expected: Any) -> None:
    variables = {
        "n": 5,
        "items": [1, 2, 3],
        "numbers": [1, 2, 3],
        "mapping": {"a": {"b": [True, None]}},
    }
    result = evaluate(statement, scope(**variables, flag=True, nothing=None))
    assert result == expected
    assert type(result) is type(expected)


def test_dicts_keys_included_and_lists_are_evaluated_recursively() -> None:
    statement = {
        "<% ctx(key) %>": ["<% ctx(n) %>", {"inner": "{{ ctx('n') * 2 }}"}, 3, None],
        "plain": True,
    }
    assert evaluate(statement, scope(key="k", n=2)) == {
        "k": [2, {"inner": 4}, 3, None],
        "plain": True,
    }


@pytest.mark.parametrize("value", [7, 1.5, None, True, b"bytes"])
def test_values_without_expressions_are_returned_as_they_are(value: Any) -> None:
    assert evaluate(value, scope()) is value


def test_a_string_value_is_evaluated_again() -> None:
    the_scope = scope(
        inner="<% ctx(n) %>",
        outer="<% ctx(inner) %>",
        jinja_inner="{{ ctx('n') }}",
        listed=["{{ ctx().n }}", "{{ ctx().n + 1 }}"],
        n=3,
    )
    assert evaluate("<% ctx(outer) %>", the_scope) == 3
    assert evaluate("x <% ctx(outer) %>", the_scope) == "x 3"
    assert evaluate("{{ ctx('jinja_inner') }}", the_scope) == 3
    assert evaluate("{% for i in ctx().listed %}{{ i }}.{% endfor %}", the_scope) == "3.4."
    # Each language evaluates again only its own expressions.
    assert evaluate("<% ctx(jinja_inner) %>", the_scope) == "{{ ctx('n') }}"


def test_jinja_raw_blocks_are_left_as_text() -> None:
    the_scope = scope(foo="bar", x=["b", "c"], a="a", d="d")
    assert evaluate("{% raw %}{{ ctx().foo }}{% endraw %}", the_scope) == "{{ ctx().foo }}"
    assert (
        evaluate(
            "{% raw %}{{ ctx().foo }}{% endraw %} and {% raw %}foobar{% endraw %} {0}", the_scope
        )
        == "{{ ctx().foo }} and foobar {0}"
    )
    statement = (
        "{{ ctx().a }}{% for i in ctx().x %}{{ i }}{% endfor %}{{ ctx().d }} and "
        "{% raw %}{{ 1234 }}{% endraw %}"
    )
    assert evaluate(statement, the_scope) == "abcd and {{ 1234 }}"


def test_jinja_blocks_trim_and_lstrip() -> None:
    statement = "{% for i in ctx().x %}\n    {% if i %}\n{{ i }},\n    {% endif %}\n{% endfor %}"
    assert evaluate(statement, scope(x=["a", "b"])) == "a,\nb,\n"


def test_a_string_with_both_languages_evaluates_the_yaql_only() -> None:
    assert evaluate("<% ctx(n) %> and {{ ctx().n }}", scope(n=1)) == "1 and {{ ctx().n }}"


def test_has_expressions_and_patterns() -> None:
    assert EXPRESSION_PATTERNS == {"yaql": r"<%.*?%>", "jinja": r"{{.*?}}"}
    assert has_expressions("<% ctx().foo %> and {{ ctx().foo }}")
    assert has_expressions("foo <% ctx().foo %> bar")
    assert has_expressions("foo {{ ctx().foo }} bar")
    assert has_expressions("{% for x in y %}{% endfor %}")
    assert not has_expressions("foobar")
    assert not has_expressions("<% unterminated")


# Exact error texts


@pytest.mark.parametrize(
    ("statement", "variables", "message"),
    [
        (
            "<% abs(8).value %>",
            {},
            "YaqlEvaluationException: Unable to evaluate expression '<% abs(8).value %>'. "
            'NoFunctionRegisteredException: Unknown function "#property#value"',
        ),
        (
            "<% ctx().name.value %>",
            {"name": "Stanley"},
            "YaqlEvaluationException: Unable to evaluate expression '<% ctx().name.value %>'. "
            'NoFunctionRegisteredException: Unknown function "#property#value"',
        ),
        (
            "<% ctx().greeting %>",
            {},
            "YaqlEvaluationException: Unable to resolve key 'greeting' in expression "
            "'<% ctx().greeting %>' from context.",
        ),
        (
            "<% ctx(greeting) %>",
            {},
            "YaqlEvaluationException: Unable to evaluate expression '<% ctx(greeting) %>'. "
            'VariableUndefinedError: The variable "greeting" is undefined.',
        ),
        (
            "<% ctx('__state') %>",
            {"__state": {}},
            "YaqlEvaluationException: Unable to evaluate expression '<% ctx('__state') %>'. "
            'VariableInaccessibleError: The variable "__state" is for internal use and '
            "inaccessible.",
        ),
        (
            "<% <% succeeded() %>",
            {},
            "YaqlEvaluationException: Unable to evaluate expression '<% <% succeeded() %>'. "
            "YaqlGrammarException: Parse error: unexpected '<' at position 0 of expression "
            "'<% succeeded()",
        ),
        (
            "<% json(5) %>",
            {},
            "YaqlEvaluationException: Unable to evaluate expression '<% json(5) %>'. "
            "TypeError: Given object is not typeof string.",
        ),
        (
            "{{ ctx().greeting }}",
            {},
            "JinjaEvaluationException: There are unresolved variables: ctx().greeting",
        ),
        (
            "{{ ctx().greeting + 'x' }}",
            {},
            "JinjaEvaluationException: Unable to evaluate expression '{{ ctx().greeting + 'x' }}'"
            ". UndefinedError: 'dict object' has no attribute 'greeting'",
        ),
        (
            '{{ ctx("greeting") }}',
            {},
            "JinjaEvaluationException: Unable to evaluate expression '{{ ctx(\"greeting\") }}'. "
            'VariableUndefinedError: The variable "greeting" is undefined.',
        ),
        (
            "{% for i in ctx().x %}{{ ctx().y }}{% endfor %}",
            {"x": [1]},
            "JinjaEvaluationException: Unable to evaluate expression "
            "'{% for i in ctx().x %}{{ ctx().y }}{% endfor %}'. "
            "UndefinedError: 'dict object' has no attribute 'y'",
        ),
        (
            "{{ 1 / 0 }}",
            {},
            "JinjaEvaluationException: Unable to evaluate expression '{{ 1 / 0 }}'. "
            "ZeroDivisionError: division by zero",
        ),
    ],
)
def test_errors_read_as_in_stackstorm(
    statement: str, variables: dict[str, Any], message: str
) -> None:
    assert fails(statement, scope(**variables)) == message


def test_an_error_in_a_value_evaluated_again_names_both_expressions() -> None:
    assert fails("<% ctx(inner) %>", scope(inner="<% ctx().missing %>")) == (
        "YaqlEvaluationException: Unable to evaluate expression '<% ctx(inner) %>'. "
        "YaqlEvaluationException: Unable to resolve key 'missing' in expression "
        "'<% ctx().missing %>' from context."
    )


def test_expression_error_is_a_validation_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("<% ctx().missing %>", scope())
    assert caught.value.http_status == 400


# validate and extract_variables


def test_validate_reports_syntax_errors_in_orquesta_shape() -> None:
    assert validate("<% <% succeeded() %>") == [
        {
            "type": "yaql",
            "expression": "<% <% succeeded() %>",
            "message": "Parse error: unexpected '<' at position 0 of expression '<% succeeded()'",
        }
    ]
    assert validate("<% ctx().foo %> and {{ ctx().foo }}") == [
        {
            "type": None,
            "expression": "<% ctx().foo %> and {{ ctx().foo }}",
            "message": "Expression with multiple types is not supported.",
        }
    ]
    jinja = validate("{{ {{ ctx().foo }} }}")
    assert [error["expression"] for error in jinja] == [
        "{{ {{ ctx().foo }} }}",
        "{{ {{ ctx().foo }}",
    ]
    assert "expected token ':', got '}'" in jinja[0]["message"]
    assert "unexpected end of template" in jinja[1]["message"]
    assert len(validate("{{ 1 +/ 2 }} and {{ * }}")) == 3
    block = validate("{% for i in ctx().x %}{{ i }}{% foobar %}")
    assert [error["type"] for error in block] == ["jinja"]


def test_validate_walks_dicts_and_lists() -> None:
    statement = {"<% 1 + %>": ["<% ctx(a) %>", "{{ ctx( }}"], "fine": "<% ctx(b) %>", "n": 1}
    errors = validate(statement)
    assert [(error["type"], error["expression"]) for error in errors] == [
        ("yaql", "<% 1 + %>"),
        ("jinja", "{{ ctx( }}"),
    ]
    assert validate(["<% ctx(a) %>", "{{ ctx().b }}", 5, None]) == []


def test_extract_variables() -> None:
    expression = "<% Why the ctx(foobar) are you so ctx(fu).bar serious? %>"
    assert extract_variables(expression) == [
        ("yaql", expression, "foobar"),
        ("yaql", expression, "fu"),
    ]
    dotted = "<%ctx().fubar ctx().foobar ctx().foo.get(bar) ctx().fu.bar ctx().foobaz.bar[0] %>"
    assert [name for _, _, name in extract_variables(dotted)] == [
        "foo",
        "foobar",
        "foobaz",
        "fu",
        "fubar",
    ]
    quoted = "{{ ctx('a') + ctx(\"b\") + ctx().c.d + ctx().c }}"
    assert extract_variables(quoted) == [
        ("jinja", quoted, "a"),
        ("jinja", quoted, "b"),
        ("jinja", quoted, "c"),
    ]
    statement = {"<% ctx(k) %>": ["{{ ctx().x }}", "<% ctx(x) %>"]}
    assert extract_variables(statement) == [
        ("yaql", "<% ctx(k) %>", "k"),
        ("jinja", "{{ ctx().x }}", "x"),
        ("yaql", "<% ctx(x) %>", "x"),
    ]


def test_extract_variables_ignores_what_is_not_a_context_variable() -> None:
    expression = (
        '<% just_text and $not_a_var and notctx(foo) and notctx("bar") and '
        "ctx(\"foo') and ctx(foo\") and ctx(-foo) and ctx(foo.bar) and ctx('foo()') and "
        "ctx().foo() %>"
    )
    assert extract_variables(expression) == []
    assert extract_variables(5) == []


# ctx, st2, json, zip, item


def test_ctx_hides_internal_variables() -> None:
    the_scope = scope(a=1, __state={"secret": True})
    assert evaluate("<% ctx() %>", the_scope) == {"st2": ST2, "a": 1}
    assert evaluate("{{ ctx() }}", the_scope) == {"st2": ST2, "a": 1}
    assert evaluate("<% ctx().keys().len() %>", the_scope) == 2
    assert "VariableInaccessibleError" in fails("{{ ctx('__state') }}", the_scope)
    assert evaluate("<% ctx().get('__state') %>", the_scope) is None
    assert "YaqlLexicalException" in fails("<% ctx().__state %>", the_scope)


@pytest.mark.parametrize(
    "statement",
    [
        "<% ctx(x) %>",
        "<% ctx('x') %>",
        '<% ctx("x") %>',
        "<% ctx().x %>",
        "{{ ctx('x') }}",
        '{{ ctx("x") }}',
        "{{ ctx().x }}",
        "{{ ctx()['x'] }}",
        "{{ 'x' | ctx }}",
    ],
)
def test_every_way_to_read_a_variable(statement: str) -> None:
    assert evaluate(statement, scope(x={"y": [1]})) == {"y": [1]}


@pytest.mark.parametrize(
    "statement",
    [
        "<% st2().action_execution_id %>",
        "<% ctx(st2).action_execution_id %>",
        "<% ctx().st2.action_execution_id %>",
        "{{ st2().action_execution_id }}",
        "{{ ctx('st2').action_execution_id }}",
        "{{ ctx().st2.action_execution_id }}",
    ],
)
def test_st2_runtime_context(statement: str) -> None:
    assert evaluate(statement, scope()) == ST2["action_execution_id"]


def test_st2_runtime_callback_of_the_examples_pack() -> None:
    statement = "<% ctx(st2).api_url %>/executions/<% ctx(st2).action_execution_id %>"
    assert (
        evaluate(statement, scope()) == f"{ST2['api_url']}/executions/{ST2['action_execution_id']}"
    )
    assert "VariableUndefinedError" in fails("<% st2() %>", Scope(variables={}))


@pytest.mark.parametrize("language", ["yaql", "jinja"])
def test_json(language: str) -> None:
    the_scope = scope(text='{"a": [1, {"b": null}]}', mapping={"a": 1}, number=5)
    call = {"yaql": "<% json(ctx({})) %>", "jinja": "{{{{ json(ctx('{}')) }}}}"}[language]
    assert evaluate(call.format("text"), the_scope) == {"a": [1, {"b": None}]}
    assert evaluate(call.format("mapping"), the_scope) == {"a": 1}
    assert "TypeError: Given object is not typeof string." in fails(
        call.format("number"), the_scope
    )
    broken = fails(call.format("bad"), scope(bad="{nope"))
    assert "JSONDecodeError: Expecting property name enclosed in double quotes" in broken


def test_zip() -> None:
    the_scope = scope(a=[1, 2, 3], b=["x", "y"], none=None)
    assert evaluate("<% zip(ctx(a), ctx(b)) %>", the_scope) == [[1, "x"], [2, "y"], [3, None]]
    assert evaluate("<% zip(ctx(a), ctx(b), pad => 0) %>", the_scope) == [
        [1, "x"],
        [2, "y"],
        [3, 0],
    ]
    assert evaluate("<% zip(ctx(a)) %>", the_scope) == [1, 2, 3]
    assert evaluate("<% zip(ctx(none), ctx(b)) %>", the_scope) == [[None, "x"], [None, "y"]]
    assert evaluate("{{ zip(ctx('a'), ctx('b'), pad='-') }}", the_scope) == [
        (1, "x"),
        (2, "y"),
        (3, "-"),
    ]


def test_item() -> None:
    no_item = scope()
    assert evaluate("<% item() %>", no_item) is None
    assert "Item is not type of collections.abc.Mapping." in fails("<% item(x) %>", no_item)
    host = Scope(variables={}, current_item={"name": "web1", "port": 22})
    assert evaluate("<% item() %>", host) == {"name": "web1", "port": 22}
    assert evaluate("<% item(name) %>", host) == "web1"
    assert evaluate("<% item().port %>", host) == 22
    assert evaluate("{{ item('name') }}:{{ item().port }}", host) == "web1:22"
    assert fails("<% item(user) %>", host) == (
        "YaqlEvaluationException: Unable to evaluate expression '<% item(user) %>'. "
        'ExpressionEvaluationException: Item does not have key "user".'
    )
    assert evaluate("<% item() %>", Scope(variables={}, current_item=None)) is None


# Task functions


def workflow_scope(status: str, result: Any = NO_RESULT, route: int = 0) -> Scope:
    workflow = Workflow(
        {f"task1__r{route}": status, "task0__r0": "running"},
        {("task1", route): {"stdout": "hi"}, ("task8", 1): {}, ("task8", 2): {}},
    )
    return Scope(
        variables={"st2": ST2},
        current_task=CurrentTask("task1", route, result),
        workflow=workflow,
    )


@pytest.mark.parametrize(
    ("status", "succeeded", "failed", "completed"),
    [
        ("succeeded", True, False, True),
        ("failed", False, True, True),
        ("timeout", False, False, True),
        ("abandoned", False, False, True),
        ("canceled", False, False, True),
        ("running", False, False, False),
        ("null", False, False, False),
    ],
)
def test_task_status_functions(status: str, succeeded: bool, failed: bool, completed: bool) -> None:
    for route in (0, 2):
        the_scope = workflow_scope(status, route=route)
        for language in ("<% {}() %>", "{{{{ {}() }}}}"):
            assert evaluate(language.format("succeeded"), the_scope) is succeeded
            assert evaluate(language.format("failed"), the_scope) is failed
            assert evaluate(language.format("completed"), the_scope) is completed
        assert evaluate("<% task_status(task1) %>", the_scope) == status


def test_task_status_of_other_tasks_and_routes() -> None:
    the_scope = workflow_scope("succeeded", route=2)
    assert evaluate("<% task_status(task0) %>", the_scope) == "null"
    assert evaluate("<% task_status(task0, 0) %>", the_scope) == "running"
    assert evaluate("{{ task_status('task0', route=0) }}", the_scope) == "running"
    assert evaluate("<% task_status(task1) %>", Scope(variables={})) == "null"


def test_functions_of_the_current_task_need_one() -> None:
    message = (
        "YaqlEvaluationException: Unable to evaluate expression '<% succeeded() %>'. "
        "ExpressionEvaluationException: The current task is not set in the context."
    )
    assert fails("<% succeeded() %>", scope()) == message
    assert "The current task is not set in the context." in fails("{{ result() }}", scope())


def test_result() -> None:
    assert evaluate("<% result() %>", workflow_scope("running")) is None
    done = workflow_scope("succeeded", result={"stdout": "hi", "n": 2})
    assert evaluate("<% result().stdout %>", done) == "hi"
    assert evaluate("{{ result().n * 2 }}", done) == 4
    assert fails("<% succeeded() and result().value %>", done) == (
        "YaqlEvaluationException: Unable to resolve key 'value' in expression "
        "'<% succeeded() and result().value %>' from context."
    )


def test_task_of_the_examples_pack() -> None:
    the_scope = workflow_scope("succeeded")
    assert evaluate("<% task().task_id %>", the_scope) == "task1"
    assert evaluate('<% task("task1").task_id %>', the_scope) == "task1"
    assert evaluate("<% task(task1).result.stdout %>", the_scope) == "hi"
    assert evaluate("{{ task().task_id }}", the_scope) == "task1"
    assert evaluate('{{ task("task1").result.stdout }}', the_scope) == "hi"
    assert evaluate('<% task("task8", route=>1).route %>', the_scope) == 1
    assert (
        evaluate(
            '{{ task("task8", route=2).task_id + "__" + task("task8", route=2).route|string }}',
            the_scope,
        )
        == "task8__2"
    )
    assert (
        evaluate(
            '<% task("task8", route=>2).task_id + "__" + str(task("task8", route=>2).route) %>',
            the_scope,
        )
        == "task8__2"
    )


def test_task_errors_of_the_examples_pack() -> None:
    the_scope = workflow_scope("succeeded")
    assert fails('<% task("task0") %>', the_scope) == (
        "YaqlEvaluationException: Unable to evaluate expression '<% task(\"task0\") %>'. "
        'ExpressionEvaluationException: Unable to find task execution for "task0".'
    )
    assert fails('{{ task("task0") }}', the_scope) == (
        "JinjaEvaluationException: Unable to evaluate expression '{{ task(\"task0\") }}'. "
        'ExpressionEvaluationException: Unable to find task execution for "task0".'
    )
    assert fails("<% task() %>", scope()) == (
        "YaqlEvaluationException: Unable to resolve key 'id' in expression '<% task() %>' "
        "from context."
    )
    assert 'Unable to find task execution for "task1".' in fails("<% task(task1) %>", scope())


# st2kv


def datastore_scope(user: str | None = "stanley") -> tuple[Scope, Datastore]:
    datastore = Datastore(
        {
            ("system", "lakshmi"): ("kanahansnasnasdlsajks", None),
            ("system", "kami"): ("eggplant", "C1PHERTEXT"),
            ("user", "stanley:winson"): ("SoDiamondEng", None),
        }
    )
    variables = {"st2": {**ST2, "user": user}} if user else {}
    return Scope(variables=variables, datastore=datastore), datastore


@pytest.mark.parametrize(
    ("yaql", "jinja", "expected"),
    [
        ("st2kv('system.lakshmi')", "st2kv('system.lakshmi')", "kanahansnasnasdlsajks"),
        ("st2kv('winson')", "st2kv('winson')", "SoDiamondEng"),
        ("st2kv('system.kami', decrypt => true)", "st2kv('system.kami', decrypt=true)", "eggplant"),
        ("st2kv('system.kami')", "st2kv('system.kami')", "C1PHERTEXT"),
        (
            "st2kv('system.matt', default => 'stone')",
            "st2kv('system.matt', default='stone')",
            "stone",
        ),
        ("st2kv('system.matt', default => '')", "st2kv('system.matt', default='')", ""),
        ("st2kv('system.matt', default => null)", "st2kv('system.matt', default=None)", None),
    ],
)
def test_st2kv(yaql: str, jinja: str, expected: Any) -> None:
    the_scope, datastore = datastore_scope()
    assert evaluate(f"<% {yaql} %>", the_scope) == expected
    assert evaluate(f"{{{{ {jinja} }}}}", the_scope) == expected
    assert {user for _, user, _ in datastore.reads} == {"stanley"}


def test_st2kv_of_the_examples_pack() -> None:
    the_scope, _ = datastore_scope()
    variables = {**the_scope.variables, "key_name": "system.kami", "decrypt": True, "default": None}
    with_input = Scope(variables=variables, datastore=the_scope.datastore)
    assert evaluate("echo <% st2kv(ctx().key_name, decrypt => ctx().decrypt) %>", with_input) == (
        "echo eggplant"
    )
    statement = "{{ st2kv(ctx().key_name, decrypt=ctx().decrypt, default=ctx().default) }}"
    assert evaluate(statement, with_input) == "eggplant"


def test_st2kv_errors() -> None:
    the_scope, _ = datastore_scope()
    assert fails("<% st2kv('system.matt', decrypt => true) %>", the_scope) == (
        "YaqlEvaluationException: Unable to evaluate expression "
        "'<% st2kv('system.matt', decrypt => true) %>'. ExpressionEvaluationException: "
        'The key "matt" does not exist in the StackStorm datastore.'
    )
    assert 'The key "stanley:matt" does not exist' in fails("{{ st2kv('matt') }}", the_scope)
    assert "TypeError: Given key is not typeof string." in fails("<% st2kv(5) %>", the_scope)
    assert "TypeError: Decrypt parameter is not typeof bool." in fails(
        "{{ st2kv('winson', decrypt='yes') }}", the_scope
    )
    no_user, _ = datastore_scope(user=None)
    assert fails("<% st2kv('winson') %>", no_user) == (
        "YaqlEvaluationException: Unable to resolve key 'Could not get user from context.' in "
        "expression '<% st2kv('winson') %>' from context."
    )
    no_datastore = Scope(variables={"st2": ST2})
    assert "The datastore is not available" in fails("<% st2kv('winson') %>", no_datastore)


# StackStorm's function catalog, as the examples pack's workflows use it


def run_outputs(variables: dict[str, Any], outputs: list[tuple[str, str]]) -> dict[str, Any]:
    """Evaluate workflow outputs in order, each one seeing those before it, as orquesta does."""
    context = dict(variables)
    rendered = {}
    for name, statement in outputs:
        rendered[name] = context[name] = evaluate(statement, Scope(variables=context))
    return rendered


DATA_VARIABLES = {
    "data_json_str_1": '{"foo": {"bar": "foobar"}}',
    "none": None,
    "data_list": [{"a": 1, "b": 2}, {"x": 3, "y": 4}],
}

DATA_EXPECTED = {
    "data_json_str_1": '{"foo": {"bar": "foobar"}}',
    "data_json_str_2": '{"foo": {"bar": "foobar"}}',
    "data_json_str_3": '{"foo": {"bar": "foobar"}}',
    "data_json_obj_1": {"foo": {"bar": "foobar"}},
    "data_json_obj_2": {"foo": {"bar": "foobar"}},
    "data_json_obj_3": {"foo": {"bar": "foobar"}},
    "data_json_obj_4": {"foo": {"bar": "foobar"}},
    "data_yaml_str_1": "foo:\n  bar: foobar\n",
    "data_yaml_str_2": "foo:\n  bar: foobar\n",
    "data_query_1": ["foobar"],
    "data_none_str": "%*****__%NONE%__*****%",
    "data_str": "foobar",
}

DATA_OUTPUTS = [
    ("data_json_str_1", 'ctx("data_json_str_1")'),
    ("data_json_obj_1", 'from_json_string(ctx("data_json_str_1"))'),
    ("data_yaml_str_1", 'to_yaml_string(ctx("data_json_obj_1"))'),
    ("data_json_obj_2", 'from_yaml_string(ctx("data_yaml_str_1"))'),
    ("data_json_str_2", 'to_json_string(ctx("data_json_obj_2"))'),
    ("data_query_1", 'jsonpath_query(ctx("data_json_obj_2"), "$.foo.bar")'),
    ("data_json_obj_3", 'json_parse(ctx("data_json_str_1"))'),
    ("data_yaml_str_2", 'yaml_dump(ctx("data_json_obj_3"))'),
    ("data_json_obj_4", 'yaml_parse(ctx("data_yaml_str_2"))'),
    ("data_json_str_3", 'json_dump(ctx("data_json_obj_4"))'),
    ("data_none_str", 'use_none(ctx("none"))'),
    ("data_str", 'use_none("foobar")'),
]


def test_data_functions_in_yaql() -> None:
    outputs = [(name, f"<% {call} %>") for name, call in DATA_OUTPUTS]
    assert run_outputs(DATA_VARIABLES, outputs) == DATA_EXPECTED


def test_data_functions_in_jinja() -> None:
    outputs = [(name, f"{{{{ {call} }}}}") for name, call in DATA_OUTPUTS]
    outputs.append(
        (
            "data_pipe_str_1",
            '{{ ctx("data_json_str_1") | from_json_string() | to_yaml_string() | '
            "from_yaml_string() | to_json_string() }}",
        )
    )
    outputs.append(("data_list_str", '{{ to_yaml_string(ctx("data_list")) }}'))
    assert run_outputs(DATA_VARIABLES, outputs) == {
        **DATA_EXPECTED,
        "data_pipe_str_1": '{"foo": {"bar": "foobar"}}',
        "data_list_str": "- a: 1\n  b: 2\n- x: 3\n  y: 4\n",
    }


def test_yaql_collections_reach_the_json_and_yaml_writers() -> None:
    the_scope = scope(data_list=DATA_VARIABLES["data_list"])
    assert evaluate('<% to_yaml_string(ctx("data_list")) %>', the_scope) == (
        "- a: 1\n  b: 2\n- x: 3\n  y: 4\n"
    )
    assert evaluate("<% to_json_string(ctx(data_list), sortKeys => true) %>", the_scope) == (
        '[{"a": 1,"b": 2},{"x": 3,"y": 4}]'
    )
    assert evaluate("<% json_escape(ctx(text)) %>", scope(text='say "hi"\n')) == 'say \\"hi\\"\\n'


CATALOG_CASES = [
    ('basename("/path/to/some/file.txt")', "file.txt"),
    ('dirname("/path/to/some/file.txt")', "/path/to/some"),
    ('regex_match("xyz", "x")', True),
    ('regex_replace("xyz", "x", "wx")', "wxyz"),
    ('regex_search("xyz", "y")', True),
    (
        r'regex_substring("I live at 668 Infinite Dr", "([0-9]{3} \w+ (?:Ave|St|Dr))")',
        "668 Infinite Dr",
    ),
    ("to_human_time_from_seconds(12345)", "3h25m45s"),
    ('version_compare("0.10.0", "0.10.0")', 0),
    ('version_compare("0.10.0", "0.10.1")', -1),
    ('version_compare("0.10.1", "0.10.0")', 1),
    ('version_equal("0.10.0", "0.10.0")', True),
    ('version_more_than("0.9.0", "0.10.0")', False),
    ('version_less_than("0.10.0", "0.9.0")', False),
    ('version_match("0.10.1", ">0.10.0")', True),
    ('version_bump_major("0.10.0")', "1.0.0"),
    ('version_bump_minor("0.10.0")', "0.11.0"),
    ('version_bump_patch("0.10.0")', "0.10.1"),
    ('version_strip_patch("0.10.0")', "0.10"),
]


@pytest.mark.parametrize(("call", "expected"), CATALOG_CASES)
def test_stackstorm_functions_in_both_languages(call: str, expected: Any) -> None:
    assert evaluate(f"<% {call} %>", scope()) == expected
    assert evaluate(f"{{{{ {call} }}}}", scope()) == expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("<% regex_match('XYZ', 'x', ignorecase => true) %>", True),
        ("{{ 'XYZ' | regex_search('y', ignorecase=true) }}", True),
        ("{{ 'a1b2' | regex_substring('[0-9]', 1) }}", "2"),
        ("<% to_human_time_from_seconds(0) %>", "0s"),
        ("<% to_human_time_from_seconds(59) %>", "59s"),
        ("<% to_human_time_from_seconds(61) %>", "1m1s"),
        ("<% to_human_time_from_seconds(90061) %>", "1d1h1m1s"),
        ("<% to_human_time_from_seconds(31536001) %>", "1y0d0h0m1s"),
        ("{{ 0.5 | to_human_time_from_seconds }}", "0.5\u03bcs"),
        ("<% jsonpath_query(ctx(hosts), '$[*].name') %>", ["a", "b"]),
        ("{{ jsonpath_query(ctx('hosts'), 'nope') }}", None),
        ("<% version_match('1.2.3', '<=1.2.3') %>", True),
        ("{{ '{\"a\": 1}' | json_parse }}", {"a": 1}),
    ],
)
def test_function_arguments(statement: str, expected: Any) -> None:
    assert evaluate(statement, scope(hosts=[{"name": "a"}, {"name": "b"}])) == expected


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("<% regex_substring('abc', '[0-9]') %>", "IndexError: list index out of range"),
        ("<% version_compare('one', '1.0.0') %>", "ValueError: one is not valid SemVer string"),
        ("{{ jsonpath_query({}, '$..name') }}", "ValueError: '..' (descendants) is not supported"),
        ("<% from_json_string('{') %>", "JSONDecodeError"),
    ],
)
def test_function_errors(statement: str, error: str) -> None:
    assert error in fails(statement, scope())


# Cost and safety


class CountingVariables(Mapping[str, Any]):
    """Variables that record which of them were read."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_only_the_variables_an_expression_reaches_are_read() -> None:
    variables = CountingVariables({"x": 1, "big": list(range(1000)), "other": {"a": 1}})
    the_scope = Scope(variables=variables)
    assert evaluate("<% ctx(x) %>", the_scope) == 1
    assert evaluate("<% ctx().x %>", the_scope) == 1
    assert evaluate("{{ ctx('x') }}", the_scope) == 1
    assert variables.read == {"x"}
    assert evaluate("<% ctx().other.a %>", the_scope) == 1
    assert variables.read == {"x", "other"}


def test_a_variable_is_converted_once_per_scope() -> None:
    the_scope = scope(big=[{"n": index} for index in range(100)])
    first = evaluate("<% ctx(big).len() %>", the_scope)
    converted = the_scope.memo[("yaql", "big")]
    assert evaluate("<% ctx().big.where($.n > 49).len() %>", the_scope) == 50
    assert first == 100 and the_scope.memo[("yaql", "big")] is converted


def test_evaluation_never_changes_the_context() -> None:
    variables = {"numbers": [3, 1, 2], "mapping": {"a": 1}}
    the_scope = Scope(variables=variables)
    assert evaluate("<% ctx(numbers).orderBy($) %>", the_scope) == [1, 2, 3]
    assert evaluate("<% ctx(mapping).set(b, 2) %>", the_scope) == {"a": 1, "b": 2}
    for statement in ("{{ ctx().numbers.append(4) }}", "{{ ctx().mapping.update({'b': 2}) }}"):
        assert "SecurityError" in fails(statement, the_scope)
    assert variables == {"numbers": [3, 1, 2], "mapping": {"a": 1}}


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("<% range(100000000) %>", "CollectionTooLargeException"),
        ("<% range(100000000).toList() %>", "CollectionTooLargeException"),
        ("<% sequence().len() %>", "CollectionTooLargeException"),
        ("<% pow(3, 10000000000) %>", "MemoryQuotaExceededException"),
        ("<% shiftBitsLeft(1, 100000000000) %>", "MemoryQuotaExceededException"),
        ("<% 'a' * 100000000 %>", "MemoryQuotaExceededException"),
        ("<% ctx().__class__ %>", "YaqlLexicalException"),
        ("<% 'a'.__class__ %>", "YaqlLexicalException"),
        ("<% ctx().get('__class__') %>", ""),
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{{ cycler.__init__.__globals__ }}", "SecurityError"),
        ("{{ ctx().__class__ }}", "There are unresolved variables: ctx().__class__"),
        ("{{ range(10 ** 9) | list }}", "OverflowError"),
    ],
)
def test_expressions_cannot_reach_python_or_exhaust_the_engine(statement: str, error: str) -> None:
    if error:
        assert error in fails(statement, scope())
    else:
        assert evaluate(statement, scope()) is None


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("<% range(5).len() %>", 5),
        ("<% len(range(3).select($)) %>", 3),
        ("<% 'abc'.len() %>", 3),
        ("<% len([1, 2]) %>", 2),
        ("<% {a => 1}.len() %>", 1),
        ("<% pow(2, 10) %>", 1024),
        ("<% pow(2, 10, 1000) %>", 24),
        ("<% pow(4.0, 0.5) %>", 2.0),
        ("<% shiftBitsLeft(1, 4) %>", 16),
        ("<% shiftBitsLeft(0, 100000000000) %>", 0),
    ],
)
def test_bounded_functions_still_work(statement: str, expected: Any) -> None:
    assert evaluate(statement, scope()) == expected


def test_yaql_evaluation_time_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaql_limits, "TIME_LIMIT_SECONDS", 0.2)
    message = fails("<% range(10000).select(range(10000).sum()) %>", scope())
    assert message.endswith(
        "EvaluationTimeoutException: Expression evaluation took longer than 0.2 seconds"
    )


def test_parsed_expressions_are_cached() -> None:
    statement = "<% ctx(cached_once) + 1 %>"
    evaluate(statement, scope(cached_once=1))
    hits = yaql_expressions._parsed.cache_info().hits
    assert evaluate(statement, scope(cached_once=2)) == 3
    assert yaql_expressions._parsed.cache_info().hits == hits + 1
