"""STUN on the simulated internet: an RFC 5780 server and a host that runs the tests.

The same :class:`~punchlab.stun.responder.StunResponder` and
:class:`~punchlab.stun.discovery.NatDiscovery` the asyncio driver runs, on
virtual time: a student can watch every test's packets cross a simulated NAT
and compare the classification with the NAT's configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from punchlab.driving import CoreTimer, SansIOCore
from punchlab.messages import Address
from punchlab.stun.discovery import DiscoveryResult, NatDiscovery
from punchlab.stun.responder import Reply, StunEndpoints, StunResponder

if TYPE_CHECKING:
    from punchlab.sim.nat import NatBox
    from punchlab.sim.network import Network

__all__ = ["SimNatCheck", "SimStunServer", "add_natcheck", "add_stun_server"]

STUN_PORT = 3478


@dataclass
class _Socket:
    """One bound address of a node: what the network delivers to, by name."""

    name: str
    on_datagram: Callable[[bytes, Address], None]

    def deliver(self, data: bytes, source: Address) -> None:
        self.on_datagram(data, source)


class SimStunServer:
    """An RFC 5780 server with two public IP addresses and two ports each."""

    def __init__(self, network: Network, name: str, responder: StunResponder) -> None:
        self.network, self.name, self.responder = network, name, responder
        self.refused: list[str] = []

    def _on_datagram(self, arrived_on: Address) -> Callable[[bytes, Address], None]:
        def receive(data: bytes, source: Address) -> None:
            answer = self.responder.answer(data, source, arrived_on, self.network.now)
            if isinstance(answer, Reply):
                self.network.send(self.name, answer.via, answer.destination, answer.data)
            else:
                self.refused.append(answer.reason)

        return receive


def add_stun_server(
    network: Network,
    name: str = "STUN server",
    *,
    port: int = STUN_PORT,
    honours_change_request: bool = True,
    primary_ip: str | None = None,
) -> SimStunServer:
    """A STUN server on two public addresses (fresh ones, or ``primary_ip`` and a fresh
    one), listening on ``port`` and ``port + 1``."""
    primary_ip = primary_ip or network._next_address(network.internet)
    alternate_ip = network._next_address(network.internet)
    endpoints = StunEndpoints((primary_ip, port), (alternate_ip, port + 1))
    responder = StunResponder(endpoints, honours_change_request=honours_change_request)
    server = SimStunServer(network, name, responder)
    for address in endpoints.all():
        network._attach(network.internet, address, _Socket(name, server._on_datagram(address)))
    return server


class SimNatCheck:
    """A host that runs RFC 5780's tests against ``server`` and keeps the result."""

    def __init__(
        self,
        network: Network,
        name: str,
        ip: str,
        server: Address,
        *,
        first_port: int = 6000,
        on_done: Callable[[DiscoveryResult], None] | None = None,
        **options: Any,
    ) -> None:
        """``on_done(result)`` is called once the tests have finished."""
        self.network, self.name, self.on_done = network, name, on_done
        self.sockets = [(ip, first_port + index) for index in range(3)]
        self.core = NatDiscovery(
            server,
            local=lambda via: self.sockets[via],
            random_bytes=network.rng.randbytes,
            **options,
        )
        self.timer = CoreTimer(
            cast(SansIOCore, self.core),
            clock=lambda: self.network.now,
            schedule=self.network.scheduler.at,
            fire=self._on_timer,
        )

    @property
    def result(self) -> DiscoveryResult:
        return self.core.result

    @property
    def done(self) -> bool:
        return self.core.done

    def start(self) -> None:
        """Begin the tests (they run as the network runs)."""
        self.network.scheduler.at(self.network.now, self._start)

    def _start(self) -> None:
        self.core.start(self.network.now)
        self._flush()

    def bind(self, attach: Callable[[Address, _Socket], None]) -> None:
        """Bind the tests' sockets, each with ``attach(address, receiver)``."""
        for via, address in enumerate(self.sockets):
            attach(address, _Socket(self.name, self._on_datagram(via)))

    def _on_datagram(self, via: int) -> Callable[[bytes, Address], None]:
        def receive(data: bytes, source: Address) -> None:
            self.core.receive_datagram(data, source, via, self.network.now)
            self._flush()

        return receive

    def _on_timer(self, now: float) -> None:
        self.core.handle_timer(now)
        self._flush()

    def _flush(self) -> None:
        for data, destination, via in self.core.datagrams_to_send(self.network.now):
            self.network.send(self.name, self.sockets[via], destination, data)
        self.timer.arm()
        if self.core.done and self.on_done is not None:
            on_done, self.on_done = self.on_done, None
            on_done(self.core.result)


def add_natcheck(
    network: Network,
    server: SimStunServer,
    name: str = "Alice",
    *,
    behind: NatBox | None = None,
    **options: Any,
) -> SimNatCheck:
    """A host behind ``behind`` (or on the internet) that will test its NAT against ``server``."""
    realm = network._realm_of(behind)
    ip = network._next_address(realm)
    check = SimNatCheck(network, name, ip, server.responder.endpoints.primary, **options)
    check.bind(lambda address, receiver: network._attach(realm, address, receiver))
    return check
