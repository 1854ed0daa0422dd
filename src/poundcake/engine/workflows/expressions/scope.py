"""What an expression is evaluated against (:class:`Scope`), and the one error evaluation raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from poundcake.exceptions import ValidationError

EVALUATION_EXCEPTION: Final = "ExpressionEvaluationException"


class ExpressionError(ValidationError):
    """An expression failed; ``str(error)`` is orquesta's message, ``kind`` its exception name.

    A workflow records ``f"{error.kind}: {error}"``, as StackStorm does.
    """

    def __init__(self, message: str, kind: str = EVALUATION_EXCEPTION) -> None:
        super().__init__(message)
        self.kind = kind


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NO_RESULT: Final = _Sentinel("NO_RESULT")
"""The current task has no result yet."""

NO_ITEM: Final = _Sentinel("NO_ITEM")
"""There is no current item (the task has no ``with`` items)."""


@dataclass(frozen=True)
class CurrentTask:
    """The task whose transition, publish or input is being evaluated."""

    id: str
    route: int
    result: Any = NO_RESULT


class WorkflowView(Protocol):
    """What task functions need from the running workflow (the conductor implements it)."""

    def task_status(self, task_id: str, route: int) -> str:
        """Orquesta's status name of the task on ``route`` (or an earlier one), or ``"null"``."""

    def task(self, task_id: str, route: int) -> Mapping[str, Any]:
        """StackStorm's ``task()`` document; ExpressionError when the task has not run."""


class KeyValueReader(Protocol):
    """``st2kv()``'s datastore: ``system.<name>`` is the system scope, others ``user``'s keys."""

    def get(self, key: str, *, user: str, decrypt: bool) -> str:
        """The value; NotFoundError when the key does not exist."""


@dataclass(frozen=True)
class Scope:
    """The data one evaluation sees.

    ``variables`` is the workflow context, what ``ctx()`` returns (keys starting with ``__`` are
    hidden). Values that YAQL reaches are converted once per Scope and kept, so the variables must
    not change while a Scope is in use; build a new Scope after a publish.
    """

    variables: Mapping[str, Any]
    current_task: CurrentTask | None = None
    current_item: Any = NO_ITEM
    workflow: WorkflowView | None = None
    datastore: KeyValueReader | None = None
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
