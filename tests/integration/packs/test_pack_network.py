"""The bundled ``network`` pack through the real engine and ``st2`` CLI: ping with the system's
``ping``, TCP port checks against real sockets, DNS lookups against a DNS server on loopback
speaking real DNS over UDP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.integration.support import pack_actions as actions
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    free_port,
    logged_in,
    running_engine,
)

ZONE = {
    ("web.example.test.", "A"): ["10.1.2.3"],
    ("web.example.test.", "AAAA"): ["fd00::53"],
    ("3.2.1.10.in-addr.arpa.", "PTR"): ["web.example.test."],
}
NAMES = {name for name, _ in ZONE}


class DnsServer:
    """A DNS server on a loopback UDP port answering from :data:`ZONE`."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while True:
            try:
                data, peer = self.socket.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            question = query.question[0]
            name, kind = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, kind))
            response = dns.message.make_response(query)
            records = ZONE.get((name, kind))
            if records:
                response.answer.append(dns.rrset.from_text(name, 300, "IN", kind, *records))
            elif name not in NAMES:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.socket.sendto(response.to_wire(), peer)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    server.thread.start()
    yield server
    server.socket.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    with running_engine(tmp_path_factory.mktemp("pack-network")) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


def succeeded(st2: St2, ref: str, *parameters: str) -> Any:
    return actions.succeeded(st2, ref, *parameters)["result"]


failed = actions.failed


def test_ping(st2: St2) -> None:
    answer = succeeded(st2, "network.ping", "host=127.0.0.1", "count=2", "interval=0.2")
    assert (answer["transmitted"], answer["received"]) == (2, 2)
    assert answer["packet_loss_percent"] == 0 and answer["reachable"] is True
    assert 0 <= answer["rtt_min_ms"] <= answer["rtt_avg_ms"] <= answer["rtt_max_ms"]
    strict = failed(st2, "network.ping", "host=127.0.0.1", "count=1", "max_loss_percent=-1")
    assert strict["result"]["error"] == "127.0.0.1: 0.0% packet loss (1 of 1 replies)."
    # .invalid never resolves (RFC 2606): ping itself fails and says why.
    unknown = failed(st2, "network.ping", "host=no-such-host.invalid", "count=1")
    assert "ping no-such-host.invalid failed (exit code 2)" in unknown["stderr"]
    assert "Name or service not known" in unknown["stderr"]
    refused = failed(st2, "network.ping", "host=-f")
    assert "is not a host name or address" in refused["stderr"]


def test_port_check(st2: St2) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        found = succeeded(st2, "network.port_check", "host=127.0.0.1", f"port={port}")
        assert found["open"] is True and found["address"] == "127.0.0.1"
    closed_port = free_port()
    closed = failed(st2, "network.port_check", "host=127.0.0.1", f"port={closed_port}")
    assert closed["result"]["open"] is False
    assert f"127.0.0.1:{closed_port} is not open: Connection refused" in closed["result"]["error"]
    unknown = failed(st2, "network.port_check", "host=no-such-host.invalid", "port=80")
    assert "Cannot resolve no-such-host.invalid" in unknown["result"]["error"]


def test_dns_lookup(st2: St2, dns_server: DnsServer) -> None:
    where = ("nameserver=127.0.0.1", f"port={dns_server.port}")
    a = succeeded(st2, "network.dns_lookup", "name=web.example.test", *where)
    assert a["records"] == ["10.1.2.3"] and a["ttl"] == 300
    aaaa = succeeded(st2, "network.dns_lookup", "name=web.example.test", "record_type=AAAA", *where)
    assert aaaa["records"] == ["fd00::53"]
    ptr = succeeded(st2, "network.dns_lookup", "name=10.1.2.3", "record_type=PTR", *where)
    assert (ptr["query"], ptr["records"]) == ("3.2.1.10.in-addr.arpa.", ["web.example.test."])
    assert ("web.example.test.", "AAAA") in dns_server.queries

    missing = failed(st2, "network.dns_lookup", "name=nope.example.test", *where)
    assert missing["result"]["error"] == "nope.example.test does not exist (NXDOMAIN)."
    no_record = failed(st2, "network.dns_lookup", "name=web.example.test", "record_type=MX", *where)
    assert no_record["result"]["error"] == "web.example.test has no MX record."
    bad_ptr = failed(st2, "network.dns_lookup", "name=web", "record_type=PTR", *where)
    assert "A PTR lookup takes an IP address" in bad_ptr["stderr"]
    silent = failed(
        st2,
        "network.dns_lookup",
        "name=web.example.test",
        "nameserver=127.0.0.1",
        f"port={free_port()}",
        "query_timeout=1",
    )
    assert "web.example.test" in silent["result"]["error"]
