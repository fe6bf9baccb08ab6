"""A stand-in for the original Go chat client, byte for byte on the wire.

The Go programs cannot be built here (their module wants a newer Go than
Debian ships), so interop tests use this: it sends exactly what the Go client
sends (DESIGN.md section 1): ``{"type":...,"payload":...}`` and nothing else,
no ``features``, no ``token``, no ``secret``; its first HELLO goes out after
``hello_delay`` (3 s in the original) and then every ``hello_delay``; it
beats the server every 3 s until it has a peer, then only the peer; it sends
HELLO and TEXT to the address the server gave, always.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import aiohttp

Address = tuple[str, int]

#: The Go client's read buffer.
GO_READ_BUFFER = 1024


def go_datagram(kind: str, payload: str = "...") -> bytes:
    """What Go's ``json.Marshal`` writes for the client's message struct."""
    return json.dumps({"type": kind, "payload": payload}, separators=(",", ":")).encode()


class GoPeer(asyncio.DatagramProtocol):
    """``await GoPeer.start(server_url)``; then ``connect(id)`` or wait; ``texts`` collects."""

    def __init__(self, hello_delay: float, beat_interval: float) -> None:
        self.hello_delay = hello_delay
        self.beat_interval = beat_interval
        self.transport: asyncio.DatagramTransport | None = None
        self.server: Address | None = None
        self.peer: Address | None = None
        self.id: str | None = None
        self.connected = asyncio.Event()
        self.registered = asyncio.Event()
        self.texts: asyncio.Queue[str] = asyncio.Queue()
        #: Every datagram received, as it came (interop tests check what we sent a Go peer).
        self.datagrams: list[bytes] = []
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(
        cls,
        server_url: str,
        *,
        host: str = "127.0.0.1",
        hello_delay: float = 3.0,
        beat_interval: float = 3.0,
    ) -> GoPeer:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server_url}/get-udp-port") as response,
        ):
            port = int((await response.json())["port"])
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(
            lambda: cls(hello_delay, beat_interval), local_addr=(host, 0)
        )
        peer.server_url = server_url
        peer.server = ("127.0.0.1", port)
        peer.send(go_datagram("REGISTRATION", ""), peer.server)
        async with asyncio.timeout(5):
            await peer.registered.wait()
        peer._tasks.append(asyncio.create_task(peer._beat_server()))
        return peer

    server_url = ""

    @property
    def address(self) -> Address:
        assert self.transport is not None
        return cast(Address, self.transport.get_extra_info("sockname")[:2])

    def send(self, data: bytes, address: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, address)

    async def connect(self, peer_id: str) -> None:
        """The Go client's initiator: POST, then the HELLO ticker to the answer's address."""
        body = {"peerInitiator": self.id, "peer": peer_id}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.server_url}/start-communication", json=body) as response,
        ):
            answer = await response.json(content_type=None)
        host, _, port = str(answer["public"]).rpartition(":")
        self._punch((host.strip("[]"), int(port)))

    def send_text(self, text: str) -> None:
        assert self.peer is not None
        self.send(go_datagram("TEXT", text + "\n"), self.peer)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.DatagramProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)
        if len(data) > GO_READ_BUFFER:
            return  # Go reads 1024 bytes: the rest is cut off and the JSON no longer parses
        try:
            message = json.loads(data)
            kind, payload = message["type"], message["payload"]
        except (ValueError, KeyError, TypeError):
            return
        if kind == "REGISTRATION" and addr[:2] == self.server:
            self.id = payload
            self.registered.set()
        elif kind == "INITIATE_CHAT" and addr[:2] == self.server:
            host, _, port = payload.rpartition(":")
            self._punch((host.strip("[]"), int(port)))
        elif kind == "HELLO":
            self.send(go_datagram("SUCCESS"), addr[:2])
        elif kind == "SUCCESS" and not self.connected.is_set():
            self.connected.set()
            self._tasks.append(asyncio.create_task(self._beat_peer()))
        elif kind == "TEXT":
            self.texts.put_nowait(payload)

    # -- timers --------------------------------------------------------------------------

    def _punch(self, peer: Address) -> None:
        self.peer = peer
        self._tasks.append(asyncio.create_task(self._hello_ticker()))

    async def _hello_ticker(self) -> None:
        while not self.connected.is_set():
            await asyncio.sleep(self.hello_delay)
            assert self.peer is not None
            self.send(go_datagram("HELLO"), self.peer)

    async def _beat_server(self) -> None:
        while self.peer is None:  # the Go client stops beating the server once it has a peer
            await asyncio.sleep(self.beat_interval)
            if self.peer is None and self.server is not None:
                self.send(go_datagram("HEART-BEAT"), self.server)

    async def _beat_peer(self) -> None:
        while True:
            await asyncio.sleep(self.beat_interval)
            assert self.peer is not None
            self.send(go_datagram("HEART-BEAT"), self.peer)
