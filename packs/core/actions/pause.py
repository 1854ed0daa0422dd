"""``core.pause``: wait ``max_pause`` seconds, or a random whole number of seconds up to it."""

from __future__ import annotations

import secrets
import time

from st2common.runners.base_action import Action


class PauseAction(Action):
    """Sleep, then report how long."""

    def run(self, max_pause: int, random: bool = False) -> int:
        if max_pause < 0:
            raise ValueError(f"max_pause must be 0 or more, not {max_pause}")
        seconds = secrets.randbelow(max_pause + 1) if random else max_pause
        time.sleep(seconds)
        return seconds
