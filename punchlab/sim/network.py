"""A simulated internet: networks (realms), hosts, NAT boxes, and routing between them.

The public internet is one realm; every NAT box owns a private realm behind
it (which may itself hold another NAT, for a NAT behind a NAT). A datagram
crosses one realm per hop, delayed, lost or duplicated by that realm's link,
and is translated or filtered where it passes a NAT. Every step is recorded
in the trace, with a packet number linking the steps of one datagram.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from punchlab.messages import Address, describe, format_address
from punchlab.sim.engine import Scheduler
from punchlab.sim.fabric import Receiver
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import NatBox, NatConfig, nat_config
from punchlab.sim.nodes import SimPeer, SimServer
from punchlab.trace import EventKind, Trace

if TYPE_CHECKING:
    from punchlab.peer import PeerConfig

__all__ = ["Delay", "Drop", "Hop", "Network", "Realm", "RoutePacket", "drop_first"]

SERVER_IP = "203.0.113.1"
#: RFC 6598's shared address space, between a carrier-grade NAT and its customers.
SHARED_ADDRESS_SPACE = "100.64.0.0/10"


@dataclass(frozen=True)
class Hop:
    """One datagram about to cross one link: what a ``route_packet`` hook is shown.

    Returning a changed copy (``dataclasses.replace(hop, data=...)``) rewrites it.
    """

    packet: int
    link: str
    source: Address
    destination: Address
    data: bytes

    @property
    def msg_type(self) -> str:
        return describe(self.data)[0]


@dataclass(frozen=True)
class Drop:
    """Drop the datagram here (traced with this reason)."""

    reason: str = "dropped on purpose"


@dataclass(frozen=True)
class Delay:
    """Hold the datagram this much longer on the link."""

    seconds: float


#: What a hook decides for one hop: None lets it pass unchanged.
RoutePacket = Callable[[Hop], "Drop | Delay | Hop | None"]


def drop_first(msg_type: str, count: int = 1, *, link: str | None = None) -> RoutePacket:
    """A hook dropping the first ``count`` datagrams of ``msg_type`` (on ``link``, if named).

    Tests and notebooks use it to lose exactly the packet that matters,
    instead of searching for a seed whose random losses happen to hit it.
    """
    left = count

    def hook(hop: Hop) -> Drop | None:
        nonlocal left
        if left > 0 and hop.msg_type == msg_type and (link is None or hop.link == link):
            left -= 1
            return Drop(f"{msg_type} dropped on purpose")
        return None

    return hook


@dataclass(eq=False)
class Realm:
    """One network segment: the internet, or the private side of a NAT."""

    name: str
    link: LinkConfig
    gateway: NatBox | None = None
    parent: Realm | None = None
    hosts: dict[str, dict[int, Receiver]] = field(default_factory=dict)
    nats: dict[str, tuple[NatBox, Realm]] = field(default_factory=dict)
    _addresses: Iterator[str] | None = None

    def path_to_root(self) -> list[Realm]:
        realms = [self]
        while realms[-1].parent is not None:
            realms.append(realms[-1].parent)
        return realms


def _public_addresses() -> Iterator[str]:
    """Documentation addresses first (readable in notebooks), then the benchmarking range."""
    for host in range(1, 255):
        yield f"198.51.100.{host}"
    for address in ipaddress.ip_network("198.18.0.0/15").hosts():
        yield str(address)


def _private_addresses(index: int) -> Iterator[str]:
    base = ipaddress.ip_address("10.0.0.0") + index * 256
    for host in range(2, 255):
        yield str(base + host)


class Network:
    """The whole simulated world: ``net.add_nat(...)``, ``net.add_peer(...)``, ``net.run(...)``.

    One seeded generator drives every random choice (link loss, jitter,
    random port allocation, identifiers), so a seed replays a run exactly.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        internet: LinkConfig | None = None,
        lan: LinkConfig | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.scheduler = Scheduler()
        # The simulator keeps each datagram's bytes: a run can be saved as a pcap file.
        self.trace = trace if trace is not None else Trace(keep_data=True)
        self.lan = lan or LinkConfig(latency=0.001)
        self.internet = Realm("internet", internet or LinkConfig(latency=0.02))
        self.internet._addresses = _public_addresses()
        self.nat_boxes: list[NatBox] = []
        self.peers: list[SimPeer] = []
        self.servers: list[SimServer] = []
        self._realm_count = 0
        self._packets = 0
        self._locations: dict[str, Realm] = {}
        #: Called for every datagram entering a link (see :class:`Hop`): a test,
        #: a notebook or a NAT experiment may see, drop, delay or rewrite it.
        self.route_packet: RoutePacket | None = None

    @property
    def now(self) -> float:
        return self.scheduler.now

    # -- building the topology ---------------------------------------------------------

    def add_nat(
        self,
        name: str,
        kind: str | NatConfig = "port-restricted-cone",
        *,
        behind: NatBox | None = None,
        lan: LinkConfig | None = None,
        inside: str | None = None,
        **overrides: object,
    ) -> NatBox:
        """A NAT box on the internet (or inside another NAT's network), with a fresh LAN.

        ``inside``: the network its LAN's addresses come from (default: a fresh
        10.0.N.0/24); a carrier-grade NAT's is RFC 6598's shared 100.64.0.0/10.
        """
        outside = self._realm_of(behind)
        config = nat_config(kind, **overrides)
        box = NatBox(name, self._next_address(outside), config, self.rng)
        self._realm_count += 1
        realm = Realm(f"{name} LAN", lan or self.lan, gateway=box, parent=outside)
        if inside is None:
            realm._addresses = _private_addresses(self._realm_count)
        else:
            realm._addresses = (str(host) for host in ipaddress.ip_network(inside).hosts())
        outside.nats[box.outside_ip] = (box, realm)
        self._locations[box.name] = realm
        self.nat_boxes.append(box)
        return box

    def add_cgn(self, name: str = "CGN", kind: str | NatConfig = "carrier-grade") -> NatBox:
        """A carrier-grade NAT on the internet, its inside the shared address space
        100.64.0.0/10 of RFC 6598; put home NATs behind it with ``add_nat(behind=...)``."""
        return self.add_nat(name, kind, inside=SHARED_ADDRESS_SPACE)

    def add_server(
        self,
        name: str = "server",
        *,
        ip: str | None = None,
        rfc5780: bool = False,
        **server_options: object,
    ) -> SimServer:
        """A rendezvous server with a public address (203.0.113.1 for the first).

        With ``rfc5780`` it also runs an RFC 5780 server on its address and a
        second one, ports 3478 and 3479, and announces it to punchlab peers
        (``punchlab serve --stun-alternate`` does the same).
        """
        address = ip or (SERVER_IP if not self.servers else self._next_address(self.internet))
        server = SimServer(self, name, (address, 8089), **server_options)  # type: ignore[arg-type]
        self._attach(self.internet, server.address, server)
        self.servers.append(server)
        if rfc5780:
            from punchlab.sim.stun import STUN_PORT, add_stun_server

            add_stun_server(self, name, port=STUN_PORT, primary_ip=address)
            server.core.announce_rfc5780(STUN_PORT)
        return server

    def add_peer(
        self,
        name: str,
        *,
        behind: NatBox | None = None,
        port: int = 5000,
        config: PeerConfig | None = None,
        server: SimServer | None = None,
        discover: bool = False,
    ) -> SimPeer:
        """A peer behind ``behind`` (or on the internet with a public address).

        ``discover``: run RFC 5780's mapping tests once registered (the server
        must have been added with ``rfc5780``), so the traversal ladder can
        choose port prediction or birthday probing instead of the relay.
        """
        if server is None:
            if not self.servers:
                raise ValueError("add a server before adding peers")
            server = self.servers[0]
        realm = self._realm_of(behind)
        address = (self._next_address(realm), port)
        peer = SimPeer(self, name, address, server, config, discover=discover)
        self._attach(realm, peer.address, peer)
        self.peers.append(peer)
        return peer

    def _realm_of(self, nat: NatBox | None) -> Realm:
        if nat is None:
            return self.internet
        try:
            return self._locations[nat.name]
        except KeyError:
            raise ValueError(f"{nat!r} is not part of this network") from None

    def _next_address(self, realm: Realm) -> str:
        assert realm._addresses is not None
        try:
            return next(realm._addresses)
        except StopIteration:
            raise ValueError(f"no addresses left in {realm.name}") from None

    def _attach(self, realm: Realm, address: Address, receiver: Receiver) -> None:
        realm.hosts.setdefault(address[0], {})[address[1]] = receiver
        self._locations[receiver.name] = realm

    def attach(self, name: str, address: Address, receiver: Receiver) -> None:
        """Bind one more address of node ``name``, in the realm the node lives in."""
        realm = self._locations[name]
        if address[1] in realm.hosts.get(address[0], {}):
            raise ValueError(f"{format_address(address)} is already bound")
        self._attach(realm, address, receiver)

    def detach(self, name: str, address: Address) -> None:
        """Unbind an address of node ``name`` bound with :meth:`attach`."""
        self._locations[name].hosts.get(address[0], {}).pop(address[1], None)

    def register_gateway(self, box: NatBox, inside: Realm) -> None:
        """Put a gateway built elsewhere (punchlab.sim.firewall) on its outside realm."""
        assert inside.parent is not None
        self._realm_count += 1
        inside.parent.nats[box.outside_ip] = (box, inside)
        self._locations[box.name] = inside
        self.nat_boxes.append(box)

    def realm_of_node(self, name: str) -> Realm:
        return self._locations[name]

    def base_latency(self, a: str, b: str) -> float:
        """One-way latency without jitter between two nodes (for the simulated HTTP)."""
        path_a = self._locations[a].path_to_root()
        path_b = self._locations[b].path_to_root()
        common = next(realm for realm in path_a if realm in path_b)
        realms = path_a[: path_a.index(common) + 1] + path_b[: path_b.index(common)]
        return sum(realm.link.latency for realm in realms)

    def http_source_ip(self, client: str, client_ip: str, server: str) -> str:
        """The IP address ``server`` sees a TCP connection from ``client`` come from.

        HTTP is simulated as reliable, but it crosses the client's NATs like
        UDP does: the server sees the outermost NAT's public address.
        """
        path_client = self._locations[client].path_to_root()
        path_server = self._locations[server].path_to_root()
        common = next(realm for realm in path_client if realm in path_server)
        ip = client_ip
        for realm in path_client[: path_client.index(common)]:
            assert realm.gateway is not None  # every realm below the common one sits behind a NAT
            ip = realm.gateway.outside_for(ip)
        return ip

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        until: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        max_events: int | None = None,
    ) -> None:
        """Advance virtual time (see :meth:`Scheduler.run`)."""
        self.scheduler.run(until, stop=stop, max_events=max_events)

    def run_for(self, duration: float, *, stop: Callable[[], bool] | None = None) -> None:
        self.run(self.now + duration, stop=stop)

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Run until ``condition()`` holds or ``timeout`` virtual seconds pass; say which."""
        self.run(self.now + timeout, stop=condition)
        return condition()

    # -- moving datagrams --------------------------------------------------------------

    def new_packet(self) -> int:
        """A fresh number linking the trace events of one datagram (or HTTP message)."""
        self._packets += 1
        return self._packets

    def send(self, sender: str, source: Address, destination: Address, data: bytes) -> None:
        """A node sends ``data`` from its own address: the start of a packet's journey."""
        packet = self.new_packet()
        self._record(EventKind.SENT, sender, source, destination, data, packet)
        self._transmit(packet, self._locations[sender], source, destination, data)

    def _record(
        self,
        kind: EventKind,
        actor: str,
        source: Address,
        destination: Address,
        data: bytes,
        packet: int,
        *,
        reason: str = "",
        time: float | None = None,
        new_source: Address | None = None,
        new_destination: Address | None = None,
    ) -> None:
        self.trace.datagram(
            kind,
            self.now if time is None else time,
            actor,
            source,
            destination,
            data,
            reason=reason,
            packet=packet,
            new_src=new_source or "",
            new_dst=new_destination or "",
        )

    def _transmit(
        self, packet: int, realm: Realm, source: Address, destination: Address, data: bytes
    ) -> None:
        """Put the datagram on ``realm``'s link: the hook may see, drop, delay or rewrite it."""
        extra = 0.0
        if self.route_packet is not None:
            decision = self.route_packet(Hop(packet, realm.name, source, destination, data))
            if isinstance(decision, Drop):
                self._record(
                    EventKind.DROPPED, realm.name, source, destination, data, packet,
                    reason=decision.reason,
                )  # fmt: skip
                return
            if isinstance(decision, Delay):
                extra = decision.seconds
            elif isinstance(decision, Hop):
                source, destination, data = decision.source, decision.destination, decision.data
        delays = realm.link.delays(self.rng)
        if not delays:
            self._record(
                EventKind.DROPPED,
                realm.name,
                source,
                destination,
                data,
                packet,
                reason="lost on link",
                time=self.now + realm.link.latency / 2,
            )
            return
        for delay in delays:
            self.scheduler.after(
                delay + extra, lambda: self._arrive(packet, realm, source, destination, data)
            )

    def _arrive(
        self, packet: int, realm: Realm, source: Address, destination: Address, data: bytes
    ) -> None:
        """The datagram reached the far end of ``realm``'s link: deliver, translate or drop."""
        if destination[0] in realm.hosts:
            self._deliver_here(packet, realm, source, destination, data)
        elif destination[0] in realm.nats:
            self._enter_nat(packet, realm, source, destination, data)
        elif realm.gateway is None:
            self._drop(packet, "unknown destination", realm.name, source, destination, data)
        elif destination[0] == realm.gateway.outside_ip:
            self._hairpin(packet, realm, realm.gateway, source, destination, data)
        else:
            new_source = realm.gateway.outbound(source, destination, self.now)
            assert realm.parent is not None
            self._translated(
                packet, realm.gateway, realm.parent, source, destination, data, new_source
            )

    def _deliver_here(
        self, packet: int, realm: Realm, source: Address, destination: Address, data: bytes
    ) -> None:
        """To a host on this link: its socket on that port, or port unreachable."""
        sockets = realm.hosts[destination[0]]
        receiver = sockets.get(destination[1])
        if receiver is None:
            host = next(iter(sockets.values())).name if sockets else destination[0]
            self._drop(packet, "port unreachable", host, source, destination, data)
            return
        self._record(EventKind.DELIVERED, receiver.name, source, destination, data, packet)
        receiver.deliver(data, source)

    def _enter_nat(
        self, packet: int, realm: Realm, source: Address, destination: Address, data: bytes
    ) -> None:
        """To a NAT's public address from outside: its mapping and filter decide."""
        box, inside = realm.nats[destination[0]]
        result = box.admit(source, destination, self.now)
        if isinstance(result, str):
            self._drop(packet, result, box.name, source, destination, data)
            return
        self._translated(packet, box, inside, source, destination, data, None, result)

    def _translated(
        self,
        packet: int,
        box: NatBox,
        onward: Realm,
        source: Address,
        destination: Address,
        data: bytes,
        new_source: Address | None,
        new_destination: Address | None = None,
    ) -> None:
        """``box`` rewrote the datagram: the one place a translation is recorded."""
        self._record(
            EventKind.TRANSLATED,
            box.name,
            source,
            destination,
            data,
            packet,
            new_source=new_source,
            new_destination=new_destination,
        )
        self._transmit(packet, onward, new_source or source, new_destination or destination, data)

    def _hairpin(
        self,
        packet: int,
        realm: Realm,
        gateway: NatBox,
        source: Address,
        destination: Address,
        data: bytes,
    ) -> None:
        """A datagram from inside to the NAT's own public address (RFC 4787 section 6)."""
        if not gateway.config.hairpinning:
            self._drop(packet, "no hairpinning", gateway.name, source, destination, data)
            return
        new_source = gateway.outbound(source, destination, self.now)
        result = gateway.inbound(new_source, destination[1], self.now)
        if isinstance(result, str):
            self._drop(packet, result, gateway.name, source, destination, data)
            return
        self._translated(packet, gateway, realm, source, destination, data, new_source, result)

    def _drop(
        self,
        packet: int,
        reason: str,
        actor: str,
        source: Address,
        destination: Address,
        data: bytes,
    ) -> None:
        self._record(EventKind.DROPPED, actor, source, destination, data, packet, reason=reason)

    # -- reading -----------------------------------------------------------------------

    def nat(self, name: str) -> NatBox:
        for box in self.nat_boxes:
            if box.name == name:
                return box
        raise KeyError(name)

    def __repr__(self) -> str:
        return (
            f"<Network seed={self.seed} t={self.now:.3f}s {len(self.peers)} peers "
            f"{len(self.nat_boxes)} NATs {len(self.servers)} servers>"
        )
