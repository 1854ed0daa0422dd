"""PoundCake's Alertmanager client against a real Alertmanager: silences made, found, expired
(twice, and unknown ones, without error), and whether an alert still fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from poundcake.remediation.alertmanager_api import (
    AlertmanagerClient,
    AlertmanagerUnavailableError,
    label_matchers,
)
from tests.integration.support.st2cli import eventually, free_port


def test_a_silence_is_made_found_and_expired(alertmanager: str) -> None:
    client = AlertmanagerClient(alertmanager)
    now = datetime.now(UTC)
    labels = {"alertname": "DiskFull", "instance": 'db-1 "quoted"'}
    silence_id = client.create_silence(
        label_matchers(labels), now, now + timedelta(minutes=5), "poundcake-silence=row-1"
    )
    made = client.get_silence(silence_id)
    assert made is not None and made["status"]["state"] == "active"
    assert made["createdBy"] == "poundcake"
    assert {m["name"]: m["value"] for m in made["matchers"]} == labels
    assert silence_id in [silence["id"] for silence in client.silences()]
    client.expire_silence(silence_id)
    assert client.get_silence(silence_id)["status"]["state"] == "expired"  # type: ignore[index]
    client.expire_silence(silence_id)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get_silence(unknown) is None
    client.expire_silence(unknown)
    client.close()


def test_whether_an_alert_still_fires(alertmanager: str) -> None:
    client = AlertmanagerClient(alertmanager)
    labels = {"alertname": "CpuHigh", "instance": "web-1"}
    assert client.is_firing(labels, "unknown") is False
    posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=[{"labels": labels}], timeout=10)
    assert posted.status_code == 200, posted.text
    eventually(lambda: client.is_firing(labels, "unknown"), "the alert to fire")
    assert client.is_firing({**labels, "instance": "web-2"}, "unknown") is False
    ended = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    resolved = httpx.post(
        f"{alertmanager}/api/v2/alerts", json=[{"labels": labels, "endsAt": ended}], timeout=10
    )
    assert resolved.status_code == 200, resolved.text
    eventually(lambda: not client.is_firing(labels, "unknown"), "the alert to resolve")
    client.close()


def test_an_unreachable_alertmanager_is_unavailable_not_an_answer() -> None:
    client = AlertmanagerClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AlertmanagerUnavailableError, match="cannot reach Alertmanager"):
        client.is_firing({"alertname": "X"}, "x")
    client.close()
