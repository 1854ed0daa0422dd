"""``linux.process_kill``: send a signal to a process."""

from __future__ import annotations

import os
import signal
from typing import Any

from st2common.runners.base_action import Action


class ProcessKill(Action):
    """Signal ``pid``; fail when it does not exist or may not be signalled."""

    def run(self, pid: int, signal_name: str = "TERM") -> dict[str, Any]:
        name = signal_name.upper().removeprefix("SIG")
        try:
            number = signal.Signals[f"SIG{name}"]
        except KeyError:
            raise ValueError(f"{signal_name!r} is not a signal name.") from None
        if pid <= 1:
            raise ValueError(f"Refusing to signal pid {pid}.")
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            raise ValueError(f"No process has pid {pid}.") from None
        except PermissionError:
            raise PermissionError(f"Not allowed to signal pid {pid}.") from None
        return {"pid": pid, "signal": number.name}
