"""``network.ping``: ICMP echo with the system's ``ping``, parsed into numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from st2common.runners.base_action import Action

HOST = re.compile(r"^[A-Za-z0-9.:_-]+$")
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


class Ping(Action):
    """Ping ``host``; fail when no reply comes back (or more than ``max_loss_percent`` is lost)."""

    def run(
        self,
        host: str,
        count: int = 3,
        interval: float = 1.0,
        reply_timeout: int = 5,
        max_loss_percent: float = 99.9,
    ) -> tuple[bool, dict[str, Any]]:
        if not HOST.match(host or "") or host.startswith("-"):
            raise ValueError(f"{host!r} is not a host name or address.")
        if not 1 <= count <= 100:
            raise ValueError(f"count must be between 1 and 100, not {count}.")
        binary = shutil.which("ping")
        if binary is None:
            raise RuntimeError("ping is not installed on this host (Debian: iputils-ping).")
        command = [
            binary,
            "-n",
            "-c",
            str(count),
            "-i",
            str(interval),
            "-W",
            str(reply_timeout),
            host,
        ]
        completed = subprocess.run(  # noqa: S603 - the host is checked, no shell
            command,
            capture_output=True,
            text=True,
            timeout=count * (interval + reply_timeout) + 10,
            check=False,
        )
        summary = SUMMARY.search(completed.stdout)
        if summary is None:
            message = (completed.stderr or completed.stdout).strip()
            raise RuntimeError(f"ping {host} failed (exit code {completed.returncode}): {message}")
        sent, received = int(summary.group(1)), int(summary.group(2))
        loss = round(100.0 * (sent - received) / sent, 2)
        result: dict[str, Any] = {
            "host": host,
            "transmitted": sent,
            "received": received,
            "packet_loss_percent": loss,
            "reachable": received > 0,
        }
        rtt = RTT.search(completed.stdout)
        if rtt:
            low, average, high, deviation = (float(value) for value in rtt.groups())
            result.update(
                rtt_min_ms=low, rtt_avg_ms=average, rtt_max_ms=high, rtt_mdev_ms=deviation
            )
        if loss > max_loss_percent:
            result["error"] = f"{host}: {loss}% packet loss ({received} of {sent} replies)."
            return False, result
        return True, result
