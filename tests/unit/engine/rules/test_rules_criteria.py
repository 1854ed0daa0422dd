"""Rule criteria: every StackStorm operator, key paths, search, templates and compile errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from poundcake.engine.rendering import render_string
from poundcake.engine.rules.criteria import OPERATORS, CriteriaError, compile_criteria
from poundcake.exceptions import ValidationError

PAST = "2000-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00+00:00"
MISSING = object()  # the payload has no "value" key


def evaluate(operator: str, pattern: Any, value: Any) -> bool:
    criteria = {"trigger.value": {"type": operator, "pattern": pattern}}
    payload = {"other": 1} if value is MISSING else {"value": value, "other": 1}
    return compile_criteria(criteria).matches(payload)


# (operator names, pattern, value, expected)
OPERATOR_CASES: list[tuple[tuple[str, ...], Any, Any, bool]] = [
    (("matchwildcard",), "disk*", "diskfull", True),
    (("matchwildcard",), "h?st-[0-9]", "host-7", True),
    (("matchwildcard",), "disk*", "memory", False),
    (("matchwildcard",), "*", 5, False),  # not text: no match, not an error
    (("matchregex",), "^disk", "diskfull", True),
    (("matchregex",), "full", "diskfull", False),  # re.match anchors at the start
    (("matchregex",), "a.b", "a\nb", True),  # DOTALL
    (("regex",), "full$", "diskfull", True),
    (("regex",), "^full", "diskfull", False),
    (("regex",), "a.b", "a\nb", False),  # no DOTALL
    (("regex",), "5", 5, False),
    (("iregex",), "DISK", "diskfull", True),
    (("iregex",), "memory", "DiskFull", False),
    (("eq", "equals"), "critical", "critical", True),
    (("eq", "equals"), "critical", "warning", False),
    (("eq", "equals"), 5, "5", False),  # typed: no casting
    (("eq", "equals"), "5", 5, False),
    (("eq", "equals"), 5, 5.0, True),
    (("eq", "equals"), ["a", "b"], ["a", "b"], True),
    (("neq", "nequals"), "critical", "warning", True),
    (("neq", "nequals"), "critical", "critical", False),
    (("neq", "nequals"), 5, "5", True),
    (("ieq", "iequals"), "CRITICAL", "Critical", True),
    (("ieq", "iequals"), "crit", "critical", False),
    (("ieq", "iequals"), 5, 5, False),  # .lower() of a number fails: no match
    (("contains",), "disk", "diskfull", True),
    (("contains",), "mem", "diskfull", False),
    (("contains",), "a", ["a", "b"], True),  # a list value: membership
    (("contains",), "x", 5, False),
    (("icontains",), "DISK", "diskfull", True),
    (("icontains",), "mem", "DiskFull", False),
    (("icontains",), "a", ["a"], False),  # .lower() of a list fails
    (("ncontains",), "mem", "diskfull", True),
    (("ncontains",), "disk", "diskfull", False),
    (("ncontains",), "x", 5, False),
    (("incontains",), "MEM", "diskfull", True),
    (("incontains",), "DISK", "diskfull", False),
    (("startswith",), "disk", "diskfull", True),
    (("startswith",), "full", "diskfull", False),
    (("startswith",), "5", 55, False),
    (("istartswith",), "DISK", "diskfull", True),
    (("istartswith",), "FULL", "diskfull", False),
    (("endswith",), "full", "diskfull", True),
    (("endswith",), "disk", "diskfull", False),
    (("iendswith",), "FULL", "diskfull", True),
    (("iendswith",), "DISK", "diskfull", False),
    (("lt", "lessthan"), 10, 5, True),
    (("lt", "lessthan"), 10, 15, False),
    (("lt", "lessthan"), 10, "5", False),  # str < int: TypeError, no match
    (("lt", "lessthan"), "b", "a", True),  # strings compare as strings
    (("lt", "lessthan"), 10, 10, False),
    (("gt", "greaterthan"), 10, 15, True),
    (("gt", "greaterthan"), 10, 5, False),
    (("gt", "greaterthan"), 10, "15", False),
    (("gt", "greaterthan"), 1.5, 2, True),
    (("td_lt", "timediff_lt"), 3600, FUTURE, True),
    (("td_lt", "timediff_lt"), 3600, PAST, False),
    (("td_lt", "timediff_lt"), 3600, "not a date", False),
    (("td_gt", "timediff_gt"), 3600, PAST, True),
    (("td_gt", "timediff_gt"), 3600, FUTURE, False),
    (("td_gt", "timediff_gt"), "3600", PAST, True),  # seconds as text
    (("td_gt", "timediff_gt"), 3600, "2000-01-01 00:00:00", True),  # naive: UTC
    (("td_gt", "timediff_gt"), 3600, "2000-01-01T00:00:00.123456789Z", True),  # Alertmanager
    (("td_gt", "timediff_gt"), 3600, "Sat, 01 Jan 2000 00:00:00 GMT", True),  # RFC 2822
    (("td_gt", "timediff_gt"), "soon", PAST, False),
    (("td_gt", "timediff_gt"), 3600, 12, False),
    (("exists",), None, "x", True),
    (("exists",), None, 0, True),
    (("exists",), None, False, True),
    (("exists",), None, None, False),
    (("nexists",), None, "x", False),
    (("nexists",), None, None, True),
    (("inside", "in"), ["critical", "warning"], "critical", True),
    (("inside", "in"), ["critical", "warning"], "info", False),
    (("inside", "in"), "critical,warning", "warn", True),  # substring of a text pattern
    (("inside", "in"), [1, 2], "1", False),
    (("inside", "in"), "abc", 1, False),  # int in str: TypeError
    (("ninside", "nin"), ["critical"], "info", True),
    (("ninside", "nin"), ["critical"], "critical", False),
    (("ninside", "nin"), "abc", 1, False),
]


@pytest.mark.parametrize(
    ("operator", "pattern", "value", "expected"),
    [
        pytest.param(name, pattern, value, expected, id=f"{name}-{pattern!r}-{value!r}")
        for names, pattern, value, expected in OPERATOR_CASES
        for name in names
    ],
)
def test_operator(operator: str, pattern: Any, value: Any, expected: bool) -> None:
    assert evaluate(operator, pattern, value) is expected


def test_every_operator_is_covered_by_the_table() -> None:
    covered = {name for names, *_ in OPERATOR_CASES for name in names} | {"search"}
    assert covered == set(OPERATORS)
    assert len(OPERATORS) == 33


# A missing key is a None value: only these operators can match it.
NONE_VALUE_MATCHES = {"neq", "nequals", "nexists", "ninside", "nin"}
PATTERN_FOR: dict[str, Any] = {
    **dict.fromkeys(("td_lt", "timediff_lt", "td_gt", "timediff_gt"), 10),
    **dict.fromkeys(("lt", "lessthan", "gt", "greaterthan"), 5),
    **{name: ["a"] for name in ("inside", "in", "ninside", "nin")},
}


@pytest.mark.parametrize("operator", sorted(set(OPERATORS) - {"search"}))
def test_a_missing_key_is_none(operator: str) -> None:
    pattern = PATTERN_FOR.get(operator, "a")
    assert evaluate(operator, pattern, MISSING) is (operator in NONE_VALUE_MATCHES)
    assert evaluate(operator, pattern, None) is (operator in NONE_VALUE_MATCHES)


def test_none_inside_a_list_pattern_that_holds_none() -> None:
    assert evaluate("inside", ["a", None], MISSING) is True
    assert evaluate("ninside", ["a", None], MISSING) is False


@pytest.mark.parametrize(
    ("operator", "pattern", "value", "expected"),
    [
        ("eq", "critical", b"critical", True),
        ("iequals", "CRITICAL", b"critical", True),
        ("contains", "disk", b"diskfull", True),
        ("regex", "^disk", b"diskfull", True),
        ("matchwildcard", "disk*", b"diskfull", True),
        ("inside", ["critical"], b"critical", True),
        ("nequals", "critical", b"critical", False),
        ("lt", "b", b"a", False),  # lt does not decode: bytes < str fails
        ("eq", "critical", b"\xff", False),  # undecodable: no match, no error
    ],
)
def test_bytes_values_are_decoded(
    operator: str, pattern: Any, value: bytes, expected: bool
) -> None:
    assert evaluate(operator, pattern, value) is expected


@pytest.mark.parametrize(
    ("operator", "pattern", "value", "expected"),
    [
        ("eq", "a.*", "abc", False),
        ("eq", "a.*", "a.*", True),
        ("regex", r"^a\.\*$", "a.*", True),
        ("contains", "(", "x(y", True),
        ("contains", "[", "[x]", True),
        ("startswith", "*", "*star", True),
        ("matchwildcard", "*", "[x](y)*?", True),
        ("matchwildcard", "a*", "[a]", False),
        ("iequals", "{{ 7*7 }}", "49", False),  # a template pattern without a renderer
        ("eq", "49", "{{ 7*7 }}", False),  # a value is never rendered
        ("iregex", "^x$", "x\n", True),  # $ before a trailing newline, as re.search does
    ],
)
def test_payload_values_are_data(operator: str, pattern: Any, value: Any, expected: bool) -> None:
    assert evaluate(operator, pattern, value) is expected


ALERT = {
    "status": "firing",
    "alerts": [
        {"labels": {"alertname": "DiskFull", "instance": "db-1"}, "value": 93},
        {"labels": {"alertname": "DiskFull", "team": "storage"}, "value": 97},
    ],
    "labels": {"app.kubernetes.io/name": "postgres", "x-y": "dash"},
    "headers": {"X-Foo": "bar", "it's": "quoted"},
    "name": "host",
    "empty": [],
    "nothing": None,
    "count": 3,
    "mapping": {"a": 1},
}


@pytest.mark.parametrize(
    ("key", "operator", "pattern", "expected"),
    [
        ("trigger.status", "eq", "firing", True),
        ("trigger.alerts[0].labels.alertname", "eq", "DiskFull", True),
        ("trigger.alerts[1].value", "eq", 97, True),
        ("trigger.alerts[-1].value", "eq", 97, True),
        ("trigger.alerts[*].value", "eq", 93, True),  # several found: the first
        ("trigger.alerts[*].labels.team", "eq", "storage", True),  # first that has it
        ("trigger.alerts[1:].value", "eq", 97, True),
        ("trigger.alerts.[0].value", "eq", 93, True),
        ('trigger.labels."app.kubernetes.io/name"', "eq", "postgres", True),
        ("trigger.labels['app.kubernetes.io/name']", "eq", "postgres", True),
        ("trigger.headers['X-Foo']", "eq", "bar", True),
        ("trigger.headers.X-Foo", "eq", "bar", True),
        ('trigger.headers."it\\\'s"', "eq", "quoted", True),
        ("trigger.labels.x-y", "eq", "dash", True),
        ("trigger . status", "eq", "firing", True),
        ("trigger.status#second", "eq", "firing", True),
        ("trigger.*.a", "eq", 1, True),
        ("trigger.missing,status", "eq", "firing", True),
        ("trigger.name[0]", "eq", "h", True),  # an index into text is a character
        ("trigger.mapping[*].a", "eq", 1, True),  # a mapping is a 1-list
        ("trigger", "exists", None, True),
        ("trigger.missing.deeper.still", "nexists", None, True),
        ("trigger.alerts[5].value", "nexists", None, True),  # out of range
        ("trigger.empty[0]", "nexists", None, True),
        ("trigger.status.deeper", "nexists", None, True),  # a field of text
        ("trigger.alerts.labels", "nexists", None, True),  # a field of a list
        ("trigger.alerts[0].labels.missing", "nexists", None, True),
        # An index into a mapping, a number or null is an error in jsonpath-rw 1.4: no match,
        # not even for nexists.
        ("trigger.mapping[0]", "nexists", None, False),
        ("trigger.count[0]", "nexists", None, False),
        ("trigger.nothing[0]", "nexists", None, False),
        ("trigger.nothing[*]", "nexists", None, False),
        ("trigger.missing[0]", "nexists", None, True),  # nothing found before the index
        ("trigger.empty[-1]", "nexists", None, False),  # IndexError
    ],
)
def test_key_paths(key: str, operator: str, pattern: Any, expected: bool) -> None:
    criterion: dict[str, Any] = {"type": operator}
    if pattern is not None:
        criterion["pattern"] = pattern
    assert compile_criteria({key: criterion}).matches(ALERT) is expected


def test_the_same_key_can_be_tested_twice_with_a_hash_suffix() -> None:
    criteria = compile_criteria(
        {
            "trigger.alerts[1].value#low": {"type": "gt", "pattern": 90},
            "trigger.alerts[1].value#high": {"type": "lt", "pattern": 95},
        }
    )
    assert criteria.matches(ALERT) is False
    assert criteria.matches({"alerts": [{}, {"value": 92}]}) is True


def test_all_criteria_must_match() -> None:
    criteria = compile_criteria(
        {
            "trigger.status": {"type": "eq", "pattern": "firing"},
            "trigger.alerts[0].labels.instance": {"type": "startswith", "pattern": "web"},
        }
    )
    assert criteria.matches(ALERT) is False
    assert criteria.matches({**ALERT, "alerts": [{"labels": {"instance": "web-1"}}]}) is True


@pytest.mark.parametrize("payload", [None, {}, [], "", 0])
def test_empty_payloads(payload: Any) -> None:
    assert compile_criteria({}).matches(payload) is True
    assert compile_criteria({"trigger.x": {"type": "nexists"}}).matches(payload) is False


FIELDS = [
    {"field_name": "Status", "to_value": "Approved", "score": 40},
    {"field_name": "Owner", "to_value": "alice", "score": 60},
]


@pytest.mark.parametrize(
    ("condition", "item_criteria", "expected"),
    [
        (
            "any",
            {
                "item.field_name": {"type": "equals", "pattern": "Status"},
                "item.to_value": {"type": "iequals", "pattern": "approved"},
            },
            True,
        ),
        (
            "any",  # no single element passes both
            {
                "item.field_name": {"type": "equals", "pattern": "Status"},
                "item.to_value": {"type": "equals", "pattern": "alice"},
            },
            False,
        ),
        ("all", {"item.score": {"type": "gt", "pattern": 30}}, True),
        ("all", {"item.score": {"type": "gt", "pattern": 50}}, False),
        (
            "all",
            {
                "item.score#low": {"type": "gt", "pattern": 30},
                "item.score#high": {"type": "lt", "pattern": 50},
            },
            False,
        ),
        (
            "any2any",
            {
                "item.field_name": {"type": "equals", "pattern": "nope"},
                "item.to_value": {"type": "regex", "pattern": "^ali"},
            },
            True,
        ),
        (
            "all2any",
            {
                "item.field_name": {"type": "equals", "pattern": "Status"},
                "item.to_value": {"type": "equals", "pattern": "alice"},
            },
            True,
        ),
        (
            "all2any",
            {
                "item.field_name": {"type": "equals", "pattern": "Status"},
                "item.score": {"type": "lt", "pattern": 50},
            },
            False,
        ),
        ("any", {"item.missing": {"type": "nexists"}}, True),
        ("any", {}, True),  # an element passes all of no criteria
        ("any2any", {}, False),  # and none of them
    ],
)
def test_search(condition: str, item_criteria: dict[str, Any], expected: bool) -> None:
    criteria = compile_criteria(
        {"trigger.fields": {"type": "search", "condition": condition, "pattern": item_criteria}}
    )
    assert criteria.matches({"fields": FIELDS}) is expected


@pytest.mark.parametrize(
    ("value", "condition", "expected"),
    [
        ([], "any", False),
        ([], "all", True),  # all() of nothing
        ({"name": "a"}, "any", True),  # a mapping is a 1-list
        ("abc", "any", False),  # text is iterated: no element has a name
        (None, "all", False),
        (5, "all", False),
    ],
)
def test_search_on_values_that_are_not_lists(value: Any, condition: str, expected: bool) -> None:
    criteria = compile_criteria(
        {
            "trigger.values": {
                "type": "search",
                "condition": condition,
                "pattern": {"item.name": {"type": "eq", "pattern": "a"}},
            }
        }
    )
    assert criteria.matches({"values": value, "other": 1}) is expected


def test_search_nests_and_renders_item_patterns() -> None:
    criteria = compile_criteria(
        {
            "trigger.alerts": {
                "type": "search",
                "condition": "any",
                "pattern": {
                    "item.labels.team": {"type": "eq", "pattern": "{{ st2kv.system.team }}"},
                    "item.checks": {
                        "type": "search",
                        "condition": "all",
                        "pattern": {"item.ok": {"type": "eq", "pattern": False}},
                    },
                },
            }
        }
    )
    payload = {
        "alerts": [
            {"labels": {"team": "db"}, "checks": [{"ok": False}, {"ok": True}]},
            {"labels": {"team": "db"}, "checks": [{"ok": False}, {"ok": False}]},
        ]
    }
    assert criteria.matches(payload, renderer({"team": "db"})) is True
    assert criteria.matches(payload, renderer({"team": "web"})) is False
    assert criteria.matches(payload) is False  # no renderer: the templated item never matches


def renderer(datastore: dict[str, Any]) -> Callable[[str], Any]:
    """Render as the rules engine does: ``st2kv.system`` backed by ``datastore``."""
    return lambda template: render_string(template, {"st2kv": {"system": datastore}})


def test_templated_patterns_are_rendered_on_every_evaluation() -> None:
    criteria = compile_criteria(
        {"trigger.value": {"type": "gt", "pattern": "{{ st2kv.system.threshold }}"}}
    )
    datastore = {"threshold": 90}
    render = renderer(datastore)
    assert criteria.matches({"value": 95}, render) is True
    datastore["threshold"] = 99
    assert criteria.matches({"value": 95}, render) is False


def test_static_patterns_are_not_rendered() -> None:
    calls: list[str] = []

    def render(template: str) -> Any:
        calls.append(template)
        return template

    criteria = compile_criteria({"trigger.value": {"type": "eq", "pattern": "{ not a template }"}})
    assert criteria.matches({"value": "{ not a template }"}, render) is True
    assert calls == []


@pytest.mark.parametrize(
    ("operator", "template", "datastore", "value", "expected"),
    [
        ("regex", "^{{ st2kv.system.prefix }}-", {"prefix": "db"}, "db-1", True),
        ("regex", "^{{ st2kv.system.prefix }}-", {"prefix": "web"}, "db-1", False),
        ("regex", "{{ st2kv.system.prefix }}", {"prefix": "("}, "(", False),  # bad regex
        ("iequals", "{{ st2kv.system.name }}", {"name": "DB"}, "db", True),
        ("inside", "{{ st2kv.system.names }}", {"names": ["a", "b"]}, "b", True),
        ("td_gt", "{{ st2kv.system.age }}", {"age": "60"}, PAST, True),
        ("eq", "{{ st2kv.system.missing }}", {}, "x", False),  # undefined: render fails
        ("eq", "{{ st2kv.system.nothing }}", {"nothing": None}, None, False),  # None pattern
        ("nequals", "{{ st2kv.system.nothing }}", {"nothing": None}, "x", True),
        ("nequals", "{{ st2kv.system.nothing }}", {"nothing": None}, None, False),
        ("exists", "{{ st2kv.system.nothing }}", {"nothing": None}, "x", True),
    ],
)
def test_templated_patterns(
    operator: str, template: str, datastore: dict[str, Any], value: Any, expected: bool
) -> None:
    criteria = compile_criteria({"trigger.value": {"type": operator, "pattern": template}})
    assert criteria.matches({"value": value, "other": 1}, renderer(datastore)) is expected


def test_a_renderer_that_raises_means_no_match() -> None:
    def broken(template: str) -> Any:
        raise RuntimeError("datastore is down")

    criteria = compile_criteria({"trigger.value": {"type": "eq", "pattern": "{{ x }}"}})
    assert criteria.matches({"value": "x"}, broken) is False
    assert criteria.matches({"value": "x"}, lambda template: "x") is True
    assert criteria.matches({"value": "x"}) is False  # no renderer


def test_operator_names_are_case_insensitive() -> None:
    criteria = compile_criteria(
        {
            "trigger.a": {"type": "EQUALS", "pattern": 1},
            "trigger.b": {"type": "Regex", "pattern": "^x"},
            "trigger.c": {"type": "Search", "condition": "any", "pattern": {}},
        }
    )
    assert criteria.matches({"a": 1, "b": "xy", "c": [1]}) is True


@pytest.mark.parametrize(
    ("criteria", "key", "message"),
    [
        (
            {"trigger.body.x": {"type": "foo", "pattern": 1}},
            "criteria.trigger.body.x.type",
            'criteria.trigger.body.x.type: "foo" is not a criteria operator',
        ),
        ({"trigger.x": {"pattern": 1}}, "criteria.trigger.x.type", "is required"),
        ({"trigger.x": {"type": 5, "pattern": 1}}, "criteria.trigger.x.type", "not a criteria"),
        ({"trigger.x": {"type": "eq"}}, "criteria.trigger.x.pattern", 'operator "eq"'),
        ({"trigger.x": {"type": "gt", "pattern": None}}, "criteria.trigger.x.pattern", "required"),
        ({"trigger.x": {"type": "regex", "pattern": "("}}, "criteria.trigger.x.pattern", "regular"),
        ({"trigger.x": {"type": "iregex", "pattern": 500}}, "criteria.trigger.x.pattern", "regul"),
        ({"trigger.x": {"type": "matchregex", "pattern": "[a-"}}, "criteria.trigger.x.pattern", ""),
        ({"trigger.x": {"type": "eq", "pattern": "{{ x "}}, "criteria.trigger.x.pattern", "templ"),
        ({"body.x": {"type": "eq", "pattern": 1}}, "criteria.body.x", "must start with 'trigger'"),
        ({"trigger.x[": {"type": "eq", "pattern": 1}}, "criteria.trigger.x[", "not a payload path"),
        ({"trigger.x.0": {"type": "eq", "pattern": 1}}, "criteria.trigger.x.0", "path"),
        ({"trigger..x": {"type": "eq", "pattern": 1}}, "criteria.trigger..x", "descendants"),
        ({"trigger.x y": {"type": "eq", "pattern": 1}}, "criteria.trigger.x y", "path"),
        ({"trigger.x": "eq"}, "criteria.trigger.x", "must be a mapping"),
        (
            {"trigger.items": {"type": "search", "condition": "any", "pattern": [1]}},
            "criteria.trigger.items.pattern",
            "mapping of item criteria",
        ),
        (
            {"trigger.items": {"type": "search", "condition": "some", "pattern": {}}},
            "criteria.trigger.items.condition",
            "'some' is not one of",
        ),
        (
            {"trigger.items": {"type": "search", "pattern": {}}},
            "criteria.trigger.items.condition",
            "None is not one of",
        ),
        (
            {
                "trigger.items": {
                    "type": "search",
                    "condition": "any",
                    "pattern": {"item.name": {"type": "bogus", "pattern": 1}},
                }
            },
            "criteria.trigger.items.pattern.item.name.type",
            '"bogus" is not a criteria operator',
        ),
        (
            {
                "trigger.items": {
                    "type": "search",
                    "condition": "any",
                    "pattern": {"trigger.name": {"type": "eq", "pattern": 1}},
                }
            },
            "criteria.trigger.items.pattern.trigger.name",
            "must start with 'item'",
        ),
    ],
)
def test_compile_errors_name_the_key(criteria: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(CriteriaError) as raised:
        compile_criteria(criteria)
    assert raised.value.key == key
    assert str(raised.value).startswith(f"{key}: ")
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, ValidationError)


@pytest.mark.parametrize(
    "criterion",
    [
        {"type": "exists"},
        {"type": "nexists"},
        {"type": "regex", "pattern": "{{ st2kv.system.x }}("},  # templated: checked when rendered
        {"type": "iequals", "pattern": 5},  # accepted as StackStorm does; it never matches
        {"type": "matchwildcard", "pattern": 5},
    ],
)
def test_criteria_that_compile(criterion: dict[str, Any]) -> None:
    assert compile_criteria({"trigger.x": criterion}).matches({"x": 5}) is (
        criterion["type"] == "exists"
    )


def test_explain_names_the_first_failing_criterion() -> None:
    criteria = compile_criteria(
        {
            "trigger.status": {"type": "eq", "pattern": "firing"},
            "trigger.alerts[0].labels.alertname": {"type": "equals", "pattern": "CPUHigh"},
            "trigger.count": {"type": "gt", "pattern": 100},
        }
    )
    assert criteria.explain(ALERT) == (
        "trigger.alerts[0].labels.alertname: equals 'CPUHigh' vs 'DiskFull'"
    )
    assert (
        compile_criteria({"trigger.status": {"type": "eq", "pattern": "firing"}}).explain(ALERT)
        is None
    )
    assert criteria.explain({}) == "empty payload {} vs 3 criteria"


def test_explain_shows_templates_and_how_they_rendered() -> None:
    criteria = compile_criteria(
        {"trigger.count": {"type": "gt", "pattern": "{{ st2kv.system.n }}"}}
    )
    assert criteria.explain({"count": 3}) == (
        "trigger.count: gt '{{ st2kv.system.n }}' (no renderer) vs 3"
    )
    assert criteria.explain({"count": 3}, renderer({"n": 5})) == (
        "trigger.count: gt '{{ st2kv.system.n }}' rendered as 5 vs 3"
    )
    assert criteria.explain({"count": 3}, renderer({})) == (
        "trigger.count: gt '{{ st2kv.system.n }}' (render failed) vs 3"
    )
    assert criteria.explain({"count": 9}, renderer({"n": 5})) is None


def test_an_operator_error_is_logged_at_debug_with_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="poundcake.engine.rules.criteria")
    assert evaluate("lt", 10, "5") is False
    record = caplog.records[-1]
    assert record.levelno == logging.DEBUG
    assert "trigger.value" in record.getMessage()
    assert "TypeError" in record.getMessage()


def test_compiled_criteria_are_reusable_across_payloads() -> None:
    criteria = compile_criteria({"trigger.n": {"type": "regex", "pattern": "^a"}})
    outcomes = [criteria.matches({"n": value}) for value in ("ab", "ba", "abc", 1, None, "a")]
    assert outcomes == [True, False, True, False, False, True]
