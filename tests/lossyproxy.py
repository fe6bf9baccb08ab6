"""A lossy UDP proxy on loopback that the peers reach the server, and each other, through.

It plays a full-cone NAT in front of every peer, in user space: a peer is
told (by a small HTTP front, :class:`HttpFront`) that the server's UDP port
is the proxy's front socket; the proxy forwards each peer's datagrams to the
real server from a socket of that peer's own (its "public" address, which the
server records and hands out in introductions), and forwards what arrives on
that socket to the peer. A datagram from one peer to another's public address
reaches the other from the sender's public address, as through two NATs.
Datagrams between two peers are lost, duplicated or held back by a seeded
generator; datagrams to and from the server pass untouched (the experiment is
the chat, not the registration).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

import aiohttp
from aiohttp import web

Address = tuple[str, int]
LOOPBACK = "127.0.0.1"


class _Socket(asyncio.DatagramProtocol):
    """One proxy socket: hands what it receives to ``on_datagram(data, source)``."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, (addr[0], addr[1]))

    @property
    def address(self) -> Address:
        assert self.transport is not None
        return cast(Address, self.transport.get_extra_info("sockname")[:2])


async def _bind(on_datagram: Callable[[bytes, Address], None]) -> _Socket:
    loop = asyncio.get_running_loop()
    _, sock = await loop.create_datagram_endpoint(
        lambda: _Socket(on_datagram), local_addr=(LOOPBACK, 0)
    )
    return sock


class LossyProxy:
    """``await LossyProxy.start(server_udp, seed=...)``; peers use :attr:`front` as the server."""

    def __init__(self, server: Address, rng: random.Random, loss: float, dup: float, late: float):
        self.server, self.rng = server, rng
        self.loss, self.duplicate, self.reorder = loss, dup, late
        self.front: _Socket | None = None
        #: Each peer's real address -> its public socket, and the way back.
        self._public: dict[Address, _Socket] = {}
        self._inside: dict[Address, Address] = {}
        self.lost = self.forwarded = 0

    @classmethod
    async def start(
        cls, server: Address, *, seed: int, loss: float, duplicate: float, reorder: float
    ) -> LossyProxy:
        proxy = cls(server, random.Random(seed), loss, duplicate, reorder)
        proxy.front = await _bind(proxy._from_a_peer)
        return proxy

    def _from_a_peer(self, data: bytes, source: Address) -> None:
        """On the front: a peer's datagram for the server, sent on from its public socket."""
        public = self._public.get(source)
        if public is None:
            asyncio.get_running_loop().create_task(self._open(source, data))
            return
        self._send(public, data, self.server, lossy=False)

    async def _open(self, inside: Address, first: bytes) -> None:
        if inside in self._public:  # two datagrams raced to open it
            self._send(self._public[inside], first, self.server, lossy=False)
            return
        public = await _bind(lambda data, source: self._to_a_peer(inside, data, source))
        self._public[inside] = public
        self._inside[public.address] = inside
        self._send(public, first, self.server, lossy=False)

    def _to_a_peer(self, inside: Address, data: bytes, source: Address) -> None:
        """On a peer's public socket: from the server (sent on from the front), or from
        another peer (sent on from that peer's public socket, lossy); else dropped."""
        assert self.front is not None
        if source == self.server:
            self._send(self.front, data, inside, lossy=False)
            return
        sender = self._public.get(source)
        if sender is not None:
            self._send(sender, data, inside, lossy=True)

    def _send(self, sock: _Socket, data: bytes, destination: Address, *, lossy: bool) -> None:
        assert sock.transport is not None
        if not lossy:
            sock.transport.sendto(data, destination)
            return
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.forwarded += 1
            if self.rng.random() < self.reorder:  # held back: later ones overtake it
                asyncio.get_running_loop().call_later(0.01, self._late, sock, data, destination)
            else:
                sock.transport.sendto(data, destination)

    @staticmethod
    def _late(sock: _Socket, data: bytes, destination: Address) -> None:
        if sock.transport is not None and not sock.transport.is_closing():
            sock.transport.sendto(data, destination)

    def close(self) -> None:
        for sock in [self.front, *self._public.values()]:
            if sock is not None and sock.transport is not None:
                sock.transport.close()


class HttpFront:
    """The server's HTTP, with one change: the UDP port it names is the proxy's front."""

    def __init__(self, server_url: str, udp_port: int) -> None:
        self.server_url, self.udp_port = server_url, udp_port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> HttpFront:
        app = web.Application()
        app.router.add_get("/get-udp-port", self._port)
        app.router.add_post("/start-communication", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{LOOPBACK}:{port}"
        return self

    async def _port(self, request: web.Request) -> web.Response:
        return web.json_response({"port": self.udp_port})

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.server_url}/start-communication", data=body) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
