"""Protect the HTTP listener from slow and numerous connections (Slowloris).

aiohttp has no deadline for request headers and no connection cap: a client
that opens a connection and sends half a request line holds a file
descriptor for an hour (aiohttp's keep-alive timeout). A thousand of them
exhaust the process's descriptors; ``accept()`` then fails with EMFILE,
legitimate clients wait forever in the listen queue, and asyncio logs a
traceback per failed accept, thousands a second.

:class:`HttpGuard` fixes this from outside aiohttp:

- every connection gets a deadline for its request headers, from the moment
  it is accepted and again after each response on a keep-alive connection,
  until :meth:`HttpGuard.middleware` sees the next request start;
- the number of open connections stays below the descriptor limit: at the
  cap, a new connection closes the oldest one still waiting for headers (or
  is closed itself when every connection is busy with a request);
- :func:`read_body` puts a deadline on the request body;
- while a guard runs, :class:`AcceptErrorThrottle` on the ``asyncio`` logger
  turns the flood of accept errors into one line a second with a count. It
  is a logging filter, not an exception handler, because inside Jupyter the
  event loop (and its exception handler) belongs to the kernel.

:class:`GuardedSite` is the aiohttp site that wires a guard into a listener.
For host ``"::"`` it listens on one dual-stack socket, so IPv4 clients (seen
as ``::ffff:a.b.c.d``) reach it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "AcceptErrorThrottle",
    "GuardedSite",
    "HttpGuard",
    "HttpLimits",
    "fd_connection_cap",
    "read_body",
]

log = logging.getLogger("punchlab.http")

#: Seconds a connection may take to send its request headers (and may stay idle between
#: requests on a keep-alive connection). Real clients send headers in one packet.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds a request may take to send its body (two identifiers, a few hundred bytes).
DEFAULT_BODY_TIMEOUT = 5.0
#: Open HTTP connections at most, whatever the descriptor limit allows: a classroom
#: needs a few dozen; the cap bounds memory when the descriptor limit is huge.
DEFAULT_MAX_CONNECTIONS = 4096
#: Descriptors kept free beyond those open when the guard starts and the accept bursts
#: (logs, DNS, a notebook's own files).
FD_RESERVE = 64
#: Listen backlog of a guarded site (aiohttp's default).
DEFAULT_BACKLOG = 128
#: asyncio accepts up to ``backlog`` sockets per listener per loop turn, and a socket
#: reaches the guard (``connection_made``) two turns after its accept; the descriptor of
#: a connection the guard closes is freed one turn later. So up to four bursts are open
#: before the guard's closing catches up.
ACCEPT_TURNS = 4

_ACCEPT_ERROR = "socket.accept() out of system resource"
_ACCEPT_RETRY = "Exception in callback BaseSelectorEventLoop._start_serving"
#: asyncio retries a failed accept() after 1 s; the throttle stays that long after close.
_RETRY_GRACE = 1.5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HttpLimits:
    """Deadlines and the connection cap of a guarded HTTP listener."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    fd_reserve: int = FD_RESERVE

    def __post_init__(self) -> None:
        if not (0 < self.header_timeout < float("inf") and 0 < self.body_timeout < float("inf")):
            raise ValueError("header_timeout and body_timeout must be finite and > 0")
        if self.max_connections < 1 or self.fd_reserve < 0:
            raise ValueError("max_connections must be >= 1 and fd_reserve >= 0")


async def read_body(request: web.BaseRequest, deadline: float = DEFAULT_BODY_TIMEOUT) -> bytes:
    """The whole request body; :class:`TimeoutError` if it has not arrived within ``deadline`` s.

    Without a deadline a client that announces a body and sends it a byte a
    minute keeps its handler (and its descriptor) forever. On timeout the
    rest of the body is given up: aiohttp then closes the connection once the
    answer is sent, instead of lingering to read the rest.
    """
    try:
        async with asyncio.timeout(deadline):
            return await request.read()
    except TimeoutError:
        request.content.set_exception(TimeoutError("request body deadline passed"))
        raise


def _open_descriptors() -> int:
    """How many descriptors this process has open (0 where the system does not say)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(directory))
        except OSError:
            continue
    return 0


def fd_connection_cap(accept_burst: int, reserve: int = FD_RESERVE) -> int | None:
    """Connections that fit below the soft descriptor limit, or None when there is no limit.

    What is open now, ``accept_burst`` (sockets accepted before the guard
    hears of them) and ``reserve`` stay free, so that ``accept()`` does not
    fail with EMFILE while the guard keeps to the cap.
    """
    if sys.platform == "win32":
        return None
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - _open_descriptors() - accept_burst - reserve)


# -- accept errors ---------------------------------------------------------------------


class AcceptErrorThrottle(logging.Filter):
    """Let one accept-error record a second through, as one line with a count.

    On EMFILE, asyncio (3.11) logs the failed ``accept()`` with a traceback up
    to ``backlog`` times per loop turn, and schedules as many retries a second
    later; retries that fire after the listener closed each log a traceback
    too. Tens of thousands of lines a minute drown everything else in the log.
    """

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")
        #: When the last matching record came (let through or not).
        self.last_seen = float("-inf")
        #: Accept errors swallowed since the last one let through.
        self.suppressed = 0

    @staticmethod
    def summary(record: logging.LogRecord) -> str | None:
        """One line for asyncio's report of a failed accept() or retry; None for other records."""
        if not isinstance(record.msg, str):
            return None
        exc = record.exc_info[1] if record.exc_info else None
        if record.msg.startswith(_ACCEPT_ERROR):
            return f"{_ACCEPT_ERROR}: {exc}"
        if record.msg.startswith(_ACCEPT_RETRY):
            return f"asyncio's retry of accept() failed (listener closed?): {exc!r}"
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        line = self.summary(record)
        if line is None:
            return True
        now = self._clock()
        self.last_seen = now
        if now - self._last < self.interval:
            self.suppressed += 1
            return False
        more = f" ({self.suppressed} more suppressed since the last one)" if self.suppressed else ""
        record.msg, record.args = "%s%s", (line, more)
        record.exc_info = record.exc_text = None
        self._last = now
        self.suppressed = 0
        return True


_throttle_lock = threading.Lock()
_throttle: AcceptErrorThrottle | None = None
_throttle_users = 0


def _install_accept_throttle() -> None:
    """Put the shared throttle on the ``asyncio`` logger (counted: one per running guard)."""
    global _throttle, _throttle_users
    with _throttle_lock:
        if _throttle is None:
            _throttle = AcceptErrorThrottle()
            logging.getLogger("asyncio").addFilter(_throttle)
        _throttle_users += 1


def _remove_accept_throttle() -> None:
    """Take the throttle off when the last guard stops; report what it still held back."""
    global _throttle, _throttle_users
    with _throttle_lock:
        _throttle_users -= 1
        if _throttle_users > 0 or _throttle is None:
            return
        logging.getLogger("asyncio").removeFilter(_throttle)
        if _throttle.suppressed:
            log.warning("%d more accept errors were suppressed", _throttle.suppressed)
        _throttle = None


def _release_accept_throttle(loop: asyncio.AbstractEventLoop) -> None:
    """Remove the throttle now, or once asyncio's pending accept retries have fired."""
    throttle = _throttle
    if throttle is not None and time.monotonic() - throttle.last_seen < _RETRY_GRACE:
        loop.call_later(_RETRY_GRACE, _remove_accept_throttle)
    else:
        _remove_accept_throttle()


# -- connections -----------------------------------------------------------------------


class _GuardedProtocol(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol so the guard sees the connection."""

    def __init__(self, guard: HttpGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.deadline = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.inner.connection_made(transport)
        self.guard._opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard._lost(self)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def close(self) -> None:
        """Close now; drop unsent bytes rather than wait for a client that does not read."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()


class HttpGuard:
    """Header deadlines and a connection cap for the connections of one listener.

    Connections waiting for headers are kept in arrival order (a keep-alive
    connection goes to the back after each response): the front is both the
    next deadline due and the oldest one to evict, so one timer serves all.
    """

    def __init__(self, limits: HttpLimits | None = None) -> None:
        self.limits = limits if limits is not None else HttpLimits()
        #: The cap in force: ``limits.max_connections`` or less, set by :meth:`start`.
        self.max_connections = self.limits.max_connections
        self._live: dict[object, _GuardedProtocol] = {}  # by aiohttp's protocol
        self._waiting: OrderedDict[_GuardedProtocol, None] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: Connections closed: missed the header deadline / evicted at the cap / refused.
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0
        self._reported = (0, 0, 0)
        self._last_report = float("-inf")

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        return len(self._live)

    @property
    def waiting_connections(self) -> int:
        """Open connections that have not sent (the next) request's headers yet."""
        return len(self._waiting)

    def start(self, accept_burst: int = ACCEPT_TURNS * DEFAULT_BACKLOG) -> None:
        """Fix the cap below the descriptor limit; quiet accept errors until :meth:`close`."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        fd_cap = fd_connection_cap(accept_burst, self.limits.fd_reserve)
        if fd_cap is not None and fd_cap < self.max_connections:
            self.max_connections = fd_cap
        _install_accept_throttle()

    def close(self) -> None:
        """Stop the deadlines and the throttle; open connections are the runner's to close."""
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._report(force=True)
        _release_accept_throttle(self._loop)
        self._loop = None

    def wrap(self, protocol: asyncio.Protocol) -> asyncio.Protocol:
        """The protocol to hand the transport: ``protocol`` with this guard in front."""
        return _GuardedProtocol(self, protocol)

    async def read_body(self, request: web.BaseRequest) -> bytes:
        """The request body within ``limits.body_timeout`` (see :func:`read_body`).

        While the body is on its way the connection counts as waiting again:
        at the cap it may be closed to make room, so slow bodies cannot hold
        every descriptor either.
        """
        conn = self._live.get(request.protocol)
        if conn is not None:
            self._wait_for_headers(conn)
        try:
            return await read_body(request, self.limits.body_timeout)
        finally:
            if conn is not None:
                self._waiting.pop(conn, None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Headers are in: lift the deadline; once the handler is done, wait for the next ones."""
        conn = self._live.get(request.protocol)
        if conn is not None:
            self._waiting.pop(conn, None)
        try:
            return await handler(request)
        finally:
            if conn is not None and request.protocol in self._live:
                self._wait_for_headers(conn)

    # -- bookkeeping, called by _GuardedProtocol -----------------------------------------

    def _opened(self, conn: _GuardedProtocol) -> None:
        if self._loop is None:  # not started, or stopping: aiohttp closes it
            return
        if len(self._live) >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                conn.close()
                self._report()
                return
            oldest = next(iter(self._waiting))
            self.evicted += 1
            self._drop(oldest)
            self._report()
        self._live[conn.inner] = conn
        self._wait_for_headers(conn)

    def _lost(self, conn: _GuardedProtocol) -> None:
        self._waiting.pop(conn, None)
        self._live.pop(conn.inner, None)

    def _wait_for_headers(self, conn: _GuardedProtocol) -> None:
        if self._loop is None:
            return
        conn.deadline = self._loop.time() + self.limits.header_timeout
        self._waiting[conn] = None
        self._waiting.move_to_end(conn)
        if self._timer is None:
            self._timer = self._loop.call_at(conn.deadline, self._expire)

    def _expire(self) -> None:
        """Close every connection past its header deadline; sleep until the next one."""
        self._timer = None
        if self._loop is None:
            return
        now = self._loop.time()
        while self._waiting:
            conn = next(iter(self._waiting))
            if conn.deadline > now:
                self._timer = self._loop.call_at(conn.deadline, self._expire)
                break
            self.timed_out += 1
            self._drop(conn)
        self._report()

    def _drop(self, conn: _GuardedProtocol) -> None:
        """Forget ``conn`` now (its descriptor is freed on the next loop turn) and close it."""
        self._lost(conn)
        conn.close()

    def _report(self, force: bool = False) -> None:
        """At most one log line a second about closed connections, with the counts."""
        counts = (self.timed_out, self.evicted, self.refused)
        now = time.monotonic()
        if counts == self._reported or (not force and now - self._last_report < 1.0):
            return
        timed_out, evicted, refused = (a - b for a, b in zip(counts, self._reported, strict=True))
        self._reported, self._last_report = counts, now
        log.warning(
            "HTTP guard closed connections: %d sent no request headers within %g s, "
            "%d waiting for headers made room at the cap of %d, %d new ones found every "
            "connection busy",
            timed_out,
            self.limits.header_timeout,
            evicted,
            self.max_connections,
            refused,
        )


# -- the aiohttp site ------------------------------------------------------------------


def _dual_stack_socket(port: int, backlog: int) -> socket.socket | None:
    """A listening socket for ``::`` that takes IPv4 too, or None where that cannot be."""
    if not socket.has_dualstack_ipv6():
        return None
    return socket.create_server(
        ("::", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
    )


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass through an :class:`HttpGuard`.

    Like ``web.TCPSite``, but the protocol factory wraps aiohttp's protocol
    and host ``"::"`` listens dual-stack (asyncio would set IPV6_V6ONLY).
    """

    __slots__ = ("_guard", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: HttpGuard,
        host: str,
        port: int,
        *,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def factory() -> asyncio.Protocol:
            return self._guard.wrap(server())

        sock = _dual_stack_socket(self._port, self._backlog) if self._host == "::" else None
        if sock is None:
            listener = await loop.create_server(
                factory, self._host, self._port, backlog=self._backlog
            )
        else:
            try:
                listener = await loop.create_server(factory, sock=sock, backlog=self._backlog)
            except BaseException:
                sock.close()
                raise
        self._server = listener
        listeners = max(1, len(listener.sockets))
        self._guard.start(accept_burst=ACCEPT_TURNS * self._backlog * listeners)

    async def stop(self) -> None:
        self._guard.close()
        await super().stop()
