"""A stand-in rendezvous server that answers as a test tells it to.

It plays a Go server (an empty-body ``400`` for a request it dislikes, a
REGISTRATION answer with nothing but the identifier) or a hostile one (an
identifier or an error text full of escape sequences), which the real
:class:`punchlab.aio.RendezvousServer` never is.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import cast

from aiohttp import web

#: What the Go server answers a REGISTRATION with (an identifier of its choosing).
GO_ID = "3f2b8c1e-5d4a-4f6b-9e7c-1a2b3c4d5e6f"


class _Registrar(asyncio.DatagramProtocol):
    """Answers every REGISTRATION with ``answer`` (or stays silent if it is ``None``)."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("type") != "REGISTRATION":
            return  # HEART-BEATs and the rest: the Go server answers nothing either
        if self.answer is not None and self.transport is not None:
            reply = {"type": "REGISTRATION", "payload": self.answer}
            self.transport.sendto(json.dumps(reply).encode(), addr)


@dataclass
class StandInServer:
    """``/get-udp-port``, ``/start-communication`` and a UDP registrar on 127.0.0.1.

    ``registration_answer`` is the identifier handed out (``None``: never
    answer); ``start_status`` and ``start_body`` are the answer to every
    ``POST /start-communication`` (by default the Go server's empty ``400``).
    """

    registration_answer: str | None = GO_ID
    start_status: int = 400
    start_body: bytes = b""

    async def __aenter__(self) -> StandInServer:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Registrar(self.registration_answer), local_addr=("127.0.0.1", 0)
        )
        app = web.Application()
        app.router.add_get("/get-udp-port", self._get_udp_port)
        app.router.add_post("/start-communication", self._start_communication)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()
        self._udp.close()

    async def _get_udp_port(self, request: web.Request) -> web.Response:
        return web.json_response({"port": self._udp.get_extra_info("sockname")[1]})

    async def _start_communication(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=self.start_status, body=self.start_body)
