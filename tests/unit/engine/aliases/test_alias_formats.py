"""Alias formats: parameters extracted from a command as StackStorm's alias parser extracts them.

The expected values were checked against StackStorm 3.9's ``ActionAliasFormatParser`` on the same
formats and commands (and on 12,800 random commands built from quotes, ``key=value`` pairs,
objects and anchors, with no difference).
"""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.aliases.formats import (
    AliasFormatError,
    FormatChoice,
    compile_format,
    extract_parameters,
    format_choices,
)

RUN = "run {{cmd}} on {{hosts}}"
SAY = "say {{msg}} {{times=2}}"
DEPLOY = 'deploy {{ app }} to {{ env = "prod" }}'


@pytest.mark.parametrize(
    ("text", "command", "expected"),
    [
        (RUN, "run date on localhost", {"cmd": "date", "hosts": "localhost"}),
        (RUN, 'run "uname -a" on localhost,foo', {"cmd": "uname -a", "hosts": "localhost,foo"}),
        (RUN, "run a b on c d", {"cmd": "a b", "hosts": "c d"}),
        (RUN, 'run {"a": 1} on x', {"cmd": '{"a": 1}', "hosts": "x"}),
        (SAY, "say hi", {"msg": "hi", "times": "2"}),
        (SAY, "say hi 5", {"msg": "hi", "times": "5"}),
        (SAY, "say hi there 7", {"msg": "hi", "times": "there 7"}),
        (DEPLOY, "deploy web to", {"app": "web", "env": "prod"}),
        (DEPLOY, "deploy 'web app' to 'stage one'", {"app": "web app", "env": "stage one"}),
        ("foo {{x}}$", "foo bar", {"x": "bar "}),
        ("status", "status", {}),
        ("status", "status k=v", {"k": "v"}),
        ("{{x=1}}", "", {"x": "1"}),
        ("{{x=1}}", "a=b", {"x": "1", "a": "b"}),
        ("get (?:the )?{{thing}}", "get the car", {"thing": "car"}),
        ("get (?:the )?{{thing}}", "get car", {"thing": "car"}),
        ("say {{msg}}", "say hi times=3 x='a b'", {"msg": "hi", "times": "3", "x": "a b"}),
        # StackStorm removes every copy of the trailing pairs' text, not only the last one.
        ("on {{x}}", "on k=v on 'a b' k=v", {"x": "on 'a b", "k": "v"}),
    ],
)
def test_parameters_extracted(text: str, command: str, expected: dict[str, Any]) -> None:
    assert extract_parameters(text, command) == [expected]


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (RUN, "run date"),
        (SAY, "say"),
        (SAY, "say times=4 msg=x"),
        ("^foo {{x}}", "foo bar baz"),
        ("^foo {{x}}", "xfoo bar"),
        ("foo {{x}}$", "a foo bar"),
        ("status", "status now"),
        ("greet {{greeting}}", "hello"),
    ],
)
def test_commands_that_do_not_match(text: str, command: str) -> None:
    with pytest.raises(AliasFormatError, match="doesn't match format string"):
        extract_parameters(text, command)


def test_match_multiple_gives_one_set_per_match() -> None:
    # Anchors of its own (in a branch's second alternative, as StackStorm looks for them) keep
    # the format unanchored, so it matches several times.
    several = r"(?:\b|^)ping {{host}}(?:;|$)"
    found = extract_parameters(several, "ping a; ping b", match_multiple=True)
    assert found == [{"host": "a"}, {"host": "b "}]
    # Anchors only in a branch's first alternative or a lookahead do not count: anchored.
    anchored = r"(?:^|\s)ping {{host}}(?=\s|$)"
    assert extract_parameters(anchored, "ping a ping b", match_multiple=True) == [
        {"host": "a ping b"}
    ]


def test_an_invalid_expression_is_refused_with_the_format() -> None:
    with pytest.raises(AliasFormatError, match=r'format "kv \{\{key\}\} = \{\{value\}\}"'):
        compile_format("kv {{key}} = {{value}}")


def test_format_choices() -> None:
    assert format_choices("a {{b}}") == [FormatChoice("a {{b}}", "a {{b}}")]
    entry = {
        "display": "pack get <pack>",
        "representation": ["pack get {{ pack }}", "pg {{ pack }}"],
    }
    assert [choice.representation for choice in format_choices(entry)] == [
        "pack get {{ pack }}",
        "pg {{ pack }}",
    ]
    assert format_choices({"display": "help only"}) == [FormatChoice("help only", "")]
    single = format_choices({"representation": "x {{y}}", "match_multiple": True})
    assert single == [FormatChoice(None, "x {{y}}", True)]
    with pytest.raises(AliasFormatError):
        format_choices(3)
