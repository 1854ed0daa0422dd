"""The engine API's path normalisation: the direct, prefixed and unversioned forms StackStorm's
routers serve all reach the same route."""

from __future__ import annotations

import pytest

from poundcake.engine.api.paths import normalise


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/actions", "/v1/actions"),
        ("/v1/actions/", "/v1/actions"),
        ("/api/v1/actions", "/v1/actions"),
        ("/actions", "/v1/actions"),
        ("/executions/5f0c0ffee0ddba11ca5e0001", "/v1/executions/5f0c0ffee0ddba11ca5e0001"),
        ("/v1", "/v1"),
        ("/api/v1", "/v1"),
        ("/tokens", "/tokens"),
        ("/v1/tokens", "/tokens"),
        ("/auth/v1/tokens", "/tokens"),
        ("/auth/v1/tokens/validate", "/tokens/validate"),
        ("/v1/tokens/validate", "/tokens/validate"),
        ("/stream/v1/stream", "/v1/stream"),
        ("/stream", "/v1/stream"),
        ("/health/live", "/health/live"),
        ("/health/ready/", "/health/ready"),
        ("/", "/"),
        ("/v1/openapi.json", "/v1/openapi.json"),
    ],
)
def test_every_form_reaches_its_route(path: str, route: str) -> None:
    assert normalise(path) == route


def test_a_root_is_matched_as_a_whole_segment() -> None:
    assert normalise("/tokensmith") == "/v1/tokensmith"
    assert normalise("/v10/actions") == "/v1/v10/actions"
    assert normalise("/healthz") == "/v1/healthz"
