"""Jinja expressions, ``{{ ... }}`` and ``{% ... %}`` blocks, evaluated as orquesta evaluates them:
``StrictUndefined``, ``trim_blocks`` and ``lstrip_blocks``, ``{% raw %}`` blocks left as
text, a lone ``{{ expression }}`` keeping its value's type, string values evaluated again, and an
expression whose value is undefined reported as an unresolved variable.

The environment is sandboxed and immutable, as parameter rendering's is: templates cannot call
Python internals, and cannot change the lists and dictionaries they read. The immutability is
what lets expressions read the workflow context without copying it (orquesta's mutable sandbox
works on a copy); a template that calls ``.append()`` or ``.update()`` on a value fails.
Templates and expressions are compiled once per distinct text (bounded LRU); the functions are
globals and filters of the one environment, built once.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from functools import cache, lru_cache, partial
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateError, pass_context
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from poundcake.engine.workflows.expressions.functions import (
    BINDING_KEY,
    CATALOG,
    Binding,
    takes_context,
)
from poundcake.engine.workflows.expressions.scope import ExpressionError, Scope
from poundcake.exceptions import DatabaseError

LANGUAGE: Final = "jinja"
PATTERN: Final = r"{{.*?}}"
BLOCK_PATTERN: Final = r"{%.*?%}"
EVALUATION_EXCEPTION: Final = "JinjaEvaluationException"

_EXPRESSION = re.compile(PATTERN)
_BLOCK = re.compile(BLOCK_PATTERN)
_RAW_BLOCK = re.compile(r"{% raw %}.*?{% endraw %}")
DELIMITER: Final = "{}"
_COMPILED_LIMIT = 4096


def _raw_placeholder(index: int) -> str:
    # Private-use characters: a placeholder cannot collide with text of the statement.
    return f"\ue000{index}\ue001"


def _function(function: Callable[..., Any]) -> Callable[..., Any]:
    if takes_context(function):
        return pass_context(partial(function))
    return function


@cache
def _environment() -> SandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
    )
    functions = {name: _function(function) for name, function in CATALOG.items()}
    env.globals.update(functions)
    env.filters.update(functions)
    return env


@lru_cache(maxsize=_COMPILED_LIMIT)
def _expression(source: str) -> Any:
    return _environment().compile_expression(source, undefined_to_none=False)


@lru_cache(maxsize=_COMPILED_LIMIT)
def _template(text: str) -> Template:
    return _environment().from_string(text)


def _source(expression: str) -> str:
    return expression.strip(DELIMITER).strip()


def has_expressions(text: str) -> bool:
    """Tell whether ``text`` holds a ``{{ }}`` expression or a ``{% %}`` block."""
    return _EXPRESSION.search(text) is not None or _BLOCK.search(text) is not None


def expressions_in(text: str) -> list[str]:
    """Every ``{{ }}`` expression in ``text``, delimiters included."""
    return _EXPRESSION.findall(text)


def _error(expression: str, error: TemplateError) -> dict[str, Any]:
    message = str(getattr(error, "message", None) or error)
    return {"type": LANGUAGE, "expression": expression, "message": message}


def validate(text: str) -> list[dict[str, Any]]:
    """Syntax errors of ``text`` as a whole and of each expression in it, in orquesta's shape."""
    env = _environment()
    errors = []
    try:
        env.parse(text)
    except TemplateError as error:
        errors.append(_error(text, error))
    for expression in _EXPRESSION.findall(text):
        if any(error["expression"] == expression for error in errors):
            continue
        try:
            Parser(env.overlay(), _source(expression), state="variable").parse_expression()
        except TemplateError as error:
            errors.append(_error(expression, error))
    return errors


def evaluate(text: str, scope: Scope) -> Any:
    """Evaluate the blocks and expressions in ``text`` against ``scope``."""
    variables = {BINDING_KEY: Binding(scope)}
    raw_blocks = _RAW_BLOCK.findall(text)
    for index, block in enumerate(raw_blocks):
        text = text.replace(block, _raw_placeholder(index))
    output = _expand(text, variables)
    if not isinstance(output, str):
        return output
    unresolved = [_source(expression) for expression in _EXPRESSION.findall(output)]
    if unresolved:
        message = f"There are unresolved variables: {', '.join(unresolved)}"
        raise ExpressionError(message, EVALUATION_EXCEPTION)
    if raw_blocks:
        for index, block in enumerate(raw_blocks):
            output = output.replace(_raw_placeholder(index), block)
        output = _guarded(output, _render, output, variables)
    return output


def _expand(text: str, variables: dict[str, Any]) -> Any:
    if _BLOCK.search(text):
        rendered = _guarded(text, _render, text, variables)
        return _guarded(text, _expand, rendered, variables)
    expressions = _EXPRESSION.findall(text)
    output: Any = text
    for expression in expressions:
        value = _guarded(expression, _value, expression, variables)
        if isinstance(value, StrictUndefined):
            continue
        if len(expressions) > 1 or len(output) > len(expression):
            output = output.replace(expression, str(value))
        else:
            output = value
    return output


def _render(text: str, variables: dict[str, Any]) -> str:
    return _template(text).render(variables)


def _value(expression: str, variables: dict[str, Any]) -> Any:
    value = _expression(_source(expression))(variables)
    if inspect.isgenerator(value):
        value = list(value)
    if isinstance(value, str):
        value = _expand(value, variables)
    return value


def _guarded(expression: str, step: Callable[..., Any], *arguments: Any) -> Any:
    """Run one step; any failure is reported as orquesta reports it, naming ``expression``."""
    try:
        return step(*arguments)
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001  (orquesta reports every failure the same way)
        kind = error.kind if isinstance(error, ExpressionError) else type(error).__name__
        message = f"Unable to evaluate expression '{expression}'. {kind}: {error}"
        raise ExpressionError(message, EVALUATION_EXCEPTION) from None
