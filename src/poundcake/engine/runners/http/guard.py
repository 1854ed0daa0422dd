"""Which destinations the ``http-request`` runner may reach (its guard against SSRF).

StackStorm compares URL hosts as strings, which decimal or hex IPs, trailing dots and DNS
rebinding get past. Here every host is resolved and every address it resolves to is checked:
loopback, private, link-local (cloud metadata included), unspecified, multicast, reserved and other
non-global addresses are denied, also when embedded in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64).
Operators allow intended internal targets engine-wide with :class:`NetworkPolicy`; an action's
``url_hosts_whitelist`` names exact hosts it may reach whatever they resolve to. The WinRM runners
use the same guard with a policy of their own (``[winrm_runner] allowed_networks``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from poundcake.config import St2Config
from poundcake.exceptions import ConfigurationError, PermissionDeniedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

ALLOWED_NETWORKS_SETTING = "[http_runner] allowed_networks"
_NAT64_NETWORKS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


class DestinationDeniedError(PermissionDeniedError):
    """The runner may not send a request to this destination."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    for network in _NAT64_NETWORKS:
        if address in network:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _own_denial(address: IPAddress) -> str | None:
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global),
    )
    return next((reason for reason, denied in checks if denied), None)


def denial_reason(address: IPAddress) -> str | None:
    """Return why ``address`` is denied by default (``loopback``, ``private``...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = _own_denial(inner)
            if reason is not None:
                return f"{reason} (embedded {inner})"
    return _own_denial(address)


def canonical_host(host: str) -> str:
    """Return ``host`` as one spelling: lower case, no brackets or trailing dot, IPs normalised.

    Numeric IPv4 forms the system resolver accepts (``127.1``, ``0x7f000001``, ``2130706433``)
    become dotted quads, so host lists compare what would actually be contacted.
    """
    value = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if _NUMERIC_IPV4.match(value):
        try:
            return socket.inet_ntoa(socket.inet_aton(value))
        except OSError:
            return value
    return value


def resolve(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` as a connection would; raise OSError (``socket.gaierror``) on failure."""
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class NetworkPolicy:
    """Networks an operator allows the runner to reach although they are not public."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    setting: str = field(default=ALLOWED_NETWORKS_SETTING, compare=False)
    """The st2.conf setting that opens networks, named in denials."""

    @classmethod
    def parse(
        cls, networks: str | Iterable[str], *, setting: str = ALLOWED_NETWORKS_SETTING
    ) -> NetworkPolicy:
        """Build a policy from CIDRs (``10.0.0.0/8, ::1/128``); raise ConfigurationError."""
        items = networks.split(",") if isinstance(networks, str) else list(networks)
        parsed = []
        for item in (raw.strip() for raw in items):
            if not item:
                continue
            try:
                parsed.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(
                    setting, f"{item!r} is not a network (expected a CIDR)"
                ) from None
        return cls(allowed_networks=tuple(parsed), setting=setting)

    def permits(self, address: IPAddress) -> bool:
        """Tell whether ``address`` (or the IPv4 address it embeds) is in an allowed network."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = embedded_ipv4(address)
            if inner is not None:
                candidates.append(inner)
        return any(
            candidate in network for candidate in candidates for network in self.allowed_networks
        )

    def denial(self, address: IPAddress) -> str | None:
        """Return why ``address`` may not be contacted under this policy, or None."""
        if self.permits(address):
            return None
        return denial_reason(address)


def network_policy_from_config(config: St2Config) -> NetworkPolicy:
    """Read ``[http_runner] allowed_networks`` from st2.conf (empty: only public addresses)."""
    return NetworkPolicy.parse(config.http_allowed_networks)


@dataclass(frozen=True)
class DestinationGuard:
    """Checks URL hosts against the host lists, and resolved addresses against the policy."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    whitelist: frozenset[str] = frozenset()
    blacklist: frozenset[str] = frozenset()
    resolver: Resolver = resolve
    host_list_parameter: str | None = "url_hosts_whitelist"
    """The action parameter that allows a host by name, named in denials (None: there is none)."""

    @classmethod
    def build(
        cls,
        policy: NetworkPolicy,
        *,
        whitelist: Iterable[str] = (),
        blacklist: Iterable[str] = (),
        resolver: Resolver = resolve,
        host_list_parameter: str | None = "url_hosts_whitelist",
    ) -> DestinationGuard:
        """Build a guard with host lists in canonical form."""
        return cls(
            policy=policy,
            whitelist=frozenset(canonical_host(host) for host in whitelist),
            blacklist=frozenset(canonical_host(host) for host in blacklist),
            resolver=resolver,
            host_list_parameter=host_list_parameter,
        )

    def check_url_host(self, host: str) -> None:
        """Apply ``url_hosts_blacklist`` and ``url_hosts_whitelist`` to a URL's host."""
        canonical = canonical_host(host)
        if canonical in self.blacklist:
            raise DestinationDeniedError(f'URL host "{host}" is blacklisted (url_hosts_blacklist)')
        if self.whitelist and canonical not in self.whitelist:
            raise DestinationDeniedError(
                f'URL host "{host}" is not whitelisted (url_hosts_whitelist)'
            )

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` and return its addresses if every one of them may be contacted."""
        addresses = self.resolver(host, port)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        if canonical_host(host) in self.whitelist:
            return addresses
        for address in addresses:
            reason = self.policy.denial(address)
            if reason is not None:
                shown = f'"{host}" resolves to {address}' if str(address) != host else str(address)
                article = "an" if reason[0] in "aeiou" else "a"
                raise DestinationDeniedError(
                    f"Destination {shown}, {article} {reason} address: requests to loopback, "
                    "private, link-local, multicast, unspecified and other non-public addresses "
                    f"are denied ({self._allow_hint()})"
                )
        return addresses

    def _allow_hint(self) -> str:
        network = f"the network with {self.policy.setting}"
        if self.host_list_parameter is None:
            return f"allow {network}"
        return f"allow the host with {self.host_list_parameter}, or {network}"
