"""Reading webhook requests: bodies by content type, payloads without credentials, URLs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from poundcake.engine.triggers.instances import parse_timestamp
from poundcake.engine.webhooks.registry import normalise_url, trigger_url
from poundcake.engine.webhooks.service import parse_webhook_body, webhook_payload
from poundcake.exceptions import ValidationError


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        (b'{"a": 1}', "application/json", {"a": 1}),
        (b'{"a": 1}', "application/json; charset=utf-8", {"a": 1}),
        (b"[1, 2]", None, [1, 2]),
        (b'{"a": 1}', "", {"a": 1}),
        (b"", "application/json", {}),
        (
            b"a=1&b=2&a=3&c=",
            "application/x-www-form-urlencoded",
            {"a": ["1", "3"], "b": ["2"], "c": [""]},
        ),
        (b"just words", "text/plain", "just words"),
        (b"", "text/plain", ""),
    ],
)
def test_bodies_by_content_type(raw: bytes, content_type: str | None, expected: object) -> None:
    assert parse_webhook_body(raw, content_type) == expected


@pytest.mark.parametrize(
    ("raw", "content_type", "problem"),
    [
        (b"{not json", "application/json", "Failed to parse request body"),
        (b"<a/>", "application/xml", 'Unsupported Content-Type: "application/xml"'),
        (b"\xff\xfe", "text/plain", "Failed to parse request body"),
    ],
)
def test_unreadable_bodies_are_validation_errors(
    raw: bytes, content_type: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_webhook_body(raw, content_type)
    assert problem in str(raised.value)


def test_payload_drops_credentials_and_names_headers_as_stackstorm_does() -> None:
    headers = [
        ("content-type", "application/json"),
        ("x-auth-token", "token"),
        ("St2-Api-Key", "key"),
        ("cookie", "auth-token=token"),
        ("authorization", "Basic Zm9vOmJhcg=="),
        ("x-github-event", "push"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
    ]
    payload = webhook_payload(headers, {"x": 1})
    assert payload == {
        "headers": {
            "Content-Type": "application/json",
            "X-Github-Event": "push",
            "X-Forwarded-For": "10.0.0.1, 10.0.0.2",
        },
        "headers_lower": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-forwarded-for": "10.0.0.1, 10.0.0.2",
        },
        "body": {"x": 1},
    }


@pytest.mark.parametrize(
    ("url", "normalised"),
    [("alertmanager", "alertmanager"), ("/a/b/", "a/b"), ("//a//", "a"), ("a/b", "a/b")],
)
def test_urls_lose_leading_and_trailing_slashes(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised
    assert trigger_url({"url": url}) == normalised


def test_a_trigger_without_a_url_has_none() -> None:
    assert trigger_url({}) is None
    assert trigger_url(None) is None
    assert trigger_url({"url": 5}) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2000-01-01T12:00:00.000Z", datetime(2000, 1, 1, 12, tzinfo=UTC)),
        ("2000-01-01 12:00:00", datetime(2000, 1, 1, 12, tzinfo=UTC)),
        ("2000-01-01T14:00:00+02:00", datetime(2000, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamps(value: str, expected: datetime) -> None:
    assert parse_timestamp(value, "timestamp_gt") == expected


def test_a_bad_timestamp_names_the_parameter() -> None:
    with pytest.raises(ValidationError, match=r"^timestamp_lt: "):
        parse_timestamp("yesterday", "timestamp_lt")
