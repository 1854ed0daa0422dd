"""``linux.disk_usage``: space and inodes of the file system holding a path."""

from __future__ import annotations

import os
from typing import Any

from st2common.runners.base_action import Action


def percent(used: int, total: int) -> float:
    """Return ``used`` as a percentage of ``total`` (0 for an empty total)."""
    return round(100.0 * used / total, 2) if total else 0.0


class DiskUsage(Action):
    """Report usage; fail when it is above ``max_percent``."""

    def run(self, path: str = "/", max_percent: float | None = None) -> tuple[bool, dict[str, Any]]:
        try:
            stats = os.statvfs(path)
        except OSError as error:
            raise ValueError(f"Cannot read the file system of {path}: {error.strerror}") from None
        total = stats.f_blocks * stats.f_frsize
        free = stats.f_bfree * stats.f_frsize
        available = stats.f_bavail * stats.f_frsize
        used = total - free
        result: dict[str, Any] = {
            "path": path,
            "total_bytes": total,
            "used_bytes": used,
            "free_bytes": available,
            # As df computes it: used over what non-root users can fill.
            "used_percent": percent(used, used + available),
            "inodes_total": stats.f_files,
            "inodes_free": stats.f_favail,
            "inodes_used_percent": percent(stats.f_files - stats.f_ffree, stats.f_files),
        }
        if max_percent is not None and result["used_percent"] > max_percent:
            result["error"] = (
                f"{path} is {result['used_percent']}% full, above the limit of {max_percent}%."
            )
            return False, result
        return True, result
