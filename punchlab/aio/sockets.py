"""The peer's extra UDP sockets, for the hard side of a birthday punch.

The core says which extra sockets it wants (:attr:`PeerCore.sockets`,
numbered from 1) and what to send from each; this module opens and closes
them to match after every pump, sends, and feeds back what each receives.
Plain non-blocking sockets watched with ``loop.add_reader``: opening 256 of
them must not take 256 awaits inside a pump.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from punchlab.addresses import for_socket, from_socket
from punchlab.messages import Address
from punchlab.peer import PeerCore
from punchlab.trace import EventKind, Trace

__all__ = ["ExtraSockets"]

log = logging.getLogger(__name__)

#: The largest datagram read (as the main socket's RECEIVE_BUFFER).
_READ = 65_535


class ExtraSockets:
    """Keep ``core``'s extra sockets open on ``host``; ``pump(cause)`` runs after input."""

    def __init__(
        self,
        core: PeerCore,
        host: str,
        *,
        actor: str,
        trace: Trace,
        pump: Callable[[bytes | None], None],
    ) -> None:
        self.core, self.host, self.actor, self.trace = core, host, actor, trace
        self._pump = pump
        self._loop = asyncio.get_running_loop()
        self._open: dict[int, socket.socket] = {}

    def sync(self) -> None:
        """Open and close sockets to match the core, then send what it queued for them."""
        wanted = self.core.sockets
        for via in set(self._open) - wanted:
            self._close(via)
        for via in sorted(wanted - set(self._open)):
            try:
                self._open[via] = self._bind(via)
            except OSError as exc:  # out of ports or descriptors: fewer sockets, not a crash
                log.warning("%s: could not open socket %d: %s", self.actor, via, exc)
                break
        now = self._loop.time()
        for data, destination, via in self.core.socket_datagrams_to_send(now):
            sock = self._open.get(via)
            if sock is None:
                continue
            local = sock.getsockname()[:2]
            self.trace.datagram_later(
                EventKind.SENT, time.time(), self.actor, local, destination, data
            )
            try:
                sock.sendto(data, for_socket(sock.family, destination))
            except OSError as exc:
                log.debug("%s: socket %d could not send: %s", self.actor, via, exc)

    def _bind(self, via: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, 0))
            self._loop.add_reader(sock.fileno(), self._readable, via)
        except OSError:
            sock.close()
            raise
        return sock

    def _readable(self, via: int) -> None:
        sock = self._open.get(via)
        while sock is not None:
            try:
                data, source = sock.recvfrom(_READ)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error surfaced on this socket
                log.debug("%s: socket %d: %s", self.actor, via, exc)
                return
            address: Address = from_socket(source)
            local = sock.getsockname()[:2]
            self.trace.datagram_later(
                EventKind.DELIVERED, time.time(), self.actor, address, local, data
            )
            self.core.receive_datagram(data, address, self._loop.time(), via)
            self._pump(data)
            sock = self._open.get(via)  # the pump may have closed it (another won)

    def _close(self, via: int) -> None:
        sock = self._open.pop(via)
        self._loop.remove_reader(sock.fileno())
        sock.close()

    def close(self) -> None:
        for via in list(self._open):
            self._close(via)

    def __len__(self) -> int:
        return len(self._open)
