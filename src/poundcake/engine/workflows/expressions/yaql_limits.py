"""What one YAQL evaluation may consume, so that no expression can take the engine down.

Data can become an expression (a string value is evaluated again), so the limits hold for any
text: at most :data:`MAX_ITEMS` items in any collection an expression iterates or returns, at most
:data:`MEMORY_QUOTA` bytes in any one value it builds, and at most :data:`TIME_LIMIT_SECONDS` of
evaluation per statement, checked at every function call (operators included). yaql enforces the
first two itself, except in three functions whose cost it does not check; :func:`register_bounded`
shadows those with bounded versions: ``len()`` of an iterator (``sequence().len()`` never ends),
``pow()`` and ``shiftBitsLeft()`` (``pow(3, 10000000000)`` computes gigabytes).
"""

from __future__ import annotations

import collections.abc  # noqa: F401  (yaql 3.2 uses collections.abc without importing it)
import time
from collections.abc import Iterator
from typing import Any, Final

from yaql.language import contexts, exceptions, specs, yaqltypes
from yaql.language import utils as yaql_utils

MAX_ITEMS: Final = 100_000
MEMORY_QUOTA: Final = 64 * 1024 * 1024
TIME_LIMIT_SECONDS = 10.0

ENGINE_OPTIONS: Final = {
    "yaql.limitIterators": MAX_ITEMS,
    "yaql.memoryQuota": MEMORY_QUOTA,
    "yaql.convertSetsToLists": True,
}
_MAX_BITS: Final = MEMORY_QUOTA * 8


class EvaluationTimeoutException(exceptions.YaqlException):  # type: ignore[misc]
    """An expression ran past :data:`TIME_LIMIT_SECONDS`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Expression evaluation took longer than {seconds:g} seconds")


class TimedContext(contexts.Context):  # type: ignore[misc]
    """The context of one evaluation: every function call YAQL resolves checks the deadline."""

    def __init__(self, parent: Any, seconds: float) -> None:
        super().__init__(parent)
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def get_functions(self, name: Any, predicate: Any = None, use_convention: bool = False) -> Any:
        if time.monotonic() > self._deadline:
            raise EvaluationTimeoutException(self._seconds)
        return super().get_functions(name, predicate, use_convention)

    def create_child_context(self) -> Any:
        # Lookups from child contexts walk up to this one, which checks the deadline for them.
        return contexts.Context(self)


def _check_bits(bits: int) -> None:
    if bits > _MAX_BITS:
        raise exceptions.MemoryQuotaExceededException()


def _iterator_length(collection: Iterator[Any], engine: Any) -> int:
    return sum(1 for _ in yaql_utils.limit_iterable(collection, engine))


def _power(a: Any, b: Any, c: Any = None) -> Any:
    if c is None and isinstance(a, int) and isinstance(b, int) and b > 0:
        _check_bits(a.bit_length() * b)
    return pow(a, b, c)


def _shift_bits_left(value: int, bits_number: int) -> int:
    if value:
        _check_bits(value.bit_length() + bits_number)
    return value << bits_number


def register_bounded(context: Any) -> None:
    """Register the bounded ``len()``, ``pow()`` and ``shiftBitsLeft()`` in ``context``.

    ``context`` must be a child of the one holding yaql's standard library: YAQL takes the first
    context (from the caller up) that has a matching function, so these win for the arguments they
    accept; ``len()`` of a string, list or dictionary still reaches yaql's own.
    """
    number = yaqltypes.Number
    length = specs.extension_method(_iterator_length)
    length = specs.parameter("collection", yaql_utils.IteratorType)(specs.name("len")(length))
    power = specs.name("pow")(_power)
    for parameter, value_type in (("a", number()), ("b", number()), ("c", number(nullable=True))):
        power = specs.parameter(parameter, value_type)(power)
    shift = specs.name("shiftBitsLeft")(_shift_bits_left)
    shift = specs.parameter("bits_number", int)(specs.parameter("value", int)(shift))
    for function in (length, power, shift):
        context.register_function(function)
