"""The base class of Python actions, as pack authors import it from StackStorm.

An action module defines one subclass of :class:`Action` and implements ``run(**parameters)``.
The action runner instantiates it with the pack's configuration and an action service that
reaches the datastore, then calls ``run``. ``run`` returns the result, or ``(succeeded, result)``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from .utils import PackConfigDict, get_logger_for_python_runner_action

__all__ = ["Action"]


class Action(ABC):
    """Base class of Python actions."""

    description: str | None = None

    def __init__(self, config: dict[str, Any] | None = None, action_service: Any = None) -> None:
        self.action_service = action_service
        wrapper = getattr(action_service, "_action_wrapper", None)
        log_level = getattr(wrapper, "_log_level", None) or "debug"
        pack = getattr(wrapper, "_pack", None) or "unknown"
        self.config: dict[str, Any] = PackConfigDict(pack, config or {})
        self.logger: logging.Logger = get_logger_for_python_runner_action(
            action_name=type(self).__name__, log_level=log_level
        )

    @abstractmethod
    def run(self, **kwargs: Any) -> Any:
        """Do the action's work with its parameters and return the result."""
