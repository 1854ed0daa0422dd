"""``linux.processes``: the processes running on this host, read from ``/proc``."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action

PROC = Path("/proc")


def user_name(uid: int) -> str:
    """Return the name of ``uid``, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def read_process(folder: Path) -> dict[str, Any] | None:
    """Return what ``/proc/<pid>`` says about one process; None if it has gone."""
    try:
        status = dict(
            line.split(":", 1)
            for line in (folder / "status").read_text().splitlines()
            if ":" in line
        )
        raw = (folder / "cmdline").read_bytes()
        uid = os.stat(folder).st_uid
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rss = status.get("VmRSS", "0 kB").split()[0]
    return {
        "pid": int(folder.name),
        "ppid": int(status.get("PPid", "0").strip()),
        "name": status.get("Name", "").strip(),
        "state": status.get("State", "").strip(),
        "user": user_name(uid),
        "rss_kb": int(rss),
        "cmdline": raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip(),
    }


class Processes(Action):
    """List processes, optionally those whose name or command line matches ``pattern``."""

    def run(
        self, pattern: str | None = None, user: str | None = None, min_count: int | None = None
    ) -> tuple[bool, dict[str, Any]]:
        try:
            matcher = re.compile(pattern) if pattern else None
        except re.error as error:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {error}") from None
        own = os.getpid()
        found = []
        for folder in sorted(PROC.iterdir(), key=lambda item: item.name):
            if not folder.name.isdigit() or int(folder.name) == own:
                continue
            process = read_process(folder)
            if process is None:
                continue
            if matcher and not (
                matcher.search(process["name"]) or matcher.search(process["cmdline"])
            ):
                continue
            if user and process["user"] != user:
                continue
            found.append(process)
        result: dict[str, Any] = {"count": len(found), "processes": found}
        if min_count is not None and len(found) < min_count:
            result["error"] = f"{len(found)} matching processes, fewer than {min_count}."
            return False, result
        return True, result
