"""Signals to the product's processes, and starting them again as an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

from tests.e2e.stack import ENGINE_SERVICES, Product
from tests.integration.support.commands import BIN, command_environment
from tests.integration.support.st2cli import service_command

POUNDCAKE_SERVICES = ("poundcake-api", "poundcake-worker", "poundcake-beat")


def process(product: Product, name: str) -> subprocess.Popen[bytes]:
    found = product.processes.get(name) or product.engine.processes.get(name)
    assert found is not None, f"{name} is not running"
    return found


def forget(product: Product, name: str) -> None:
    product.processes.pop(name, None)
    product.engine.processes.pop(name, None)


def kill(product: Product, name: str) -> None:
    """SIGKILL the service and every process of its session (workers' children too)."""
    found = process(product, name)
    with contextlib.suppress(ProcessLookupError):  # it may have crashed on its own already
        os.killpg(found.pid, signal.SIGKILL)
    found.wait(timeout=30)
    forget(product, name)


def start(product: Product, name: str) -> None:
    """Start ``name`` again with the product's settings."""
    if name in POUNDCAKE_SERVICES:
        product.start(name, [str(BIN / name)])
        return
    assert name in ENGINE_SERVICES, name
    config = product.engine.config_path
    product.start(
        name,
        [*service_command(name), "--config-file", str(config)],
        env=command_environment(product.engine.directory),
    )


def running(product: Product) -> list[str]:
    """Names of the product's services that are up (Alertmanager aside)."""
    names = [*POUNDCAKE_SERVICES, *ENGINE_SERVICES]
    return [
        name
        for name in names
        if (found := product.processes.get(name) or product.engine.processes.get(name))
        and found.poll() is None
    ]


class CrashWatch:
    """Records PoundCake's services that exit by themselves with a failure code.

    Nothing is restarted: the product must recover from the faults on its own. Exits the tests
    cause (SIGKILL, SIGTERM: -9, -15 or 0) are left to the tests.
    """

    def __init__(self, product: Product, interval: float = 0.5) -> None:
        self.product = product
        self.interval = interval
        self.crashed: list[tuple[str, int]] = []
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> CrashWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for name in POUNDCAKE_SERVICES:
                found = self.product.processes.get(name)
                code = found.poll() if found is not None else None
                if (
                    found is not None
                    and code is not None
                    and code > 0
                    and found.pid not in self._seen
                ):
                    self._seen.add(found.pid)
                    self.crashed.append((name, code))
