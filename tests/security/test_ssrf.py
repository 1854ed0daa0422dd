"""SSRF: the http-request runner, run by the real action runner, refuses internal destinations.

Every execution here is a real ``core.http`` execution (scheduler, RabbitMQ, action runner,
MariaDB). The destination is checked after DNS resolution and again on every redirect; only
``[http_runner] allowed_networks`` in st2.conf opens internal networks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from poundcake.engine.executions.models import ExecutionDB
from tests.integration.support.engine_stack import EngineStack
from tests.security.peers import HttpPeer, http_peer, running_engine

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
# Hosts that reach the peer on 127.0.0.1: numeric spellings, IPv4-mapped IPv6, and names from
# /etc/hosts that resolve to loopback.
LOOPBACK_SPELLINGS = ["127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]"]
LOOPBACK_NAMES = ["localhost", "vm"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    with running_engine(tmp_path_factory.mktemp("ssrf")) as stack:
        yield stack


@pytest.fixture
def peer() -> Iterator[HttpPeer]:
    with http_peer() as running:
        yield running


@pytest.fixture
def allowed_loopback(engine: EngineStack) -> Iterator[None]:
    """Allow 127.0.0.0/8 in st2.conf for one test (the runner reads it for each execution)."""
    original = engine.config_path.read_text()
    engine.config_path.write_text(original + "\n[http_runner]\nallowed_networks = 127.0.0.0/8\n")
    try:
        yield
    finally:
        engine.config_path.write_text(original)


def run_http(engine: EngineStack, url: str, **parameters: Any) -> ExecutionDB:
    requested = engine.request("core.http", {"url": url, **parameters})
    return engine.wait(requested.execution_id)


def assert_denied(execution: ExecutionDB, reason: str) -> None:
    assert execution.status == "failed", execution.result
    error = str(execution.result.get("error"))
    assert "denied" in error, error
    assert reason in error, error


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + LOOPBACK_NAMES)
def test_loopback_is_denied_in_every_spelling(
    engine: EngineStack, peer: HttpPeer, host: str
) -> None:
    execution = run_http(engine, peer.url("/secret", host=host))
    assert_denied(execution, "loopback")
    assert peer.received == []


def test_a_name_that_resolves_to_loopback_names_the_address(
    engine: EngineStack, peer: HttpPeer
) -> None:
    execution = run_http(engine, peer.url("/secret", host="vm"))
    assert_denied(execution, '"vm" resolves to 127.0.0.1')
    assert peer.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
    ],
)
def test_private_link_local_and_unspecified_targets_are_denied(
    engine: EngineStack, url: str
) -> None:
    execution = run_http(engine, url, timeout=5)
    assert execution.status == "failed", execution.result
    assert "denied" in str(execution.result.get("error")), execution.result


@pytest.mark.usefixtures("allowed_loopback")
@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "0x7f000001", "vm", "localhost"])
def test_loopback_is_reached_when_allowed_in_st2_conf(
    engine: EngineStack, peer: HttpPeer, host: str
) -> None:
    execution = run_http(engine, peer.url("/allowed", host=host))
    assert execution.status == "succeeded", execution.result
    assert [(seen.method, seen.path) for seen in peer.received] == [("GET", "/allowed")]


@pytest.mark.usefixtures("allowed_loopback")
@pytest.mark.parametrize(
    "target",
    [
        METADATA,
        "http://0xa9fea9fe/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://10.1.2.3/internal",
    ],
)
def test_a_redirect_from_an_allowed_server_to_an_internal_target_is_denied(
    engine: EngineStack, peer: HttpPeer, target: str
) -> None:
    execution = run_http(engine, peer.url(f"/redirect?to={target}"), allow_redirects=True)
    assert execution.status == "failed", execution.result
    error = str(execution.result.get("error"))
    assert error.startswith(f'Redirect to "{target}" denied.'), error
    assert [seen.path for seen in peer.received] == ["/redirect"]


@pytest.mark.usefixtures("allowed_loopback")
def test_a_redirect_within_the_allowed_network_is_followed(
    engine: EngineStack, peer: HttpPeer
) -> None:
    target = peer.url("/landed", host="127.1")
    execution = run_http(engine, peer.url(f"/redirect?to={target}"), allow_redirects=True)
    assert execution.status == "succeeded", execution.result
    assert [seen.path for seen in peer.received] == ["/redirect", "/landed"]


def test_the_allow_list_is_gone_once_removed_from_st2_conf(
    engine: EngineStack, peer: HttpPeer
) -> None:
    # Runs after the allowed_loopback tests restored st2.conf: loopback is denied again.
    execution = run_http(engine, peer.url("/after"))
    assert_denied(execution, "loopback")
    assert peer.received == []
