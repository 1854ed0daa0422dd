"""Helpers StackStorm's ``st2common.runners.utils`` gives Python actions."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["PackConfigDict", "get_logger_for_python_runner_action"]

LOGGER_PREFIX = "actions.python"
CONFIG_MISSING_ITEM_ERROR = (
    'Config for pack "{pack}" is missing key "{key}".\n'
    "Make sure that the pack has a config (configs/{pack}.yaml in the engine's configs "
    'directory, or "st2 pack config {pack}") that contains that key, and run '
    '"st2ctl reload --register-configs" after every change you make to it.'
)


class PackConfigDict(dict[str, Any]):
    """A pack config whose missing keys raise a ValueError naming the pack and the key."""

    def __init__(self, pack_name: str, *args: Any) -> None:
        super().__init__(*args)
        self._pack_name = pack_name

    def __getitem__(self, key: str) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            raise ValueError(
                CONFIG_MISSING_ITEM_ERROR.format(pack=self._pack_name, key=key)
            ) from None


def get_logger_for_python_runner_action(action_name: str, log_level: str = "debug") -> Any:
    """Return the logger ``actions.python.<ActionName>``, at ``log_level``.

    Its records go to the action's stderr through the handler the action process set up.
    """
    logger = logging.getLogger(f"{LOGGER_PREFIX}.{action_name}")
    level = logging.getLevelName(log_level.upper())
    if isinstance(level, int):
        logger.setLevel(level)
    return logger
