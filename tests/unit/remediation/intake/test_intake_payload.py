"""Reading Alertmanager's webhook payload: tolerant of extras, strict per alert, alert by alert."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from poundcake.remediation.alerts.ids import alert_id, label_fingerprint
from poundcake.remediation.intake.payload import (
    PayloadError,
    TooManyAlertsError,
    parse_document,
    parse_timestamp,
    parse_webhook,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# What Alertmanager 0.32+ sends (notify/webhook), with a resolved alert in a firing group.
ALERTMANAGER_BODY: dict[str, Any] = {
    "receiver": "poundcake",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskFull",
                "instance": "web-01:9100",
                "severity": "critical",
            },
            "annotations": {"summary": "Disk / is 97% full"},
            "startsAt": "2026-05-01T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
            "fingerprint": "8f3c9a01d2e4b5c6",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "instance": "web-02:9100"},
            "annotations": {},
            "startsAt": "2026-05-01T09:00:00+02:00",
            "endsAt": "2026-05-01T11:30:00.5Z",
            "generatorURL": "",
            "fingerprint": "1a2b3c4d5e6f7a8b",
        },
    ],
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "truncatedAlerts": 3,
    "notification_reason": "some alerts resolved",
    "someFutureField": {"nested": [1, 2, 3]},
}


def alert(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "CpuHigh", "instance": "db-01"},
        "annotations": {},
        "startsAt": "2026-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "00000000000000aa",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def parse(*alerts: dict[str, Any], **top: Any) -> Any:
    return parse_document({"version": "4", "alerts": list(alerts), **top}, max_alerts=1000, now=NOW)


def test_a_full_alertmanager_payload_is_read_with_its_extras() -> None:
    payload = parse_webhook(json.dumps(ALERTMANAGER_BODY).encode(), max_alerts=10, now=NOW)

    assert payload.rejected == ()
    assert payload.receiver == "poundcake"
    assert payload.group_key == '{}:{alertname="DiskFull"}'
    assert payload.notification_reason == "some alerts resolved"
    assert payload.truncated_alerts == 3
    assert payload.external_url == "http://alertmanager:9093"
    firing, resolved = payload.alerts
    assert firing.alertmanager_status == "firing"
    assert firing.alert_name == "DiskFull"
    assert firing.severity == "critical"
    assert firing.fingerprint == "8f3c9a01d2e4b5c6"
    assert firing.starts_at == datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert firing.ends_at is None
    assert firing.generator_url == "http://prometheus:9090/graph?g0.expr=disk"
    assert firing.annotations == {"summary": "Disk / is 97% full"}
    # Each alert's own status counts, not the group's.
    assert resolved.alertmanager_status == "resolved"
    assert resolved.severity is None
    assert resolved.starts_at == datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
    assert resolved.ends_at == datetime(2026, 5, 1, 11, 30, 0, 500000, tzinfo=UTC)
    assert resolved.generator_url is None


def test_notification_reason_and_truncated_alerts_are_optional() -> None:
    payload = parse(alert())

    assert payload.notification_reason is None
    assert payload.truncated_alerts == 0
    assert len(payload.alerts) == 1


@pytest.mark.parametrize("truncated", ["3", -1, None, 2.5, True])
def test_a_strange_truncated_alerts_counts_as_none(truncated: Any) -> None:
    assert parse(alert(), truncatedAlerts=truncated).truncated_alerts == 0


def test_a_malformed_alert_is_rejected_and_the_others_kept() -> None:
    payload = parse(
        alert(fingerprint="aa"),
        alert(labels=...),
        alert(startsAt=...),
        alert(startsAt="yesterday"),
        alert(fingerprint="bb"),
        "not an alert",
        alert(labels={"alertname": 5}),
        alert(status="pending"),
        alert(endsAt="2026-13-01T00:00:00Z"),
        alert(labels={}),
        alert(annotations=["x"]),
        alert(fingerprint="f" * 65),
        alert(startsAt="0001-01-01T00:00:00Z"),
        alert(status=["firing"]),
    )

    assert [item.fingerprint for item in payload.alerts] == ["aa", "bb"]
    assert [item.index for item in payload.alerts] == [0, 4]
    errors = {item.index: item.error for item in payload.rejected}
    assert errors == {
        1: "labels is missing",
        2: "startsAt is missing",
        3: "startsAt is not an RFC 3339 timestamp",
        5: "the alert is not an object",
        6: "labels must map names to strings ('alertname' does not)",
        7: "status must be firing or resolved",
        8: "endsAt is not a valid date and time",
        9: "labels is empty",
        10: "annotations must be an object",
        11: "fingerprint must be a string of at most 64 characters",
        12: "startsAt is not set",
        13: "status must be firing or resolved",
    }


def test_a_missing_fingerprint_is_computed_from_the_labels_like_alertmanager() -> None:
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    payload = parse(alert(fingerprint=..., labels=labels), alert(fingerprint="", labels=labels))

    # prometheus/common model: LabelSet{...}.Fingerprint() == 5799056148416392346.
    assert [item.fingerprint for item in payload.alerts] == ["507a62d79ee76c9a"] * 2
    assert label_fingerprint({}) == "cbf29ce484222325"
    assert label_fingerprint({"a": "b", "c": "d"}) == label_fingerprint({"c": "d", "a": "b"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T10:00:00.1Z", datetime(2026, 5, 1, 10, 0, 0, 100000, tzinfo=UTC)),
        ("2026-05-01T10:00:00.123456789Z", datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-05-01t10:00:00z", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-05-01T12:30:00.000000001+02:30", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("2026-04-30T23:00:00-11:00", datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_timestamps(text: str, expected: datetime | None) -> None:
    parsed = parse_timestamp(text)

    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01 10:00:00",
        "2026-05-01T10:00:00",
        "2026-05-01T10:00:00.1234567891Z",
        "2026-02-30T10:00:00Z",
        "2026-05-01T25:00:00Z",
        "0999-05-01T10:00:00Z",
        "2026-05-01T10:00:00+24:00",
        "1714557600",
    ],
)
def test_bad_timestamps_reject_the_alert(text: str) -> None:
    payload = parse(alert(startsAt=text))

    assert payload.alerts == ()
    assert payload.rejected[0].error.startswith("startsAt ")


def test_zero_ends_at_means_unset_and_a_missing_status_follows_ends_at() -> None:
    payload = parse(
        alert(status=..., endsAt="0001-01-01T00:00:00Z"),
        alert(status=..., endsAt=...),
        alert(status=..., endsAt="2026-05-01T11:59:59Z"),
        alert(status=..., endsAt="2026-05-01T12:00:01Z"),
    )

    assert [item.alertmanager_status for item in payload.alerts] == [
        "firing",
        "firing",
        "resolved",
        "firing",
    ]
    assert payload.alerts[0].ends_at is None
    assert payload.alerts[1].ends_at is None


def test_the_alert_id_is_the_episode() -> None:
    starts = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    same_moment = starts.astimezone(timezone(timedelta(hours=2)))
    expected = hashlib.sha256(b"abc|2026-05-01T10:00:00.123456+00:00").hexdigest()[:24]

    assert alert_id("abc", starts) == expected
    assert alert_id("abc", same_moment) == expected
    assert alert_id("abc", starts + timedelta(seconds=1)) != expected
    assert alert_id("abd", starts) != expected
    payload = parse(
        alert(startsAt="2026-05-01T10:00:00.123456Z", fingerprint="abc"),
        alert(startsAt="2026-05-01T12:00:00.123456999+02:00", fingerprint="abc"),
    )
    assert {item.alert_id for item in payload.alerts} == {expected}
    with pytest.raises(ValueError, match="timezone-aware"):
        alert_id("abc", starts.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b"", "the body is not JSON"),
        (b"[]", "the body is not a JSON object"),
        (b'"alerts"', "the body is not a JSON object"),
        (b"{}", "alerts must be a list"),
        (b'{"alerts": {"0": {}}}', "alerts must be a list"),
        (b'{"alerts": null}', "alerts must be a list"),
    ],
)
def test_a_body_that_is_not_a_webhook_is_refused_whole(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_webhook(body, max_alerts=10)


def test_too_many_alerts_is_refused_before_reading_them() -> None:
    body = json.dumps({"alerts": [alert()] * 3}).encode()

    assert len(parse_webhook(body, max_alerts=3).alerts) == 3
    with pytest.raises(TooManyAlertsError, match="3 alerts in one request; at most 2"):
        parse_webhook(body, max_alerts=2)


def test_long_text_is_cut_to_its_column() -> None:
    labels = {"alertname": "A" * 300, "severity": "S" * 100}
    payload = parse(alert(labels=labels, generatorURL="http://x/" + "y" * 3000), receiver="r" * 300)

    parsed = payload.alerts[0]
    assert len(parsed.alert_name) == 255
    assert parsed.severity is not None and len(parsed.severity) == 64
    assert parsed.generator_url is not None and len(parsed.generator_url) == 2048
    assert payload.receiver is not None and len(payload.receiver) == 255
    assert parsed.labels == labels


def test_an_empty_alert_list_is_a_valid_payload() -> None:
    payload = parse()

    assert payload.alerts == ()
    assert payload.rejected == ()
