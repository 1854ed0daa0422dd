"""Fixtures shared by the remediation integration tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import ALERTMANAGER, wait_for_health
from tests.integration.support.st2cli import free_port, wait_for_port


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager of this module's own on a free loopback port; its base URL."""
    directory: Path = tmp_path_factory.mktemp("alertmanager")
    config = directory / "alertmanager.yml"
    config.write_text("route: {receiver: nobody}\nreceivers: [{name: nobody}]\n")
    port = free_port()
    with (directory / "log").open("wb") as log:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port)
            url = f"http://127.0.0.1:{port}"
            wait_for_health(f"{url}/-/ready")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
