"""Comparing IP addresses as hosts, whatever socket family reported them.

A dual-stack socket reports an IPv4 client as ``::ffff:a.b.c.d``; the same
client seen on an IPv4 socket is ``a.b.c.d``. Trust decisions that compare a
host's address ("does this request come from where the peer registered?")
must treat both spellings as one host.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

__all__ = [
    "for_socket",
    "from_socket",
    "is_ipv6",
    "normalise_ip",
    "route_ip",
    "same_host",
    "share_key",
]


@functools.lru_cache(maxsize=4096)
def normalise_ip(text: str) -> str:
    """The canonical text of an IP address; an IPv4-mapped IPv6 address becomes IPv4.

    Text that is not an IP address is returned unchanged, so comparing it
    never raises (and never equals a real address by accident).
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def from_socket(address: tuple[Any, ...]) -> tuple[str, int]:
    """``(ip, port)`` as the protocol writes it, from what a socket reported.

    A dual-stack socket reports an IPv4 sender as ``::ffff:a.b.c.d`` (and IPv6
    as a 4-tuple); the protocol names it ``a.b.c.d``, as the Go server does
    (Go prints an IPv4-mapped address as IPv4), so an IPv4 peer of a server
    on ``::`` is introduced with an address its own IPv4 socket can send to.
    """
    host = str(address[0])
    if host[:7].lower() == "::ffff:" and "." in host:
        host = normalise_ip(host)
    return host, int(address[1])


def for_socket(family: int, address: tuple[str, int]) -> tuple[str, int]:
    """The destination to hand a socket of ``family``: an IPv6 socket reaches an IPv4
    host at its IPv4-mapped address (RFC 4291 section 2.5.5.2), the inverse of
    :func:`from_socket`; anything else is left as it is."""
    if family == socket.AF_INET6 and ":" not in address[0]:
        return f"::ffff:{address[0]}", address[1]
    return address


def is_ipv6(text: str) -> bool:
    """Whether ``text`` is an IPv6 address (an IPv4-mapped one counts as IPv4)."""
    return ":" in normalise_ip(text)


def same_host(a: str, b: str) -> bool:
    """Whether two IP address texts name the same host (``::ffff:127.0.0.1`` is ``127.0.0.1``)."""
    return a == b or normalise_ip(a) == normalise_ip(b)


@functools.lru_cache(maxsize=65536)
def share_key(text: str) -> str:
    """What one party's share of a server is counted by: an IPv4 address, or an IPv6 /64.

    One IPv6 host usually holds a whole /64 (RFC 4291 section 2.5.1; SLAAC
    gives every interface one), so counting per IPv6 address would let one
    host pose as millions.
    """
    ip = normalise_ip(text)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return ip


def route_ip(destination: tuple[str, int]) -> str | None:
    """The local IP this machine would send from toward ``destination``, or None
    without a route. Connecting a UDP socket picks the route and sends nothing."""
    family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(destination)
            return str(probe.getsockname()[0])
    except OSError:  # no route at all: an offline machine, or no IPv6
        return None
