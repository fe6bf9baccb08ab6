"""What a simulated node needs of the network it sits on, and nothing more.

:mod:`punchlab.sim.nodes` depends on this protocol, not on
:class:`punchlab.sim.network.Network`, so the network may build nodes without
the two modules importing each other.
"""

from __future__ import annotations

import random
from typing import Protocol

from punchlab.messages import Address
from punchlab.sim.engine import Scheduler
from punchlab.trace import Trace

__all__ = ["Fabric", "Receiver"]


class Receiver(Protocol):
    name: str

    def deliver(self, data: bytes, source: Address) -> None: ...


class Fabric(Protocol):
    """The simulated network as its nodes see it."""

    scheduler: Scheduler
    trace: Trace
    rng: random.Random
    seed: int

    @property
    def now(self) -> float: ...

    def send(self, sender: str, source: Address, destination: Address, data: bytes) -> None:
        """Put a datagram on the wire from ``sender``'s own address."""

    def attach(self, name: str, address: Address, receiver: Receiver) -> None:
        """Bind one more address of node ``name`` (in that node's network)."""

    def detach(self, name: str, address: Address) -> None:
        """Unbind an address bound with :meth:`attach`: datagrams to it find nobody."""

    def new_packet(self) -> int:
        """A fresh number linking the trace events of one datagram or HTTP message."""

    def base_latency(self, a: str, b: str) -> float:
        """One-way latency between two nodes, without jitter (simulated HTTP uses it)."""

    def http_source_ip(self, client: str, client_ip: str, server: str) -> str:
        """The address ``server`` sees a TCP connection from ``client`` come from."""
