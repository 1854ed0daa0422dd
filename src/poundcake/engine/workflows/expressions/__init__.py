"""Workflow expressions: YAQL (``<% %>``) and Jinja (``{{ }}``, ``{% %}``) as orquesta has them.

The conductor and the inspector use only what this module exports::

    scope = Scope(variables=context, current_task=CurrentTask("task1", 0, result), ...)
    evaluate("<% succeeded() and result().ok %>", scope)
    validate(definition_value)          # syntax errors, orquesta's shape
    extract_variables(definition_value) # context variables an expression reads

Every evaluation error is an :class:`ExpressionError`; a workflow records
``f"{error.kind}: {error}"``, as StackStorm does.
"""

from poundcake.engine.workflows.expressions.scope import (
    NO_ITEM,
    NO_RESULT,
    CurrentTask,
    ExpressionError,
    KeyValueReader,
    Scope,
    WorkflowView,
)
from poundcake.engine.workflows.expressions.statements import (
    EXPRESSION_PATTERNS,
    JINJA_BLOCK_PATTERN,
    evaluate,
    extract_variables,
    has_expressions,
    validate,
)

__all__ = [
    "EXPRESSION_PATTERNS",
    "JINJA_BLOCK_PATTERN",
    "NO_ITEM",
    "NO_RESULT",
    "CurrentTask",
    "ExpressionError",
    "KeyValueReader",
    "Scope",
    "WorkflowView",
    "evaluate",
    "extract_variables",
    "has_expressions",
    "validate",
]
