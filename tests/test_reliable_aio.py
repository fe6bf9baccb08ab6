"""Acknowledged chat on real sockets: loopback peers and server, a seeded lossy proxy
between them (tests/lossyproxy.py), and a Go peer that must see plain TEXT."""

from __future__ import annotations

import asyncio
import json

import pytest

from punchlab.aio import Peer, RendezvousServer
from punchlab.peer import PeerConfig, TextDelivered, TextSent
from tests.gopeer import GoPeer
from tests.lossyproxy import HttpFront, LossyProxy


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_line_arrives_once_in_order_through_a_lossy_proxy(
    server: RendezvousServer, seed: int
) -> None:
    """Both peers reach the server, and each other, only through the proxy, which loses
    30%, duplicates 10% and holds back 10% of what the peers send each other."""
    proxy = await LossyProxy.start(
        server.udp_address, seed=seed, loss=0.3, duplicate=0.1, reorder=0.1
    )
    assert proxy.front is not None
    front = await HttpFront(server.url, proxy.front.address[1]).start()
    delivered: list[int] = []
    try:
        async with (
            Peer(front.url, host="127.0.0.1", name="A") as a,
            Peer(front.url, host="127.0.0.1", name="B") as b,
        ):
            await a.register(timeout=5)
            b_id = await b.register(timeout=5)
            await a.connect(b_id, timeout=10)
            await b.wait_connected(timeout=10)
            assert a.core is not None and a.core.reliable
            assert a.peer_address in {s.address for s in proxy._public.values()}  # via proxy
            a.add_listener(
                lambda e: delivered.append(e.line) if isinstance(e, TextDelivered) else None
            )
            lines = [f"line {n}" for n in range(1, 31)]
            for line in lines:
                await a.send_text(line)
            got = [await b.receive_text(timeout=20) for _ in lines]
            await a.wait_acknowledged(timeout=20)
            assert got == lines
            assert sorted(delivered) == list(range(1, 31))
            with pytest.raises(TimeoutError):
                await b.receive_text(timeout=0.3)  # and no line came twice
    finally:
        await front.close()
        proxy.close()
    assert proxy.lost > 0  # the proxy really lost datagrams between the peers


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
