"""``linux.load_average``: the 1, 5 and 15 minute load averages, also per CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action

LOADAVG = Path("/proc/loadavg")


class LoadAverage(Action):
    """Read the load averages; fail when the 1 minute load per CPU exceeds ``max_per_cpu``."""

    def run(self, max_per_cpu: float | None = None) -> tuple[bool, dict[str, Any]]:
        one, five, fifteen = os.getloadavg()
        cpus = os.cpu_count() or 1
        result: dict[str, Any] = {
            "load1": one,
            "load5": five,
            "load15": fifteen,
            "cpu_count": cpus,
            "load1_per_cpu": round(one / cpus, 3),
        }
        if LOADAVG.is_file():
            running, _, total = LOADAVG.read_text().split()[3].partition("/")
            result.update(running_tasks=int(running), total_tasks=int(total))
        if max_per_cpu is not None and one / cpus > max_per_cpu:
            result["error"] = f"Load per CPU {one / cpus:.2f} is above the limit of {max_per_cpu}."
            return False, result
        return True, result
