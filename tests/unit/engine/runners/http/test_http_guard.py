"""The http-request runner's destination checks (SSRF guard), without any network."""

from __future__ import annotations

import ipaddress
import re

import pytest

from poundcake.engine.runners.http.guard import (
    DestinationDeniedError,
    DestinationGuard,
    IPAddress,
    NetworkPolicy,
    Resolver,
    canonical_host,
    denial_reason,
    embedded_ipv4,
)
from poundcake.exceptions import ConfigurationError


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-global"),
        ("240.0.0.1", "private"),
        ("192.0.2.1", "private"),
        ("::ffff:127.0.0.1", "loopback (embedded 127.0.0.1)"),
        ("::ffff:169.254.169.254", "link-local (embedded 169.254.169.254)"),
        ("::ffff:10.0.0.1", "private (embedded 10.0.0.1)"),
        ("2002:7f00:1::1", "loopback (embedded 127.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", "link-local (embedded 169.254.169.254)"),
        ("::127.0.0.1", "loopback (embedded 127.0.0.1)"),
    ],
)
def test_internal_addresses_are_denied(address: str, reason: str) -> None:
    assert denial_reason(ip(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert denial_reason(ip(address)) is None


def test_embedded_ipv4_forms() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:1.2.3.4")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2002:0102:0304::1")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::102:304")) == ip("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) is None


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::FFFF:127.0.0.1]", "::ffff:7f00:1"),
        ("[::1]", "::1"),
        ("Example.COM.", "example.com"),
        ("localhost", "localhost"),
    ],
)
def test_canonical_host(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical


def test_policy_parses_cidrs_and_permits_members() -> None:
    policy = NetworkPolicy.parse("127.0.0.0/8, 10.0.0.5 ,fd00::/8,")
    assert len(policy.allowed_networks) == 3
    assert policy.permits(ip("127.0.0.2"))
    assert policy.permits(ip("::ffff:127.0.0.1"))
    assert policy.permits(ip("fd00::5"))
    assert not policy.permits(ip("10.0.0.6"))
    assert policy.denial(ip("10.0.0.5")) is None
    assert policy.denial(ip("10.0.0.6")) == "private"
    assert policy.denial(ip("169.254.169.254")) == "link-local"


def test_policy_refuses_garbage() -> None:
    with pytest.raises(ConfigurationError, match=r"\[http_runner\] allowed_networks"):
        NetworkPolicy.parse("10.0.0.0/8, intranet")


def test_a_policy_of_another_runner_names_its_own_setting() -> None:
    """The WinRM runners' policy: its setting in errors and denials, and no host list hint."""
    setting = "[winrm_runner] allowed_networks"
    with pytest.raises(ConfigurationError, match=re.escape(setting)):
        NetworkPolicy.parse("intranet", setting=setting)
    guard = DestinationGuard.build(
        NetworkPolicy.parse("", setting=setting),
        resolver=fixed("10.1.2.3"),
        host_list_parameter=None,
    )
    with pytest.raises(DestinationDeniedError) as denied:
        guard.addresses("win-1", 5986)
    assert str(denied.value).endswith(f"are denied (allow the network with {setting})")
    allowed = DestinationGuard.build(
        NetworkPolicy.parse("10.0.0.0/8", setting=setting), resolver=fixed("10.1.2.3")
    )
    assert allowed.addresses("win-1", 5986) == [ip("10.1.2.3")]


def fixed(*addresses: str) -> Resolver:
    def resolver(host: str, port: int) -> list[IPAddress]:
        return [ip(address) for address in addresses]

    return resolver


def test_any_internal_address_denies_the_host() -> None:
    guard = DestinationGuard.build(NetworkPolicy(), resolver=fixed("93.184.216.34", "10.0.0.1"))
    with pytest.raises(
        DestinationDeniedError, match=re.escape('"example.com" resolves to 10.0.0.1')
    ):
        guard.addresses("example.com", 80)


def test_public_resolution_passes() -> None:
    guard = DestinationGuard.build(NetworkPolicy(), resolver=fixed("93.184.216.34"))
    assert guard.addresses("example.com", 80) == [ip("93.184.216.34")]


def test_whitelisted_host_may_resolve_anywhere_but_only_it() -> None:
    guard = DestinationGuard.build(
        NetworkPolicy(), whitelist=["Metadata.internal."], resolver=fixed("169.254.169.254")
    )
    assert guard.addresses("metadata.internal", 80) == [ip("169.254.169.254")]
    guard.check_url_host("METADATA.internal")
    with pytest.raises(DestinationDeniedError, match="not whitelisted"):
        guard.check_url_host("example.com")
    with pytest.raises(DestinationDeniedError, match="link-local"):
        guard.addresses("other.internal", 80)


def test_blacklist_compares_canonical_hosts() -> None:
    guard = DestinationGuard.build(NetworkPolicy(), blacklist=["127.0.0.1"])
    for spelling in ("127.0.0.1", "127.1", "0x7f000001", "2130706433"):
        with pytest.raises(DestinationDeniedError, match="blacklisted"):
            guard.check_url_host(spelling)
    guard.check_url_host("example.com")


def test_unresolvable_host_is_an_os_error() -> None:
    guard = DestinationGuard.build(NetworkPolicy(), resolver=fixed())
    with pytest.raises(OSError, match="resolves to no address"):
        guard.addresses("nowhere.invalid", 80)
