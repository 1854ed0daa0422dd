"""The base classes of sensors, as pack authors import them from StackStorm.

A sensor module defines a subclass of :class:`Sensor` (passive: ``run()`` waits for events) or
:class:`PollingSensor` (active: ``poll()`` every ``poll_interval`` seconds). The sensor container
instantiates it with a sensor service and the pack's config, calls ``setup()``, then ``run()``,
and ``cleanup()`` when it stops the sensor. ``add_trigger``, ``update_trigger`` and
``remove_trigger`` are called as rules create, change and delete triggers of the sensor's types.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

__all__ = ["BaseSensor", "PollingSensor", "Sensor"]


class BaseSensor(ABC):
    """Base class of sensors; not instantiated directly."""

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config: dict[str, Any] = config or {}
        self.config = self._config

    @abstractmethod
    def setup(self) -> None:
        """Prepare the sensor (connections, state) before ``run``."""

    @abstractmethod
    def run(self) -> None:
        """Run the sensor until the process stops."""

    @abstractmethod
    def cleanup(self) -> None:
        """Release what ``setup`` took; called when the sensor stops."""

    @abstractmethod
    def add_trigger(self, trigger: dict[str, Any]) -> None:
        """A trigger of one of the sensor's types was created."""

    @abstractmethod
    def update_trigger(self, trigger: dict[str, Any]) -> None:
        """A trigger of one of the sensor's types changed."""

    @abstractmethod
    def remove_trigger(self, trigger: dict[str, Any]) -> None:
        """A trigger of one of the sensor's types was deleted."""


class Sensor(BaseSensor):
    """Base class of passive sensors."""

    @abstractmethod
    def run(self) -> None:
        """Wait for events and dispatch them."""


class PollingSensor(BaseSensor):
    """Base class of active sensors, which poll another system every ``poll_interval`` s."""

    def __init__(
        self, sensor_service: Any, config: dict[str, Any] | None = None, poll_interval: float = 5
    ) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abstractmethod
    def poll(self) -> None:
        """Look at the other system once and dispatch what is new."""

    def run(self) -> None:
        """Poll, then sleep ``poll_interval`` seconds, forever."""
        while True:
            self.poll()
            time.sleep(self._poll_interval)

    def get_poll_interval(self) -> float:
        """Return the current poll interval in seconds."""
        return self._poll_interval

    def set_poll_interval(self, poll_interval: float) -> None:
        """Change the poll interval."""
        self._poll_interval = poll_interval
