"""The whole product for the security tests that need it (schemathesis, the secret scan).

One product per test session: the engine's and PoundCake's processes on one MariaDB database,
with the ``secpack`` pack (an action with a ``secret: true`` parameter) and one CAB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Product, running_product

SECRET_PACK = "secpack"
CAB_ALERT = "SecurityScan"
CABS: dict[str, dict[str, Any]] = {
    "security_scan": {
        "name": "security_scan",
        "alert_name_pattern": f"^{CAB_ALERT}$",
        "steps": [
            {
                "name": "show",
                "action": "core.local",
                "parameters": {"cmd": "printf 'instance %s' {{ alert.labels.instance }}"},
                "expected_result": {"stdout_contains": "instance"},
            }
        ],
    }
}
USE_SECRET_ACTION = """\
---
name: use_secret
runner_type: python-script
description: Use a password without showing it.
enabled: true
entry_point: use_secret.py
parameters:
  password:
    type: string
    required: true
    secret: true
  note:
    type: string
"""
USE_SECRET_SCRIPT = '''\
"""Prove the password arrived, without returning it."""

import hashlib

from st2common.runners.base_action import Action


class UseSecret(Action):
    def run(self, password, note=""):
        return {"length": len(password), "sha256": hashlib.sha256(password.encode()).hexdigest()}
'''


def write_secret_pack(packs_dir: Path) -> None:
    """The ``secpack`` pack: ``secpack.use_secret`` takes a secret ``password``."""
    actions = packs_dir / SECRET_PACK / "actions"
    actions.mkdir(parents=True)
    (packs_dir / SECRET_PACK / "pack.yaml").write_text(
        f"ref: {SECRET_PACK}\nname: {SECRET_PACK}\ndescription: Security tests.\n"
        "version: 1.0.0\nauthor: tests\n"
    )
    (actions / "use_secret.yaml").write_text(USE_SECRET_ACTION)
    (actions / "use_secret.py").write_text(USE_SECRET_SCRIPT)


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    directory = tmp_path_factory.mktemp("security-product")
    write_secret_pack(directory / "packs")
    with running_product(directory, CABS) as running:
        yield running


@pytest.fixture(scope="session")
def known_ids(product: Product) -> dict[str, list[str]]:
    """Real objects (an alert's trail, its executions, a key...) by the path parameter names
    the APIs use for them, for fuzzed reads."""
    fired = product.api(
        "POST",
        "/api/v1/webhook",
        json=alert_notification({"alertname": CAB_ALERT, "instance": "seed-1"}),
    )
    assert fired.status_code == 202, fired.text
    alert = product.alert_in_state(CAB_ALERT, "remediated")
    started = product.engine_api(
        "POST", "/executions", json={"action": "core.local", "parameters": {"cmd": "echo seed"}}
    )
    assert started.status_code == 201, started.text
    stored = product.engine_api("PUT", "/keys/seed_key", json={"name": "seed_key", "value": "v"})
    assert stored.status_code == 200, stored.text

    def first(path: str, field: str = "id") -> str:
        listed = product.engine_api("GET", path, params={"limit": 1})
        assert listed.status_code == 200 and listed.json(), listed.text
        return str(listed.json()[0][field])

    rule = first("/rules", "ref")
    return {
        "execution_id": [str(started.json()["id"]), first("/executions")],
        "ref_or_id": ["core.local", "core", "poundcake.alert", rule],
        "id_or_key": [first("/apikeys")],
        "name": ["seed_key", "security_scan"],
        "instance_id": [first("/triggerinstances")],
        "enforcement_id": [first("/ruleenforcements")],
        "name_or_id": ["local-shell-cmd"],
        "pack": ["core"],
        "trail_id": [str(fired.json()["request_id"])],
        "alert_id": [str(alert["id"])],
        "ref": [rule],
    }


def alert_notification(labels: dict[str, str], status: str = "firing") -> dict[str, Any]:
    """An Alertmanager (version 4) notification carrying one alert with ``labels``."""
    starts = datetime.now(UTC).replace(microsecond=0).isoformat()
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "poundcake",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "security test"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": fingerprint,
            }
        ],
    }
