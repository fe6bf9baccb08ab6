"""An IPv6 home gateway: a stateful firewall that translates nothing (RFC 6092).

With IPv6 every host has a global address of its own, so the gateway of a
home network rewrites no address and no port: the address the rendezvous
server sees is the host's own. What remains of the NAT is its filter. RFC
6092 ("simple security" for residential IPv6 gateways) has the gateway drop
unsolicited inbound traffic and let in what belongs to a flow the inside
host opened. Its section 3.2.3 (UDP filters): REC-17 recommends
endpoint-independent filtering where application transparency matters most
(and as the DEFAULT of a gateway no service provider manages),
address-dependent filtering where a stricter filter does; REC-14 keeps an
idle UDP flow's state at least two minutes (five by DEFAULT); REC-16
refreshes it with every outbound packet. The defaults here are the RFC's:
endpoint-independent, five minutes. A Linux gateway built on conntrack
(OpenWrt's firewall, ``punchlab netlab punch --ipv6``) keys each flow on both
endpoints, address and port: address-and-port-dependent filtering, stricter
than either recommendation; ask for it by name.

Each remote a flow sent to has its own permission, refreshed by the flow's
datagrams out to it and timing out on its own (conntrack's one entry per
flow), so a host's beats to the server do not keep a silent partner's way in
open; an endpoint-independent filter needs only the flow to live.

A :class:`Firewall` is a gateway the simulated :class:`~punchlab.sim.network.Network`
routes through exactly like a NAT box (it is one whose mapping is the
identity), so traces, tables and sequence diagrams show it the same way: a
datagram it passes is a ``translated`` event whose addresses did not change,
one it refuses is ``dropped`` with the reason :data:`FILTERED`.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from punchlab.display import text_table
from punchlab.messages import Address, format_address
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import (
    Behaviour,
    NatBox,
    NatConfig,
    forget_stale,
    permission_expiries,
    remote_cell,
)
from punchlab.sim.network import Network, Realm
from punchlab.sim.nodes import SimPeer

__all__ = [
    "DEFAULT_FIREWALL_TIMEOUT",
    "EXPIRED",
    "FILTERED",
    "Firewall",
    "Flow",
    "add_firewall",
    "add_v6_peer",
    "firewall_config",
]

#: RFC 6092 section 3.2.3, REC-14: an idle UDP flow's state lasts at least two
#: minutes, five by DEFAULT.
DEFAULT_FIREWALL_TIMEOUT = 300.0
#: The reason a firewall gives for an unsolicited datagram (no flow lets it in).
FILTERED = "filtered by firewall"
#: The reason for a datagram that a flow let in once, but whose state timed out.
EXPIRED = "firewall state expired"

#: The first documentation prefix (RFC 3849: 2001:db8::/32) a firewall's LAN gets.
FIRST_PREFIX = ipaddress.IPv6Network("2001:db8:1::/64")


def firewall_config(
    filtering: Behaviour | str = Behaviour.ENDPOINT_INDEPENDENT,
    timeout: float = DEFAULT_FIREWALL_TIMEOUT,
) -> NatConfig:
    """A firewall's settings in a NAT's terms: its filtering and its state timeout.

    The mapping is irrelevant (nothing is mapped); it reads endpoint-independent,
    since the outside port is the inside one whoever the host talks to.
    """
    behaviour = Behaviour(filtering)
    short = {"endpoint-independent": "EI", "address-dependent": "AD"}.get(behaviour.value, "APD")
    return NatConfig(
        Behaviour.ENDPOINT_INDEPENDENT, behaviour, timeout=timeout, name=f"firewall, {short}F"
    )


#: The most flows a gateway keeps before it forgets the expired ones.
MAX_FLOWS = 1024


@dataclass(slots=True)
class Flow:
    """One inside endpoint's state: when it expires, and each remote it sent to with
    the time that remote's permission expires (one timer per flow, as conntrack)."""

    inside: Address
    created: float
    expires: float
    contacted: dict[Address, float] = field(default_factory=dict)


class Firewall(NatBox):
    """A stateful IPv6 firewall in front of the hosts of one /64 (no translation).

    :meth:`outbound` records the flow and hands the source back unchanged;
    :meth:`admit` lets a datagram in only to an inside endpoint whose flow
    allows its sender under :attr:`config`'s filtering, while the flow lives.
    ``outside_ip`` is the gateway's own address (the first of the prefix).
    """

    def __init__(self, name: str, prefix: ipaddress.IPv6Network, config: NatConfig) -> None:
        super().__init__(name, str(prefix[1]), config, random.Random(0))
        self.prefix = prefix
        self.flows: dict[Address, Flow] = {}
        #: Datagrams refused per reason (a test or a chapter counts them).
        self.dropped: dict[str, int] = {}

    def outside_for(self, inside_ip: str) -> str:
        """No translation: the world sees the inside host's own address."""
        return inside_ip

    def outbound(self, inside: Address, remote: Address, now: float) -> Address:
        """Open (or refresh) ``inside``'s flow to ``remote``; the source stays as it is."""
        timeout = self.config.timeout
        flow = self.flows.get(inside)
        if flow is None or flow.expires <= now:
            if len(self.flows) >= MAX_FLOWS:
                self.flows = {k: f for k, f in self.flows.items() if f.expires > now}
            flow = self.flows[inside] = Flow(inside, now, now + timeout)
        flow.expires = now + timeout
        flow.contacted[remote] = now + timeout
        forget_stale(flow.contacted, now, timeout)
        return inside

    def admit(self, remote: Address, destination: Address, now: float) -> Address | str:
        """``destination`` if the filter lets ``remote`` in, else why it drops the datagram."""
        flow = self.flows.get(destination)
        if flow is None:
            return self._refuse(FILTERED)
        verdict = self._permission(flow, remote, now)
        return destination if verdict is None else self._refuse(verdict)

    def inbound(self, remote: Address, outside_port: int, now: float) -> Address | str:
        """A NAT's question ("which inside host owns this port?") has no answer here:
        a firewall is asked with the whole destination (:meth:`admit`)."""
        return self._refuse(FILTERED)

    def _permission(self, flow: Flow, remote: Address, now: float) -> str | None:
        """None if ``remote`` may come in now, else why not: no permission, or an expired one.

        Endpoint-independent filtering lets anyone in while the flow lives; the
        other two look at the permissions of ``remote`` (its exact endpoint, or
        any port of its address), each timing out on its own.
        """
        permits = permission_expiries(self.config.filtering, flow.contacted, remote)
        expiries = [flow.expires] if permits is None else permits
        if not expiries:
            return FILTERED
        return None if max(expiries) > now else EXPIRED

    def _refuse(self, reason: str) -> str:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return reason

    def table(self, now: float) -> list[dict[str, object]]:
        """The live flows as rows: the inside endpoint (also its public one) and its remotes."""
        return [
            {
                "inside = public": format_address(flow.inside),
                "remotes": ", ".join(
                    remote_cell(remote, expires, flow.expires, now)
                    for remote, expires in flow.contacted.items()
                ),
                "expires in s": round(flow.expires - now, 3),
            }
            for flow in sorted(self.flows.values(), key=lambda f: (f.created, f.inside))
            if flow.expires > now
        ]

    def show(self, now: float) -> str:
        rows = self.table(now)
        title = f"{self.name} ({self.config.name}, prefix {self.prefix}, no translation)"
        if not rows:
            return f"{title}: no flows"
        columns = list(rows[0])
        return f"{title}\n" + text_table([columns] + [[str(r[c]) for c in columns] for r in rows])

    def __repr__(self) -> str:
        return f"<Firewall {self.name} {self.config.name} for {self.prefix}>"


def _prefixes(net: Network) -> Iterator[ipaddress.IPv6Network]:
    """The /64s of 2001:db8::/32 not yet given to a firewall of ``net``."""
    used = {box.prefix for box in net.nat_boxes if isinstance(box, Firewall)}
    start = int(FIRST_PREFIX.network_address) >> 64
    for index in range(start, start + 0xFFFF):
        prefix = ipaddress.IPv6Network((index << 64, 64))
        if prefix not in used:
            yield prefix


def add_firewall(
    net: Network,
    name: str,
    filtering: Behaviour | str = Behaviour.ENDPOINT_INDEPENDENT,
    *,
    timeout: float = DEFAULT_FIREWALL_TIMEOUT,
    lan: LinkConfig | None = None,
) -> Firewall:
    """A home gateway on the internet with a fresh /64 behind it (2001:db8:1::/64 first)."""
    prefix = next(_prefixes(net))
    box = Firewall(name, prefix, firewall_config(filtering, timeout))
    inside = Realm(f"{name} LAN", lan or net.lan, gateway=box, parent=net.internet)
    inside._addresses = (str(prefix[n]) for n in range(2, 2**16))
    net.register_gateway(box, inside)
    return box


def add_v6_peer(net: Network, name: str, *, behind: Firewall, **options: object) -> SimPeer:
    """A peer with a global IPv6 address from ``behind``'s /64 (``options``: add_peer's).

    The address is routed to the firewall from outside, as the /64 is in real
    life: every datagram for it crosses the firewall's filter.
    """
    peer = net.add_peer(name, behind=behind, **options)  # type: ignore[arg-type]
    net.internet.nats[peer.address[0]] = (behind, net.realm_of_node(name))
    return peer
