"""The asyncio peer's extra sockets (the hard side of a birthday punch), on loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from punchlab.aio.sockets import ExtraSockets
from punchlab.messages import Address
from punchlab.trace import EventKind, Trace


class FakeCore:
    """What ExtraSockets needs of a PeerCore: which sockets, what to send, where input goes."""

    def __init__(self) -> None:
        self.sockets: frozenset[int] = frozenset()
        self.outbox: list[tuple[bytes, Address, int]] = []
        self.received: list[tuple[bytes, Address, int]] = []

    def socket_datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, int]]:
        out, self.outbox = self.outbox, []
        return out

    def receive_datagram(self, data: bytes, address: Address, now: float, via: int = 0) -> None:
        self.received.append((data, address, via))


async def test_sockets_open_send_receive_and_close_as_the_core_says() -> None:
    core = FakeCore()
    pumped = asyncio.Event()
    trace = Trace()
    extra = ExtraSockets(core, "127.0.0.1", actor="B", trace=trace, pump=lambda _: pumped.set())  # type: ignore[arg-type]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as partner:
        partner.bind(("127.0.0.1", 0))
        partner.settimeout(5)
        core.sockets = frozenset({1, 2, 3})
        core.outbox = [(b"hello from %d" % via, partner.getsockname(), via) for via in (1, 2, 3)]
        extra.sync()
        assert len(extra) == 3
        got: dict[bytes, Any] = {}
        for _ in range(3):
            data, source = partner.recvfrom(100)
            got[data] = source
        assert set(got) == {b"hello from 1", b"hello from 2", b"hello from 3"}
        assert len({source[1] for source in got.values()}) == 3  # three sockets, three ports
        partner.sendto(b"hit", got[b"hello from 2"])
        async with asyncio.timeout(5):
            await pumped.wait()
        assert core.received == [(b"hit", partner.getsockname(), 2)]
        core.sockets = frozenset({2})  # the one that was hit stays, the others close
        extra.sync()
        assert len(extra) == 1
    extra.close()
    assert len(extra) == 0
    kinds = [event.kind for event in trace]
    assert kinds.count(EventKind.SENT) == 3 and kinds.count(EventKind.DELIVERED) == 1
