"""``network.port_check``: whether a TCP port accepts connections."""

from __future__ import annotations

import socket
import time
from typing import Any

from st2common.runners.base_action import Action


class PortCheck(Action):
    """Connect to ``host:port``; fail when it is closed, filtered or the name does not resolve."""

    def run(
        self, host: str, port: int, connect_timeout: float = 5.0
    ) -> tuple[bool, dict[str, Any]]:
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, not {port}.")
        result: dict[str, Any] = {"host": host, "port": port}
        started = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=connect_timeout) as connection:
                result["address"] = connection.getpeername()[0]
        except socket.gaierror as error:
            result.update(open=False, error=f"Cannot resolve {host}: {error.strerror}")
            return False, result
        except TimeoutError:
            result.update(
                open=False, error=f"{host}:{port} did not answer within {connect_timeout}s."
            )
            return False, result
        except OSError as error:
            result.update(open=False, error=f"{host}:{port} is not open: {error.strerror}")
            return False, result
        result.update(open=True, connect_ms=round(1000 * (time.monotonic() - started), 3))
        return True, result
