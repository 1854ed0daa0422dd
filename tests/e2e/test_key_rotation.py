"""End to end: PoundCake's engine API key is rotated twice while alerts keep arriving and being
dispatched, and no alert is lost, delayed into failure, or dispatched twice.

First as the install guide's operator would, with the official ``st2`` CLI: ``st2 apikey create``,
write the key file, ``poundcake reload``, ``st2 apikey delete`` the old key. Then with
``poundcake engine-key --rotate``, which does the same in one command.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import alertmanager
from tests.e2e.stack import Product, eventually, running_product
from tests.integration.support.st2cli import St2, listing, logged_in

CABS: dict[str, dict[str, Any]] = {
    "rotation": {
        "name": "rotation",
        "alert_name_pattern": "^E2ERotation$",
        "steps": [
            {
                "name": "fix",
                "action": "core.local",
                "parameters": {"cmd": "echo fixed {{ alert.labels.instance }}"},
                "expected_result": {"stdout_contains": "fixed"},
            }
        ],
    }
}
PROCESSES = ("poundcake-api", "poundcake-worker", "poundcake-beat")
RELOADED = "reloaded; the engine API key is read again from"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("rotation"), CABS, key_in_file=True) as running:
        yield running


class AlertSender:
    """Posts a new firing alert to poundcake-api every ``interval`` seconds until stopped."""

    def __init__(self, product: Product, interval: float = 0.4) -> None:
        self.product = product
        self.interval = interval
        self.sent: list[str] = []
        self.codes: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            instance = f"host-{number:04d}"
            body = notification(instance, f"e2erotation{number:05d}")
            self.codes.append(self.product.api("POST", "/api/v1/webhook", json=body).status_code)
            self.sent.append(instance)
            self.stop.wait(self.interval)

    def __enter__(self) -> AlertSender:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def wait_for_more(self, count: int) -> None:
        target = len(self.sent) + count
        eventually(lambda: len(self.sent) >= target, f"{count} more alerts sent", 60)


def notification(instance: str, fingerprint: str) -> dict[str, Any]:
    labels = {"alertname": "E2ERotation", "severity": "warning", "instance": instance}
    return alertmanager.notification(labels, fingerprint=fingerprint, summary="rotation")


def key_file(product: Product) -> Path:
    return product.directory / "poundcake" / "secrets" / "st2-api-key"


def replace_key_file(path: Path, key: str) -> None:
    """What the operator does: write the new key beside the file, then rename it over it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(key + "\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def alerts_by_instance(product: Product) -> dict[str, dict[str, Any]]:
    response = product.api("GET", "/api/v1/alerts", params={"name": "E2ERotation", "limit": 500})
    assert response.status_code == 200, response.text
    return {alert["labels"]["instance"]: alert for alert in response.json()["alerts"]}


def remediated(product: Product, instances: list[str]) -> int:
    found = alerts_by_instance(product)
    return sum(1 for name in instances if found.get(name, {}).get("state") == "remediated")


def engine_status(product: Product, key: str) -> int:
    response = httpx.get(
        f"{product.engine.api_url}/actions", headers={"St2-Api-Key": key}, timeout=30
    )
    return response.status_code


def rotate_with_the_st2_cli(product: Product, cli: St2) -> str:
    created = cli("apikey", "create", "-k", "-m", '{"used_by": "poundcake", "rotation": "cli"}')
    assert created.returncode == 0, created.stdout + created.stderr
    new_key = created.stdout.strip()
    replace_key_file(key_file(product), new_key)
    reloaded = product.poundcake("reload")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    for name in PROCESSES:
        assert f"{name} (PID {product.processes[name].pid}) reloads." in reloaded.stdout
    keys = listing(cli("apikey", "list", "-j"))
    old = [key["id"] for key in keys if key.get("metadata", {}).get("rotation") != "cli"]
    assert len(old) == 1, keys
    deleted = cli("apikey", "delete", old[0])
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    return new_key


def test_rotating_the_engine_key_twice_loses_no_alert(product: Product) -> None:
    first_key = product.api_key
    cli = logged_in(product.engine, product.directory / "st2-home")
    keys: list[str] = [first_key]
    with AlertSender(product) as sender:
        sender.wait_for_more(5)
        eventually(lambda: remediated(product, sender.sent) >= 3, "alerts remediated", 120)

        keys.append(rotate_with_the_st2_cli(product, cli))
        assert engine_status(product, first_key) == 401
        sender.wait_for_more(10)

        rotated = product.poundcake("engine-key", "--rotate", "--grace", "1")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "Deleted the old engine API key" in rotated.stdout
        keys.append(key_file(product).read_text().strip())
        assert engine_status(product, keys[1]) == 401
        sender.wait_for_more(10)

    assert sender.codes == [202] * len(sender.sent)
    assert len(keys) == len(set(keys)) == 3
    assert engine_status(product, keys[2]) == 200
    product.api_key = keys[2]

    def all_remediated() -> bool:
        return remediated(product, sender.sent) == len(sender.sent)

    eventually(all_remediated, f"all {len(sender.sent)} alerts remediated", 240)
    found = alerts_by_instance(product)
    assert {found[name]["state"] for name in sender.sent} == {"remediated"}
    workflows = product.engine_api(
        "GET", "/executions", params={"action": "poundcake_cabs.rotation", "limit": 1}
    )
    assert workflows.status_code == 200, workflows.text
    assert int(workflows.headers["X-Total-Count"]) == len(sender.sent)

    for name in PROCESSES:
        log = product.log(name)
        assert log.count(f"{name}: {RELOADED}") >= 2, f"{name} did not log both reloads"
        for key in keys:
            assert key not in log, f"{name} logged an engine API key"
    worker = product.log("poundcake-worker")
    assert "Restarting celery worker" not in worker
    assert "answered 401" not in worker
    for service in product.engine.processes:
        engine_log = product.engine.log(service)
        assert all(key not in engine_log for key in keys), f"{service} logged a key"
