"""The base class of Python actions, as pack authors import it from StackStorm.

An action module defines one subclass of :class:`Action` and implements ``run(**parameters)``.
The action runner instantiates it with the pack's configuration and an action service that
reaches the datastore, then calls ``run``. ``run`` returns the result, or ``(succeeded, result)``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

LOGGER_PREFIX = "actions.python"


class Action(ABC):
    """Base class of Python actions."""

    def __init__(self, config: dict[str, Any] | None = None, action_service: Any = None) -> None:
        self.config: dict[str, Any] = config if config is not None else {}
        self.action_service = action_service
        self.logger = logging.getLogger(f"{LOGGER_PREFIX}.{type(self).__name__}")

    @abstractmethod
    def run(self, **kwargs: Any) -> Any:
        """Do the action's work with its parameters and return the result."""
