"""Shared fixtures: a rendezvous server on loopback and peers that always close."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import settings

from punchlab.aio import Peer, RendezvousServer
from punchlab.server import Introduction, RendezvousCore
from punchlab.trace import Trace

# Every random generator seeded: hypothesis too, so a run is the run before it
# (no examples that differ by machine or by which test modules were collected),
# and no deadline for a busy CI machine to miss.
settings.register_profile("punchlab", derandomize=True, deadline=None)
settings.load_profile("punchlab")


@pytest.fixture
async def server() -> AsyncIterator[RendezvousServer]:
    async with RendezvousServer("127.0.0.1", 0, 0) as running:
        yield running


PeerFactory = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def make_peer(server: RendezvousServer) -> AsyncIterator[PeerFactory]:
    """Create loopback peers (registered unless asked not to); all closed at the end."""
    peers: list[Peer] = []

    async def factory(name: str = "peer", *, register: bool = True, **kwargs: Any) -> Peer:
        kwargs.setdefault("trace", Trace())
        peer = Peer(server.url, host="127.0.0.1", name=name, **kwargs)
        peers.append(peer)
        if register:
            await peer.register(timeout=5)
        return peer

    yield factory
    for peer in peers:
        await peer.close()


def ipv6_loopback_works() -> bool:
    """Whether this machine can bind ::1 (a test that needs it skips only where it cannot)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def introduce(core: RendezvousCore, initiator: Any, peer: Any, now: float) -> Introduction:
    """start-communication as the real initiator asks: with its secret, from its address."""
    registration = core.lookup(initiator) if isinstance(initiator, str) else None
    return core.start_communication(
        initiator,
        peer,
        now,
        secret=None if registration is None else registration.secret,
        source_ip=None if registration is None else registration.address[0],
    )
