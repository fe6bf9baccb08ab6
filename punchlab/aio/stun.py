"""STUN on real UDP sockets: an RFC 5780 server, and the discovery client.

:class:`StunServer` binds one socket per local address (one, or the four
combinations of two IPs and two ports) and lets the sans-IO
:class:`~punchlab.stun.responder.StunResponder` say which socket answers.
:func:`discover` runs :class:`~punchlab.stun.discovery.NatDiscovery` from
fresh local sockets and returns its result.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from punchlab.addresses import route_ip
from punchlab.aio.log_throttle import LogThrottle
from punchlab.aio.runner import normalise
from punchlab.messages import Address, format_address
from punchlab.stun.discovery import DiscoveryResult, NatDiscovery
from punchlab.stun.responder import Reply, StunEndpoints, StunResponder
from punchlab.trace import EventKind, Trace

__all__ = ["DEFAULT_STUN_PORT", "StunServer", "discover"]

log = logging.getLogger(__name__)

#: The port RFC 8489 section 18.3 registers for STUN over UDP.
DEFAULT_STUN_PORT = 3478


Receive = Callable[[bytes, Address], None]


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Receive) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, normalise(addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("STUN socket error: %s", exc)


async def _bind(address: Address, receiver: Callable[[Address], Receive]) -> _Socket:
    """A UDP socket bound to ``address``; ``receiver(bound address)`` gets its datagrams.

    The receiver is chosen once the port is known (port 0), before the socket
    can deliver anything.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
        sock.setblocking(False)
        on_datagram = receiver(normalise(sock.getsockname()))
        _, protocol = await loop.create_datagram_endpoint(lambda: _Socket(on_datagram), sock=sock)
    except BaseException:
        sock.close()
        raise
    return protocol


def _bound(sock: _Socket) -> Address:
    assert sock.transport is not None
    return normalise(sock.transport.get_extra_info("sockname"))


class StunServer:
    """``async with StunServer(ip, port, alternate_ip=...)``: a STUN server on real sockets.

    Without ``alternate_ip`` it answers Binding requests on one address; with
    it, it is an RFC 5780 server on both IPs, on ``port`` and ``port + 1``
    (port 0: ports the system picks, free on both IPs, for tests).
    """

    def __init__(
        self,
        ip: str,
        port: int = DEFAULT_STUN_PORT,
        *,
        alternate_ip: str | None = None,
        alternate_port: int | None = None,
        trace: Trace | None = None,
        actor: str = "STUN server",
        honours_change_request: bool = True,
    ) -> None:
        if alternate_ip is not None and alternate_ip == ip:
            raise ValueError("the alternate IP must differ from the primary one")
        if alternate_ip is not None and (port == 65535 or alternate_port == port != 0):
            raise ValueError("the alternate port must differ from the primary one (port + 1)")
        self.ip, self.port, self.alternate_ip = ip, port, alternate_ip
        self.alternate_port = alternate_port
        self.trace = trace if trace is not None else Trace(max_events=20_000)
        self.actor = actor
        self.honours_change_request = honours_change_request
        self.responder: StunResponder | None = None
        self._sockets: dict[Address, _Socket] = {}
        self._log = LogThrottle(burst=3, per_second=1.0)

    @property
    def endpoints(self) -> StunEndpoints:
        if self.responder is None:
            raise RuntimeError("STUN server not started")
        return self.responder.endpoints

    async def start(self) -> None:
        """Bind every address (retrying ports the system picks until all four are free)."""
        for _ in range(20):
            try:
                endpoints = await self._bind_all()
            except OSError as exc:
                await self._close_sockets()
                if exc.errno != errno.EADDRINUSE or self.port:
                    raise
                continue
            self.responder = StunResponder(
                endpoints, honours_change_request=self.honours_change_request
            )
            where = ", ".join(format_address(a) for a in endpoints.all())
            log.info("STUN server on %s", where)
            return
        raise OSError(errno.EADDRINUSE, "no free pair of ports on both addresses")

    async def _bind_all(self) -> StunEndpoints:
        first = await _bind((self.ip, self.port), self._receiver)
        port = _bound(first)[1]
        self._sockets[(self.ip, port)] = first
        if self.alternate_ip is None:
            return StunEndpoints((self.ip, port))
        alt_port = self.alternate_port or (port + 1 if self.port else 0)
        second = await _bind((self.ip, alt_port), self._receiver)
        alt_port = _bound(second)[1]
        self._sockets[(self.ip, alt_port)] = second
        endpoints = StunEndpoints((self.ip, port), (self.alternate_ip, alt_port))
        for address in endpoints.all()[2:]:
            self._sockets[address] = await _bind(address, self._receiver)
        return endpoints

    def _receiver(self, arrived_on: Address) -> Receive:
        def receive(data: bytes, source: Address) -> None:
            self._on_datagram(data, source, arrived_on)

        return receive

    def _on_datagram(self, data: bytes, source: Address, arrived_on: Address) -> None:
        if self.responder is None:
            return
        wall = time.time()
        self.trace.datagram_later(EventKind.DELIVERED, wall, self.actor, source, arrived_on, data)
        answer = self.responder.answer(data, source, arrived_on, asyncio.get_running_loop().time())
        if not isinstance(answer, Reply):
            if self._log.allow((answer.reason.split(":")[0],), wall) is not None:
                log.warning("STUN from %s refused: %s", format_address(source), answer.reason)
            return
        sender = self._sockets.get(answer.via)
        if sender is None or sender.transport is None:
            return
        sender.transport.sendto(answer.data, answer.destination)
        self.trace.datagram_later(
            EventKind.SENT, wall, self.actor, answer.via, answer.destination, answer.data
        )

    async def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            if sock.transport is not None:
                sock.transport.close()
        self._sockets.clear()

    async def close(self) -> None:
        await self._close_sockets()

    async def __aenter__(self) -> StunServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


#: A discovery's own trace, when the caller gives none: bounded, since anyone may
#: send to its sockets while the tests run.
DISCOVERY_TRACE_EVENTS = 2_000


async def _resolve(server: Address) -> Address:
    """The server as an IP address: answers are compared with it, and they come from IPs."""
    try:
        ipaddress.ip_address(server[0])
        return server
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(server[0], server[1], type=socket.SOCK_DGRAM)
    return (str(infos[0][4][0]), server[1])


async def discover(
    server: Address,
    *,
    host: str | None = None,
    trace: Trace | None = None,
    actor: str = "natcheck",
    give_up_after: float = 30.0,
    **options: Any,
) -> DiscoveryResult:
    """Run RFC 5780's tests against ``server`` from fresh sockets; the result and its evidence."""
    loop = asyncio.get_running_loop()
    server = await _resolve(server)
    local_ip = host or route_ip(server) or ("::" if ":" in server[0] else "0.0.0.0")
    trace = trace if trace is not None else Trace(max_events=DISCOVERY_TRACE_EVENTS)
    core = NatDiscovery(server, **options)
    sockets: list[_Socket] = []
    finished = loop.create_future()
    timer: asyncio.TimerHandle | None = None

    def flush() -> None:
        nonlocal timer
        now = loop.time()
        for data, destination, via in core.datagrams_to_send(now):
            transport = sockets[via].transport
            assert transport is not None
            transport.sendto(data, destination)
            trace.datagram_later(EventKind.SENT, time.time(), actor, local[via], destination, data)
        if timer is not None:
            timer.cancel()
        due = core.get_timer()
        timer = None if due is None else loop.call_at(due, on_timer)
        if core.done and not finished.done():
            finished.set_result(None)

    def on_timer() -> None:
        core.handle_timer(loop.time())
        flush()

    def receiver(via: int) -> Callable[[Address], Receive]:
        def receive(data: bytes, source: Address) -> None:
            trace.datagram_later(EventKind.DELIVERED, time.time(), actor, source, local[via], data)
            core.receive_datagram(data, source, via, loop.time())
            flush()

        return lambda bound: receive

    local: list[Address] = []
    try:
        for via in range(core.sockets):
            sock = await _bind((local_ip, 0), receiver(via))
            sockets.append(sock)
            local.append(_bound(sock))
        core.local = lambda via: local[via]
        core.start(loop.time())
        flush()
        await asyncio.wait_for(finished, give_up_after)
    except TimeoutError:
        core.result.problem = core.result.problem or f"gave up after {give_up_after:g} s"
    finally:
        if timer is not None:
            timer.cancel()
        for sock in sockets:
            if sock.transport is not None:
                sock.transport.close()
    return core.result
