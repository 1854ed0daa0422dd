"""Finished tooz results: our drivers answer synchronously, tooz's API hands out futures."""

from __future__ import annotations

from concurrent import futures
from typing import TypeVar

from tooz.coordination import CoordinatorResult

T = TypeVar("T")


def done(value: T) -> CoordinatorResult[T]:
    """Return ``value`` as an already finished tooz result."""
    future: futures.Future[T] = futures.Future()
    future.set_result(value)
    return CoordinatorResult(future)
