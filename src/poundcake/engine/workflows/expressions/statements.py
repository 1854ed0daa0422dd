"""Statements of a workflow definition: values that may hold YAQL or Jinja expressions.

A statement is a string, or a dictionary (keys included) or list of statements. A string holds
expressions of one language: YAQL is tried first, as orquesta's evaluator order has it, so in a
string with both only the YAQL ones are evaluated; :func:`validate` reports such a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, Final

from poundcake.engine.workflows.expressions import jinja_expressions, yaql_expressions
from poundcake.engine.workflows.expressions.scope import Scope

_LANGUAGES: Final[tuple[ModuleType, ...]] = (yaql_expressions, jinja_expressions)

EXPRESSION_PATTERNS: Final[Mapping[str, str]] = {
    language.LANGUAGE: language.PATTERN for language in _LANGUAGES
}
"""The inline expression of each language; orquesta builds ``with`` items and inline parameters
from these. Jinja's ``{% %}`` blocks (:data:`JINJA_BLOCK_PATTERN`) count as expressions too."""

JINJA_BLOCK_PATTERN: Final = jinja_expressions.BLOCK_PATTERN

MULTIPLE_TYPES: Final = "Expression with multiple types is not supported."

_REFERENCE = r"""[][a-zA-Z0-9_'".()]*"""
_CTX_REFERENCE = re.compile(rf"""\bctx\(['"]?{_REFERENCE}['"]?\)\.?{_REFERENCE}""")
_NAME = r"[a-zA-Z0-9_-]+"
_VARIABLE_NAMES = tuple(
    re.compile(pattern)
    for pattern in (
        rf"(?<=\bctx\(\)\.)({_NAME})\b(?!\()\.?",
        rf"\bctx\(({_NAME})\)",
        rf"\bctx\('({_NAME})'\)",
        rf'\bctx\("({_NAME})"\)',
    )
)


def has_expressions(text: str) -> bool:
    """Tell whether ``text`` holds a YAQL or Jinja expression (or a Jinja block)."""
    return any(language.has_expressions(text) for language in _LANGUAGES)


def evaluate(statement: Any, scope: Scope) -> Any:
    """Evaluate every expression in ``statement``; a value without expressions is returned as is."""
    if isinstance(statement, str):
        for language in _LANGUAGES:
            if language.has_expressions(statement):
                return language.evaluate(statement, scope)
        return statement
    if isinstance(statement, dict):
        return {evaluate(key, scope): evaluate(value, scope) for key, value in statement.items()}
    if isinstance(statement, list):
        return [evaluate(item, scope) for item in statement]
    return statement


def validate(statement: Any) -> list[dict[str, Any]]:
    """Syntax errors in ``statement``: ``{"type", "expression", "message"}`` each, as orquesta's."""
    return [error for text in _strings(statement) for error in _validate_string(text)]


def _validate_string(text: str) -> list[dict[str, Any]]:
    languages = [language for language in _LANGUAGES if language.has_expressions(text)]
    if len(languages) > 1:
        return [{"type": None, "expression": text, "message": MULTIPLE_TYPES}]
    return languages[0].validate(text) if languages else []


def extract_variables(statement: Any) -> list[tuple[str, str, str]]:
    """``(language, statement, name)`` for every context variable ``statement`` reads.

    ``ctx().x``, ``ctx(x)``, ``ctx('x')`` and ``ctx("x")`` in inline expressions, as orquesta's
    ``extract_vars`` finds them; sorted by name, each once.
    """
    found = {variable for text in _strings(statement) for variable in _references(text)}
    return sorted(found, key=lambda variable: (variable[2], variable[0], variable[1]))


def _strings(statement: Any) -> Iterator[str]:
    """The strings of a statement: itself, or the keys, values and items inside it."""
    if isinstance(statement, str):
        yield statement
    elif isinstance(statement, dict):
        for key, value in statement.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(statement, list):
        for item in statement:
            yield from _strings(item)


def _references(text: str) -> Iterator[tuple[str, str, str]]:
    for language in _LANGUAGES:
        for expression in language.expressions_in(text):
            source = expression.strip(language.DELIMITER).strip()
            for reference in _CTX_REFERENCE.findall(source):
                for pattern in _VARIABLE_NAMES:
                    name = pattern.search(reference.strip())
                    if name:
                        yield (language.LANGUAGE, text, name.group(1))
