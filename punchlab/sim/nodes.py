"""The protocol cores as nodes of the simulated network.

These are the simulator's driver: the same :class:`RendezvousCore` and
:class:`PeerCore` the asyncio driver runs, fed with virtual time. HTTP between
a peer and the server is a reliable exchange that takes the path's latency
each way (it runs over TCP in real life, which hides loss behind retries).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from punchlab.driving import CoreTimer, SansIOCore, pump
from punchlab.messages import Address, format_address, rfc5780_port
from punchlab.peer import (
    Connected,
    Failed,
    HttpRequest,
    IntroductionRefused,
    PeerConfig,
    PeerCore,
    PeerEvent,
    PeerState,
    Registered,
    TextReceived,
)
from punchlab.server import DEFAULT_REGISTRATION_TTL, RendezvousCore, answer_start_communication
from punchlab.sim.fabric import Fabric
from punchlab.stun.discovery import DiscoveryResult
from punchlab.trace import EventKind

if TYPE_CHECKING:
    from punchlab.sim.stun import SimNatCheck

__all__ = ["SimNode", "SimPeer", "SimServer"]


class SimNode:
    """A core bound to one simulated address, with one virtual timer."""

    def __init__(self, network: Fabric, name: str, address: Address, core: SansIOCore) -> None:
        self.network = network
        self.name = name
        self.address = address
        self.core = core
        self.events: list[Any] = []
        self.listeners: list[Callable[[Any], None]] = []
        self.timer = CoreTimer(
            core,
            clock=lambda: self.network.now,
            schedule=self.network.scheduler.at,
            fire=self._on_timer,
        )

    def deliver(self, data: bytes, source: Address) -> None:
        self.core.receive_datagram(data, source, self.network.now)
        self.pump(data)

    def pump(self, cause: bytes | None = None) -> None:
        now = self.network.now
        pump(
            self.core,
            now,
            send=self._send,
            on_event=self._dispatch,
            trace=self.network.trace,
            trace_time=now,
            actor=self.name,
            local_address=self.address,
            cause=cause,
        )
        self._arm_timer()

    def _send(self, data: bytes, destination: Address) -> None:
        self.network.send(self.name, self.address, destination, data)

    def _dispatch(self, event: Any, cause: bytes | None) -> None:
        self.events.append(event)
        self.on_event(event)
        for listener in self.listeners:
            listener(event)

    def on_event(self, event: Any) -> None:
        """Subclasses react to their core's events here."""

    def add_listener(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(event)`` for every event of this node's core (widgets use this)."""
        self.listeners.append(callback)

    def _arm_timer(self) -> None:
        self.timer.arm()

    def _on_timer(self, now: float) -> None:
        self.core.handle_timer(now)
        self.pump()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {format_address(self.address)}>"


class SimServer(SimNode):
    """The rendezvous server on the simulated internet."""

    core: RendezvousCore

    def __init__(
        self,
        network: Fabric,
        name: str,
        address: Address,
        *,
        registration_ttl: float = DEFAULT_REGISTRATION_TTL,
    ) -> None:
        # Identifiers and tokens come from the network's seed: a replay gives the same ones.
        rng = random.Random(network.rng.getrandbits(64))
        super().__init__(
            network, name, address, RendezvousCore(registration_ttl=registration_ttl, rng=rng)
        )
        self.core.bind(address)

    @property
    def registrations(self) -> list[Any]:
        return self.core.registrations


class _ExtraSocket:
    """One more socket of a peer (the hard side of a birthday punch opens many)."""

    def __init__(self, peer: SimPeer, via: int) -> None:
        self.peer, self.via, self.name = peer, via, peer.name

    def deliver(self, data: bytes, source: Address) -> None:
        self.peer.deliver_on(self.via, data, source)


class SimPeer(SimNode):
    """A peer in the simulation: ``register()``, ``connect(peer_id)``, ``send_text(...)``.

    Calls only schedule work; run the network (``net.run_for(...)``) to let
    it happen. What happened is in :attr:`state`, :attr:`texts`,
    :attr:`events` and the network's trace. With ``discover``, the peer runs
    RFC 5780's mapping tests once registered (when the server announces an
    RFC 5780 server), as real peers do: the traversal ladder needs the result.
    """

    core: PeerCore

    #: The peer's extra sockets are ports from here up, on its own IP.
    EXTRA_PORT_BASE = 20000
    #: Where the discovery's sockets are bound.
    DISCOVERY_PORT = 19000

    def __init__(
        self,
        network: Fabric,
        name: str,
        address: Address,
        server: SimServer,
        config: PeerConfig | None = None,
        *,
        discover: bool = False,
    ) -> None:
        # Probe ports come from the seed and the name, not the network's generator
        # (drawing from it would change every other random choice of a replay).
        rng = random.Random(f"{network.seed}:{name}")
        # Its own address is its private endpoint (punchlab.candidates), offered to a
        # partner behind the same NAT.
        core = PeerCore(server.address, config, rng=rng, local_addresses=(address,))
        super().__init__(network, name, address, core)
        self.server = server
        self.discover = discover
        self.discovery: SimNatCheck | None = None
        self._extra: dict[int, Address] = {}
        self.texts: list[str] = []
        self.errors: list[str] = []
        self.refusals: list[IntroductionRefused] = []
        self.connected_at: float | None = None
        self.registered_at: float | None = None

    @property
    def state(self) -> PeerState:
        return self.core.state

    @property
    def id(self) -> str | None:
        return self.core.peer_id

    @property
    def peer_address(self) -> Address | None:
        return self.core.peer_address

    @property
    def connected(self) -> bool:
        return self.core.state is PeerState.CONNECTED

    def register(self) -> None:
        self.core.register(self.network.now)
        self.pump()

    def connect(self, peer_id: str) -> None:
        """Ask the server (over simulated HTTP) to introduce us, then punch.

        The same flow as the asyncio peer: the core names the request, the
        server answers it with the same handler as the real one, and the
        core is fed the answer, one latency later each way.
        """
        request = self.core.ask_introduction(peer_id)
        latency = self.network.base_latency(self.name, self.server.name)
        label = f"{request.method} {request.path} {peer_id[:8]}"
        asked = self.network.new_packet()
        self._http(EventKind.SENT, self.address, self.server.address, label, self.name, asked)
        self.network.scheduler.after(latency, lambda: self._at_server(request, label, asked))

    def _at_server(self, request: HttpRequest, label: str, asked: int) -> None:
        server = self.server
        self._http(EventKind.DELIVERED, self.address, server.address, label, server.name, asked)
        source_ip = self.network.http_source_ip(self.name, self.address[0], server.name)
        body = json.dumps(request.body).encode()
        status, answer = answer_start_communication(server.core, body, source_ip, self.network.now)
        server.pump()
        shown = answer.get("public", answer.get("error", ""))
        text = f"{status} {shown}"
        answered = self.network.new_packet()
        self._http(EventKind.SENT, server.address, self.address, text, server.name, answered)

        def at_peer() -> None:
            self._http(EventKind.DELIVERED, server.address, self.address, text, self.name, answered)
            self.core.receive_http_answer(request, status, answer, self.network.now)
            self.pump()

        latency = self.network.base_latency(self.name, server.name)
        self.network.scheduler.after(latency, at_peer)

    def send_text(self, text: str) -> None:
        self.core.send_text(text, self.network.now)
        self.pump()

    def deliver_on(self, via: int, data: bytes, source: Address) -> None:
        """A datagram for extra socket ``via``."""
        self.core.receive_datagram(data, source, self.network.now, via)
        self.pump(data)

    def pump(self, cause: bytes | None = None) -> None:
        super().pump(cause)
        wanted = self.core.sockets
        for via in set(self._extra) - wanted:
            self.network.detach(self.name, self._extra.pop(via))
        for via in sorted(wanted - set(self._extra)):
            address = (self.address[0], self.EXTRA_PORT_BASE + via)
            self.network.attach(self.name, address, _ExtraSocket(self, via))
            self._extra[via] = address
        for data, destination, via in self.core.socket_datagrams_to_send(self.network.now):
            if via in self._extra:
                self.network.send(self.name, self._extra[via], destination, data)

    def _start_discovery(self) -> None:
        """RFC 5780's mapping tests against the server's RFC 5780 server, if it has one."""
        port = rfc5780_port(self.core.server_features)
        if not self.discover or port is None or self.discovery is not None:
            return
        from punchlab.sim.stun import SimNatCheck  # the STUN side imports the network

        check = SimNatCheck(
            self.network,  # type: ignore[arg-type]
            self.name,
            self.address[0],
            (self.server.address[0], port),
            first_port=self.DISCOVERY_PORT,
            on_done=self._learned,
            filtering=False,
            hairpinning=False,
        )
        check.bind(lambda address, receiver: self.network.attach(self.name, address, receiver))
        self.discovery = check
        check.start()

    def _learned(self, result: DiscoveryResult) -> None:
        self.core.learn_nat(result, self.network.now)
        self.pump()

    def close(self) -> None:
        self.core.close()
        self.pump()

    def on_event(self, event: PeerEvent) -> None:
        if isinstance(event, TextReceived):
            self.texts.append(event.text)
        elif isinstance(event, Connected):
            self.connected_at = self.network.now
        elif isinstance(event, Registered):
            self.registered_at = self.network.now
            self._start_discovery()
        elif isinstance(event, IntroductionRefused):
            self.refusals.append(event)
            self.errors.append(f"server refused: {event.status} {event.reason}")
        elif isinstance(event, Failed):
            self.errors.append(event.reason)

    def _http(
        self,
        kind: EventKind,
        source: Address,
        destination: Address,
        text: str,
        actor: str,
        packet: int,
    ) -> None:
        """HTTP is not UDP, but the ladder diagram should show the request and its answer."""
        self.network.trace.record_http(
            kind, self.network.now, actor, source, destination, text, packet=packet
        )
