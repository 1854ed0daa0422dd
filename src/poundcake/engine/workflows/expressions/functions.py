"""The functions workflow expressions call, the same in YAQL and Jinja.

Orquesta's (``ctx``, ``json``, ``zip``, ``item``, ``task_status``, ``succeeded``, ``failed``,
``completed``, ``result``), StackStorm's (``task``, ``st2kv`` and the catalog in
:mod:`poundcake.engine.expression_functions`) and ``st2()``, the ``st2`` runtime dictionary.

A function whose first parameter is ``context`` receives the language's evaluation context and
finds the :class:`Binding` of the evaluation in it under :data:`BINDING_KEY`, a name neither
language's syntax can spell. Errors keep orquesta's and StackStorm's texts and exception names.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from itertools import zip_longest
from typing import Any, Final

from poundcake.engine.expression_functions import WORKFLOW_FUNCTIONS
from poundcake.engine.workflows.expressions.scope import (
    NO_ITEM,
    NO_RESULT,
    CurrentTask,
    ExpressionError,
    Scope,
)
from poundcake.exceptions import DatabaseError, NotFoundError, PoundCakeError

BINDING_KEY: Final = "pc-evaluation"
HIDDEN_PREFIX: Final = "__"

UNSET_STATUS: Final = "null"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
COMPLETED_STATUSES: Final = frozenset({SUCCEEDED, FAILED, "timeout", "abandoned", "canceled"})


class Binding:
    """A :class:`Scope` as the functions of one evaluation see it.

    The base class hands out the variables as they are (Jinja); a language that needs them in its
    own types overrides :meth:`variable` and :meth:`visible_variables`.
    """

    __slots__ = ("scope",)

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def variable(self, name: str) -> Any:
        """The value of one variable, which exists."""
        return self.scope.variables[name]

    def visible_variables(self) -> Mapping[str, Any]:
        """What ``ctx()`` returns: every variable not starting with ``__``."""
        memo = self.scope.memo
        visible = memo.get("visible")
        if visible is None:
            visible = {
                name: value
                for name, value in self.scope.variables.items()
                if not name.startswith(HIDDEN_PREFIX)
            }
            memo["visible"] = visible
        return visible


def _binding(context: Any) -> Binding:
    binding: Binding = context[BINDING_KEY]
    return binding


def _current_task(scope: Scope) -> CurrentTask:
    if scope.current_task is None:
        raise ExpressionError("The current task is not set in the context.")
    return scope.current_task


def ctx(context: Any, key: Any = None) -> Any:
    """A workflow variable, or every visible variable without ``key``."""
    binding = _binding(context)
    if not key:
        return binding.visible_variables()
    if key not in binding.scope.variables:
        raise ExpressionError(f'The variable "{key}" is undefined.', "VariableUndefinedError")
    if str(key).startswith(HIDDEN_PREFIX):
        raise ExpressionError(
            f'The variable "{key}" is for internal use and inaccessible.',
            "VariableInaccessibleError",
        )
    return binding.variable(key)


def st2(context: Any) -> Any:
    """The ``st2`` runtime dictionary: ``action_execution_id``, ``user``, ``api_url`` ..."""
    return ctx(context, "st2")


def json_document(value: Any) -> Any:
    """Parse a JSON string; a dictionary is returned as it is."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        raise TypeError("Given object is not typeof string.")
    return json.loads(value)


def zip_lists(*args: Any, **kwargs: Any) -> Any:
    """Pair up the items of lists, the shorter ones padded with ``pad`` (None)."""
    lists = [[] if arg is None else arg for arg in args]
    if len(lists) == 1:
        return lists[0]
    return list(zip_longest(*lists, fillvalue=kwargs.get("pad")))


def item(context: Any, key: Any = None) -> Any:
    """The current item of a ``with`` task, or one key of it."""
    current = _binding(context).scope.current_item
    current = None if current is NO_ITEM else current
    if not key:
        return current
    if not isinstance(current, Mapping):
        raise ExpressionError("Item is not type of collections.abc.Mapping.")
    if key not in current:
        raise ExpressionError(f'Item does not have key "{key}".')
    return current[key]


def task_status(context: Any, task_id: Any, route: Any = None) -> str:
    """Orquesta's status of a task on the current route (or ``route``); ``"null"`` if unknown."""
    scope = _binding(context).scope
    if route is None:
        route = scope.current_task.route if scope.current_task is not None else 0
    if scope.workflow is None:
        return UNSET_STATUS
    return scope.workflow.task_status(task_id, route)


def _current_status(context: Any) -> str:
    scope = _binding(context).scope
    current = _current_task(scope)
    return task_status(context, current.id, current.route)


def succeeded(context: Any) -> bool:
    """Tell whether the current task succeeded."""
    return _current_status(context) == SUCCEEDED


def failed(context: Any) -> bool:
    """Tell whether the current task failed."""
    return _current_status(context) == FAILED


def completed(context: Any) -> bool:
    """Tell whether the current task completed (succeeded, failed, timed out, abandoned, ...)."""
    return _current_status(context) in COMPLETED_STATUSES


def result(context: Any) -> Any:
    """The current task's result; None before it has one."""
    current = _current_task(_binding(context).scope)
    return None if current.result is NO_RESULT else current.result


def task(context: Any, task_id: Any = None, route: Any = None) -> Any:
    """StackStorm's task document of ``task_id`` (the current task by default) on ``route``."""
    scope = _binding(context).scope
    current = scope.current_task
    if task_id is None:
        if current is None:
            raise KeyError("id")
        task_id = current.id
    if route is None:
        route = current.route if current is not None else 0
    if scope.workflow is None:
        raise ExpressionError(f'Unable to find task execution for "{task_id}".')
    return scope.workflow.task(task_id, route)


def st2kv(context: Any, key: Any, **kwargs: Any) -> Any:
    """A datastore value: ``system.<name>`` in the system scope, else the workflow user's key."""
    if not isinstance(key, str):
        raise TypeError("Given key is not typeof string.")
    decrypt = kwargs.get("decrypt", False)
    if not isinstance(decrypt, bool):
        raise TypeError("Decrypt parameter is not typeof bool.")
    scope = _binding(context).scope
    try:
        user = scope.variables["st2"]["user"]
    except (KeyError, TypeError):
        raise KeyError("Could not get user from context.") from None
    if scope.datastore is None:
        raise ExpressionError("The datastore is not available to this expression.")
    try:
        return scope.datastore.get(key, user=user, decrypt=decrypt)
    except NotFoundError as error:
        if "default" in kwargs:
            return kwargs["default"]
        raise ExpressionError(str(error)) from None
    except DatabaseError:
        raise
    except PoundCakeError as error:
        raise ExpressionError(str(error)) from None


CATALOG: Final[Mapping[str, Callable[..., Any]]] = {
    "ctx": ctx,
    "json": json_document,
    "zip": zip_lists,
    "item": item,
    "task_status": task_status,
    "succeeded": succeeded,
    "failed": failed,
    "completed": completed,
    "result": result,
    "task": task,
    "st2kv": st2kv,
    "st2": st2,
    **WORKFLOW_FUNCTIONS,
}
"""Every function by the name expressions call it."""


def takes_context(function: Callable[..., Any]) -> bool:
    """Tell whether ``function`` reads the evaluation (its first parameter is ``context``)."""
    parameters = list(inspect.signature(function).parameters)
    return bool(parameters) and parameters[0] == "context"
