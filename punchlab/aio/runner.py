"""Glue between one sans-IO core and one asyncio UDP socket.

The runner is the only place where real time meets the core: it feeds
datagrams in with ``loop.time()``, sends what the core hands back, records
both in the trace, and keeps exactly one ``loop.call_at`` timer armed for
``core.get_timer()``. The server and the peer drivers both use it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from punchlab.addresses import for_socket, from_socket
from punchlab.driving import CoreTimer, SansIOCore, pump
from punchlab.messages import Address
from punchlab.trace import EventKind, Trace

__all__ = ["CoreRunner"]

log = logging.getLogger(__name__)

#: Read buffer: the largest UDP payload, so an oversized datagram is seen
#: whole and rejected rather than silently truncated (the Go client read 1024).
#: asyncio reads 256 KiB by default, which glibc serves with a fresh mmap per
#: datagram; 64 KiB comes from the heap, several times cheaper.
RECEIVE_BUFFER = 65535


def normalise(address: Any) -> Address:
    """asyncio gives IPv6 addresses as 4-tuples; the protocol speaks ``(ip, port)``
    (an IPv4-mapped address as IPv4: see :func:`punchlab.addresses.from_socket`)."""
    return from_socket(address)


def udp_dual_stack_socket(port: int) -> socket.socket:
    """A UDP socket on ``[::]:port`` that also receives IPv4 (IPV6_V6ONLY off)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class CoreRunner(asyncio.DatagramProtocol):
    """Drive ``core`` from one UDP socket; hand each core event to ``on_event``.

    ``on_event(event, data)`` gets the datagram that caused the event when
    there is one, so that ignored input can be traced with its content.
    """

    def __init__(
        self,
        core: SansIOCore,
        *,
        actor: str,
        trace: Trace,
        on_event: Callable[[Any, bytes | None], None],
    ) -> None:
        self.core = core
        self.actor = actor
        self.trace = trace
        self.on_event = on_event
        self.transport: asyncio.DatagramTransport | None = None
        self.local_address: Address = ("0.0.0.0", 0)
        #: The socket's family: an IPv6 socket sends to IPv4 hosts at mapped addresses.
        self.family = socket.AF_INET
        #: The address the trace names as ours: the bound one, unless a driver knows
        #: better (a wildcard bind names no address; see Peer.register).
        self.traced_address: Address | None = None
        self.socket_errors: list[OSError] = []
        self._loop = asyncio.get_running_loop()
        self.timer = CoreTimer(
            core,
            clock=self._loop.time,
            schedule=lambda due, callback: self._loop.call_at(due, callback).cancel,
            fire=self._on_timer,
        )
        self._wall = 0.0  # wall-clock time of the datagrams being sent now
        #: Called at the end of every pump (the peer's extra sockets sync here).
        self.after_pump: Callable[[], None] | None = None

    @classmethod
    async def open(
        cls,
        core: SansIOCore,
        host: str,
        port: int,
        *,
        actor: str,
        trace: Trace,
        on_event: Callable[[Any, bytes | None], None],
    ) -> CoreRunner:
        """Bind a UDP socket (port 0: the OS chooses) and start driving the core.

        Host ``"::"`` binds one dual-stack socket, IPv4 clients included, whatever
        the system's default (``net.ipv6.bindv6only``, Windows' IPV6_V6ONLY).
        """
        loop = asyncio.get_running_loop()
        factory = lambda: cls(core, actor=actor, trace=trace, on_event=on_event)  # noqa: E731
        if host == "::":
            sock = udp_dual_stack_socket(port)
            _, runner = await loop.create_datagram_endpoint(factory, sock=sock)
        else:
            _, runner = await loop.create_datagram_endpoint(factory, local_addr=(host, port))
        return runner

    # -- asyncio.DatagramProtocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        if hasattr(transport, "max_size"):  # asyncio's selector transport
            transport.max_size = RECEIVE_BUFFER
        self.local_address = normalise(transport.get_extra_info("sockname"))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source = addr if len(addr) == 2 else from_socket(addr)
        # One reading of each clock per datagram: the answers go out within
        # microseconds, and a busy server should not pay for more.
        now, wall = self._loop.time(), time.time()
        try:
            self.trace.datagram_later(
                EventKind.DELIVERED, wall, self.actor, source, self._ours, data
            )
            self.core.receive_datagram(data, source, now)
        except Exception:  # a core bug must not take the receive loop down
            log.exception("%s: error handling a datagram from %s", self.actor, source)
        self.pump(data, now=now, wall=wall)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) surface here; they are worth telling
        # the user about but never fatal to the socket.
        if isinstance(exc, OSError):
            self.socket_errors.append(exc)
        log.debug("%s: socket error %s", self.actor, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timer()

    # -- driving the core -------------------------------------------------------------

    def pump(
        self, cause: bytes | None = None, *, now: float | None = None, wall: float | None = None
    ) -> None:
        """Send what the core queued, hand out its events, re-arm its timer."""
        self._wall = time.time() if wall is None else wall
        pump(
            self.core,
            self._loop.time() if now is None else now,
            send=self.send,
            on_event=self._dispatch,
            trace=self.trace,
            trace_time=self._wall,
            actor=self.actor,
            local_address=self._ours,
            cause=cause,
        )
        if self.after_pump is not None:
            self.after_pump()
        self._arm_timer()

    @property
    def _ours(self) -> Address:
        return self.traced_address or self.local_address

    def _dispatch(self, event: Any, cause: bytes | None) -> None:
        try:
            self.on_event(event, cause)
        except Exception:  # a handler bug must not stop the protocol
            log.exception("%s: error handling event %r", self.actor, event)

    def send(self, data: bytes, destination: Address) -> None:
        """Send and trace one datagram (from :meth:`pump`, whose time it is stamped with)."""
        if self.transport is None or self.transport.is_closing():
            return
        self.trace.datagram_later(
            EventKind.SENT, self._wall, self.actor, self._ours, destination, data
        )
        self.transport.sendto(data, for_socket(self.family, destination))

    def _arm_timer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.timer.arm()

    def _on_timer(self, now: float) -> None:
        try:
            self.core.handle_timer(now)
        except Exception:
            log.exception("%s: error in a timer", self.actor)
        self.pump()

    def cancel_timer(self) -> None:
        self.timer.cancel()

    def close(self) -> None:
        self.cancel_timer()
        if self.transport is not None:
            self.transport.close()
