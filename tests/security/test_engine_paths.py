"""Identifiers poundcake-api passes on to the engine stay one path segment of the engine URL.

poundcake-api calls the engine with its own API key, so an id taken from a request must not
reach another engine endpoint (``../apikeys``) nor break the URL (a control character was a
500, found by the schemathesis run). A real HTTP server stands in for the engine and records
the path each call arrived at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from poundcake.remediation.engine_api import EngineClient, EngineUnavailableError
from tests.security.peers import HttpPeer, http_peer


@pytest.fixture
def engine_peer() -> Iterator[HttpPeer]:
    with http_peer() as peer:
        yield peer


@pytest.mark.parametrize(
    ("identifier", "sent"),
    [
        ("../apikeys", "..%2Fapikeys"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?show_secrets=true", "x%3Fshow_secrets%3Dtrue"),
        ("a/../../keys", "a%2F..%2F..%2Fkeys"),
        ("\x10bad id", "%10bad%20id"),
    ],
)
def test_an_identifier_is_one_path_segment(
    engine_peer: HttpPeer, identifier: str, sent: str
) -> None:
    client = EngineClient(engine_peer.url("/v1"), api_key=SecretStr("k"))
    calls = (
        client.get_execution,
        client.cancel_execution,
        client.get_trigger_instance,
    )
    for call in calls:
        with pytest.raises(EngineUnavailableError, match="not JSON"):
            call(identifier)  # the stand-in answers text, which the client refuses
    assert [(seen.method, seen.path) for seen in engine_peer.received] == [
        ("GET", f"/v1/executions/{sent}"),
        ("DELETE", f"/v1/executions/{sent}"),
        ("GET", f"/v1/triggerinstances/{sent}"),
    ]
