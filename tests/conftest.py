"""Shared fixtures: a rendezvous server on loopback and peers that always close."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from punchlab.aio import Peer, RendezvousServer
from punchlab.trace import Trace


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
