"""Acknowledged chat on real sockets: loopback peers and server, a seeded lossy link, a Go peer.

The lossy link sits on each peer's UDP transport: every datagram to the
partner (not to the server) is lost, duplicated or held back by a seeded
generator before it reaches the kernel, so real datagrams cross loopback with
the losses a bad Wi-Fi would give them.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from punchlab.aio import Peer, RendezvousServer
from punchlab.messages import Address
from punchlab.peer import PeerConfig, TextDelivered, TextSent
from tests.conftest import PeerFactory
from tests.gopeer import GoPeer


class LossyLink:
    """Stands in for a peer runner's transport: loses, duplicates and reorders what the
    peer sends to anyone but ``spare`` (the server), from a seeded generator."""

    def __init__(
        self, inner: Any, spare: Address, seed: int, loss: float, duplicate: float, reorder: float
    ) -> None:
        self.inner, self.spare, self.rng = inner, spare, random.Random(seed)
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.lost = 0

    def sendto(self, data: bytes, address: Address) -> None:
        if address == self.spare:
            self.inner.sendto(data, address)
            return
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            if self.rng.random() < self.reorder:  # held back: later datagrams overtake it
                asyncio.get_running_loop().call_later(0.01, self._late, data, address)
            else:
                self.inner.sendto(data, address)

    def _late(self, data: bytes, address: Address) -> None:
        if not self.inner.is_closing():
            self.inner.sendto(data, address)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def make_lossy(peer: Peer, seed: int) -> LossyLink:
    runner = peer._runner
    assert runner is not None and peer.core is not None
    link = LossyLink(runner.transport, peer.core.server_address, seed, 0.3, 0.1, 0.1)
    runner.transport = link  # type: ignore[assignment]
    return link


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_line_arrives_once_in_order_over_a_lossy_loopback(
    make_peer: PeerFactory, seed: int
) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    assert b.id is not None
    await a.connect(b.id, timeout=5)
    await b.wait_connected(timeout=5)
    assert a.core is not None and a.core.reliable
    links = [make_lossy(a, seed), make_lossy(b, seed + 100)]
    delivered: list[int] = []
    a.add_listener(lambda e: delivered.append(e.line) if isinstance(e, TextDelivered) else None)
    lines = [f"line {n}" for n in range(1, 31)]
    for line in lines:
        await a.send_text(line)
    got = [await b.receive_text(timeout=20) for _ in lines]
    await a.wait_acknowledged(timeout=20)
    assert got == lines
    assert sorted(delivered) == list(range(1, 31))
    assert sum(link.lost for link in links) > 0  # the link really lost datagrams
    with pytest.raises(TimeoutError):
        await b.receive_text(timeout=0.3)  # and no line came twice


async def test_a_go_peer_gets_plain_text_and_no_acks(server: RendezvousServer) -> None:
    go = await GoPeer.start(server.url, hello_delay=0.05)
    sent: list[TextSent] = []
    async with Peer(server.url, host="127.0.0.1", name="A", config=PeerConfig()) as a:
        a.add_listener(lambda e: sent.append(e) if isinstance(e, TextSent) else None)
        try:
            await a.register(timeout=5)
            assert go.id is not None
            await a.connect(go.id, timeout=5)
            async with asyncio.timeout(5):
                await go.connected.wait()
            assert a.core is not None and not a.core.reliable
            await a.send_text("to Go")
            async with asyncio.timeout(5):
                assert await go.texts.get() == "to Go\n"
            go.send_text("from Go")
            assert await a.receive_text(timeout=5) == "from Go"
            await a.wait_acknowledged(timeout=1)  # nothing to wait for
        finally:
            go.close()
    # As before this feature: one TEXT, no seq, no TEXT-ACK (the token key, which Go
    # ignores, was there before too).
    texts = [json.loads(d) for d in go.datagrams if b'"TEXT' in d]
    assert [{k: v for k, v in t.items() if k != "token"} for t in texts] == [
        {"type": "TEXT", "payload": "to Go\n"}
    ]
    assert sent == [TextSent(1, "to Go", 1, acknowledged=False)]
