"""``network.dns_lookup``: query DNS records, from the system's resolvers or a given nameserver."""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.rdatatype
import dns.resolver
import dns.reversename
from st2common.runners.base_action import Action

RECORD_TYPES = ("A", "AAAA", "PTR", "CNAME", "MX", "TXT", "NS", "SRV")


def resolver_for(nameserver: str | None, port: int, query_timeout: float) -> dns.resolver.Resolver:
    """Return a resolver asking ``nameserver`` (else the system's resolvers)."""
    if nameserver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver]
    else:
        resolver = dns.resolver.Resolver()
    resolver.port = port
    resolver.lifetime = query_timeout
    resolver.timeout = query_timeout
    return resolver


class DnsLookup(Action):
    """Resolve ``name``; fail when it does not exist, has no such record or nobody answers."""

    def run(
        self,
        name: str,
        record_type: str = "A",
        nameserver: str | None = None,
        port: int = 53,
        query_timeout: float = 5.0,
    ) -> tuple[bool, dict[str, Any]]:
        kind = record_type.upper()
        if kind not in RECORD_TYPES:
            raise ValueError(f"record_type must be one of {', '.join(RECORD_TYPES)}, not {kind}.")
        query = name
        if kind == "PTR":
            try:
                query = dns.reversename.from_address(name).to_text()
            except (ValueError, dns.exception.SyntaxError):
                raise ValueError(f"A PTR lookup takes an IP address, not {name!r}.") from None
        resolver = resolver_for(nameserver, port, query_timeout)
        result: dict[str, Any] = {"name": name, "query": query, "record_type": kind}
        try:
            answer = resolver.resolve(query, kind, search=False)
        except dns.resolver.NXDOMAIN:
            result["error"] = f"{query} does not exist (NXDOMAIN)."
            return False, result
        except dns.resolver.NoAnswer:
            result["error"] = f"{query} has no {kind} record."
            return False, result
        except dns.resolver.LifetimeTimeout:
            result["error"] = f"No answer for {query} {kind} within {query_timeout}s."
            return False, result
        except dns.resolver.NoNameservers as error:
            result["error"] = f"No nameserver answered {query} {kind}: {error}"
            return False, result
        result.update(
            records=[record.to_text() for record in answer],
            ttl=answer.rrset.ttl if answer.rrset is not None else None,
            nameserver=answer.nameserver,
        )
        return True, result
