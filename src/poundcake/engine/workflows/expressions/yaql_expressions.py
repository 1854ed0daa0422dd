"""YAQL expressions, ``<% ... %>``, evaluated as orquesta's YAQL evaluator does.

A string that is exactly one expression keeps the value's type; otherwise every expression is
replaced by its value's text. A string value is evaluated again. Errors carry orquesta's texts
(``Unable to resolve key ...``, ``Unable to evaluate expression ...``).

Cost does not grow with the workflow context: expressions are parsed once per distinct text
(bounded LRU), the functions are registered once on a root context, and a variable is converted to
YAQL's read-only types only when an expression reaches it (``ctx(x)`` converts ``x`` alone,
``ctx().x`` too), once per :class:`Scope`.

Limits (:mod:`~poundcake.engine.workflows.expressions.yaql_limits`): yaql's safe standard library
only (no Python attribute or method is reachable), and bounds on the items, memory and time one
evaluation may use.
"""

from __future__ import annotations

import collections.abc  # noqa: F401  (yaql 3.2 uses collections.abc without importing it)
import inspect
import re
from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from typing import Any, Final

import yaql
from yaql.language import exceptions, factory
from yaql.language import utils as yaql_utils

from poundcake.engine.workflows.expressions import yaql_limits
from poundcake.engine.workflows.expressions.functions import (
    BINDING_KEY,
    CATALOG,
    HIDDEN_PREFIX,
    Binding,
)
from poundcake.engine.workflows.expressions.scope import ExpressionError, Scope
from poundcake.exceptions import DatabaseError

LANGUAGE: Final = "yaql"
PATTERN: Final = r"<%.*?%>"
EVALUATION_EXCEPTION: Final = "YaqlEvaluationException"

_EXPRESSION = re.compile(PATTERN)
DELIMITER: Final = "<%>"
_PARSED_LIMIT = 4096


class _YaqlBinding(Binding):
    """Variables as YAQL expects them: read-only (hashable) mappings and tuples."""

    __slots__ = ()

    def variable(self, name: str) -> Any:
        memo = self.scope.memo
        key = (LANGUAGE, name)
        try:
            return memo[key]
        except KeyError:
            converted = memo[key] = yaql_utils.convert_input_data(self.scope.variables[name])
            return converted

    def visible_variables(self) -> Mapping[str, Any]:
        memo = self.scope.memo
        view = memo.get(LANGUAGE)
        if view is None:
            view = memo[LANGUAGE] = _VisibleVariables(self)
        return view


class _VisibleVariables(Mapping[str, Any]):
    """``ctx()`` in YAQL: the visible variables, each converted when an expression reads it."""

    def __init__(self, binding: _YaqlBinding) -> None:
        self._binding = binding
        self._variables = binding.scope.variables
        self._hash: int | None = None

    def __getitem__(self, name: str) -> Any:
        if not isinstance(name, str) or name.startswith(HIDDEN_PREFIX):
            raise KeyError(name)
        if name not in self._variables:
            raise KeyError(name)
        return self._binding.variable(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._variables if not name.startswith(HIDDEN_PREFIX))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self.items()))
        return self._hash

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@cache
def _engine() -> Any:
    return factory.YaqlFactory().create(yaql_limits.ENGINE_OPTIONS)


@cache
def _root_context() -> Any:
    standard = yaql.create_context()
    root = standard.create_child_context()
    yaql_limits.register_bounded(root)
    for name, function in CATALOG.items():
        root.register_function(function, name=name)
    return root


@lru_cache(maxsize=_PARSED_LIMIT)
def _parsed(source: str) -> Any:
    return _engine()(source)


def _source(expression: str) -> str:
    return expression.strip(DELIMITER).strip()


def has_expressions(text: str) -> bool:
    """Tell whether ``text`` holds a ``<% %>`` expression."""
    return _EXPRESSION.search(text) is not None


def expressions_in(text: str) -> list[str]:
    """Every ``<% %>`` expression in ``text``, delimiters included."""
    return _EXPRESSION.findall(text)


def validate(text: str) -> list[dict[str, Any]]:
    """Syntax errors of the expressions in ``text``, in orquesta's shape."""
    errors = []
    for expression in _EXPRESSION.findall(text):
        try:
            _parsed(_source(expression))
        except (exceptions.YaqlException, ValueError, TypeError) as error:
            message = str(getattr(error, "message", error))
            errors.append({"type": LANGUAGE, "expression": expression, "message": message})
    return errors


def evaluate(text: str, scope: Scope) -> Any:
    """Evaluate every expression in ``text`` against ``scope``."""
    context = yaql_limits.TimedContext(_root_context(), yaql_limits.TIME_LIMIT_SECONDS)
    context[BINDING_KEY] = _YaqlBinding(scope)
    return _evaluate(text, context)


def _evaluate(text: str, context: Any) -> Any:
    expressions = _EXPRESSION.findall(text)
    output: Any = text
    expression = ""
    try:
        for expression in expressions:
            value = _parsed(_source(expression)).evaluate(context=context)
            if inspect.isgenerator(value):
                value = list(value)
            if isinstance(value, str):
                value = _evaluate(value, context)
            if len(expressions) > 1 or len(output) > len(expression):
                output = output.replace(expression, str(value))
            else:
                output = value
    except KeyError as error:
        key = str(error).strip("'")
        message = f"Unable to resolve key '{key}' in expression '{expression}' from context."
        raise ExpressionError(message, EVALUATION_EXCEPTION) from None
    except (exceptions.YaqlException, ValueError, TypeError) as error:
        raise _failure(expression, type(error).__name__, str(error).strip("'")) from None
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001  (orquesta reports every failure the same way)
        raise _failure(expression, _kind(error), str(error)) from None
    return output


def _kind(error: Exception) -> str:
    return error.kind if isinstance(error, ExpressionError) else type(error).__name__


def _failure(expression: str, kind: str, detail: str) -> ExpressionError:
    message = f"Unable to evaluate expression '{expression}'. {kind}: {detail}"
    return ExpressionError(message, EVALUATION_EXCEPTION)
