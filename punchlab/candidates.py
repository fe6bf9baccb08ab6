"""Private endpoints: a peer's own (local) address, offered beside the public one.

Two peers behind the same NAT reach each other's *public* address only if
the NAT hairpins (RFC 4787 REQ-9; Ford et al. 2005 found 24% of NATs did).
Their local addresses need no NAT at all. So a punchlab peer tells the
server its local address in the ``local`` key of REGISTRATION (the Go side
ignores the key), the server passes the partner's on with an introduction
when both came from the same public IP, and the peer sends HELLOs to both at
once, as ICE pairs host and server-reflexive candidates (RFC 8445 section 5.1.1).

A local address is a claim from the network: at most
:data:`MAX_LOCAL_ADDRESSES`, each an IP that cannot be reached across the
internet anyway (not global), never loopback, link-local, unspecified or
multicast. A HELLO to it carries the introduction's token like every other,
and only an answer carrying the token is adopted.
"""

from __future__ import annotations

import ipaddress

from punchlab.addresses import normalise_ip
from punchlab.messages import Address, MalformedMessage, format_address, parse_address

__all__ = [
    "MAX_LOCAL_ADDRESSES",
    "format_local",
    "parse_local",
    "private_endpoints",
    "usable_local_ip",
]

#: How many local addresses one peer may claim (a host has one or two interfaces).
MAX_LOCAL_ADDRESSES = 3
#: The longest ``local`` value read: three bracketed IPv6 addresses with ports, and commas.
MAX_LOCAL_TEXT = MAX_LOCAL_ADDRESSES * 48


def usable_local_ip(ip: str) -> str | None:
    """Why ``ip`` cannot be a private endpoint, or None when it can."""
    try:
        address = ipaddress.ip_address(normalise_ip(ip))  # ::ffff:a.b.c.d is a.b.c.d
    except ValueError:
        return f"{ip!r} is not an IP address"
    if address.is_loopback:
        return f"{ip} is a loopback address"
    if address.is_link_local:
        return f"{ip} is a link-local address"
    if address.is_unspecified or address.is_multicast:
        return f"{ip} is not a unicast address"
    if address.is_global:
        return f"{ip} is a global address (the server already sees public addresses)"
    return None


def parse_local(text: str | None) -> tuple[Address, ...]:
    """The addresses of a ``local`` value, or :class:`MalformedMessage` saying what is wrong.

    None or an empty value claims nothing.
    """
    if not text:
        return ()
    if len(text) > MAX_LOCAL_TEXT:
        raise MalformedMessage(f"local addresses longer than {MAX_LOCAL_TEXT} characters")
    parts = text.split(",")
    if len(parts) > MAX_LOCAL_ADDRESSES:
        raise MalformedMessage(f"more than {MAX_LOCAL_ADDRESSES} local addresses")
    found: list[Address] = []
    for part in parts:
        address = parse_address(part)
        problem = usable_local_ip(address[0])
        if problem is not None:
            raise MalformedMessage(f"local address refused: {problem}")
        if address not in found:
            found.append(address)
    return tuple(found)


def format_local(addresses: tuple[Address, ...]) -> str | None:
    """The ``local`` value for ``addresses`` (None, no key, when there are none)."""
    return ",".join(format_address(a) for a in addresses) if addresses else None


def private_endpoints(bound: Address) -> tuple[Address, ...]:
    """What a peer bound at ``bound`` offers as its private endpoint: that address if
    it can be one (a loopback or public address cannot), else nothing."""
    return (bound,) if usable_local_ip(bound[0]) is None else ()
