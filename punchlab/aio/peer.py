"""A peer on real sockets: HTTP to the rendezvous server, UDP to everyone.

Everything runs on the running event loop (a Jupyter kernel's included):
no ``asyncio.run``, no threads, no loop patching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from punchlab.addresses import from_socket, route_ip
from punchlab.aio.runner import CoreRunner
from punchlab.aio.sockets import ExtraSockets
from punchlab.aio.stun import discover
from punchlab.candidates import private_endpoints
from punchlab.errors import (
    ConnectFailed,
    LocalProtocolError,
    RegistrationFailed,
    ServerError,
    ServerUnreachable,
    UnknownPeer,
)
from punchlab.messages import Address, rfc5780_port
from punchlab.peer import (
    Disconnected,
    Failed,
    IntroductionRefused,
    NatDiscovered,
    PeerConfig,
    PeerCore,
    PeerEvent,
    PeerState,
    TextReceived,
)
from punchlab.peer_table import PUNCHING_STATES, accepts_introduction
from punchlab.stun.discovery import DiscoveryResult
from punchlab.trace import Trace
from punchlab.traversal import Route

__all__ = ["Peer"]

log = logging.getLogger(__name__)

#: How long one HTTP request to the rendezvous server may take.
HTTP_TIMEOUT = 5.0

#: The newest trace events a peer keeps unless given a trace of its own: a
#: stranger's junk datagrams are traced too, and must not fill memory
#: (``Peer(trace=Trace())`` keeps everything).
PEER_TRACE_EVENTS = 20_000

#: Chat lines kept for :meth:`Peer.receive_text` until read (listeners see every one).
MAX_QUEUED_TEXTS = 1_000

_END = object()


class Peer:
    """``async with Peer(server_url) as peer:`` then ``await peer.register()``.

    The initiator calls :meth:`connect` with the other peer's identifier; the
    other side calls :meth:`wait_connected`. Both then :meth:`send_text` and
    read :meth:`texts`. Failures raise the clear errors of
    :mod:`punchlab.errors`, never hang past their timeout.
    """

    def __init__(
        self,
        server_url: str = "http://127.0.0.1:8088",
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        config: PeerConfig | None = None,
        trace: Trace | None = None,
        name: str = "peer",
        on_event: Callable[[PeerEvent], None] | None = None,
    ) -> None:
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"server_url must look like http://host:8088, not {server_url!r}")
        self.server_url = server_url.rstrip("/")
        self.host = host
        self.port = port
        self.config = config or PeerConfig()
        self.trace = trace if trace is not None else Trace(max_events=PEER_TRACE_EVENTS)
        self.name = name
        self._listeners: list[Callable[[PeerEvent], None]] = [] if on_event is None else [on_event]
        self.core: PeerCore | None = None
        self._runner: CoreRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._texts: asyncio.Queue[object] = asyncio.Queue(maxsize=MAX_QUEUED_TEXTS)
        #: Lines dropped because nobody read them (the oldest go first).
        self.texts_dropped = 0
        self._changed = asyncio.Event()
        self._failure: str | None = None
        self._refusal: IntroductionRefused | None = None
        #: What RFC 5780's tests found out about our NAT, once they have run (they run
        #: after registering, in the background, when the server announced its
        #: RFC 5780 server; a Go server announces nothing and nothing runs).
        self.nat: DiscoveryResult | None = None
        self._nat_task: asyncio.Task[None] | None = None
        self._sockets: ExtraSockets | None = None
        #: Set once the mapping tests have run (or will not): the ladder needs them.
        self._mapping_known = asyncio.Event()

    # -- what a user reads --------------------------------------------------------------

    @property
    def state(self) -> PeerState:
        return self.core.state if self.core is not None else PeerState.IDLE

    @property
    def id(self) -> str | None:
        return self.core.peer_id if self.core is not None else None

    @property
    def peer_address(self) -> Address | None:
        return self.core.peer_address if self.core is not None else None

    @property
    def route(self) -> Route | None:
        """How the connection was made (punchlab.traversal.Route), once connected."""
        return self.core.route if self.core is not None else None

    @property
    def local_address(self) -> Address | None:
        return self._runner.local_address if self._runner is not None else None

    def add_listener(self, callback: Callable[[PeerEvent], None]) -> None:
        """Call ``callback(event)`` for every event of the core (widgets use this)."""
        self._listeners.append(callback)

    # -- life cycle ---------------------------------------------------------------------

    async def register(self, timeout: float | None = None) -> str:
        """Learn the server's UDP port over HTTP, then register; returns our identifier."""
        if self.core is not None:
            raise LocalProtocolError(f"already {self.state.value}")
        reply = await self._http_request("GET", "/get-udp-port")
        port = reply.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ServerError(f"server gave no usable UDP port: {reply!r}")
        server_address = (await self._resolve_server_host(), port)
        if self.host == "0.0.0.0" and ":" in server_address[0]:
            self.host = "::"  # an IPv6-only server: our wildcard must be IPv6's too
        self.core = PeerCore(server_address, self.config)
        self._runner = await CoreRunner.open(
            self.core,
            self.host,
            self.port,
            actor=self.name,
            trace=self.trace,
            on_event=self._on_event,
        )
        runner = self._runner
        self._sockets = ExtraSockets(
            self.core, self.host, actor=self.name, trace=self.trace, pump=lambda c: runner.pump(c)
        )
        runner.after_pump = self._sockets.sync
        if self._runner.local_address[0] in ("0.0.0.0", "::"):
            # A wildcard bind names no address: the trace (and a capture written from
            # it) should show the one the system sends from toward the server.
            ip = route_ip(server_address)
            if ip is not None:
                self._runner.traced_address = (ip, self._runner.local_address[1])
        self.core.local_addresses = private_endpoints(
            self._runner.traced_address or self._runner.local_address
        )
        self.core.register(asyncio.get_running_loop().time())
        self._runner.pump()
        await self._wait_for(lambda: self.state is not PeerState.REGISTERING, timeout)
        if self.state is not PeerState.REGISTERED:
            raise RegistrationFailed(self._failure_text("registration failed"))
        assert self.core.peer_id is not None
        self._start_nat_discovery()
        return self.core.peer_id

    def _start_nat_discovery(self) -> None:
        """Run RFC 5780's tests beside the peer, if the server runs an RFC 5780 server."""
        assert self.core is not None
        port = rfc5780_port(self.core.server_features)
        if port is None or self._nat_task is not None:
            self._mapping_known.set()
            return
        server = (self.core.server_address[0], port)
        self._nat_task = asyncio.get_running_loop().create_task(self._discover_nat(server))

    async def _discover_nat(self, server: Address) -> None:
        """The mapping tests first (quick; the traversal ladder's rung depends on them),
        then all of RFC 5780's tests, which wait seconds for answers that never come."""
        host = None if self.host in ("0.0.0.0", "::", "") else self.host
        try:
            try:
                mapping = await discover(
                    server, host=host, trace=self.trace, actor=self.name,
                    filtering=False, hairpinning=False,
                )  # fmt: skip
                if self.core is not None and self._runner is not None:
                    self.core.learn_nat(mapping, asyncio.get_running_loop().time())
                    self._runner.pump()
            finally:
                self._mapping_known.set()
            result = await discover(server, host=host, trace=self.trace, actor=self.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the tests are a bonus: the peer goes on without them
            log.info("%s: NAT behaviour discovery could not run: %s", self.name, exc)
            return
        self.nat = result
        self._on_event(NatDiscovered(result), None)

    async def wait_for_nat_mapping(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) for the mapping tests; whether the mapping is known.

        A peer that connects at once climbs the ladder knowing nothing, which
        means the relay; a script waits here first, as a person reading the
        panel would."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._mapping_known.wait()
        return self.core is not None and self.core.nat is not None and self.core.nat.known

    async def connect(self, peer_id: str, timeout: float | None = None) -> None:
        """Ask the server to introduce us to ``peer_id`` and punch until connected."""
        core, runner = self._registered()
        if not isinstance(peer_id, str) or not peer_id.strip():
            raise ValueError("peer_id must be a non-empty identifier")
        request = core.ask_introduction(peer_id)
        status, reply = await self._http_exchange(request.method, request.path, request.body)
        self._failure = self._refusal = None
        core.receive_http_answer(request, status, reply, asyncio.get_running_loop().time())
        runner.pump()
        if self._refusal is not None:
            if self._refusal.status == 404:
                raise UnknownPeer(self._refusal.reason)
            where = f"{request.method} {self.server_url}{request.path}"
            if reply is None or not isinstance(reply, dict):
                raise ServerError(f"{where} answered {status} without a JSON object")
            raise ServerError(f"{where} answered {status}: {self._refusal.reason}")
        await self._until_connected(timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """The passive side: wait until another peer has connected to us."""
        self._registered()
        await self._until_connected(timeout, waiting_for_introduction=True)

    async def send_text(self, text: str) -> int:
        """Send one chat line; returns how many datagrams it took (see PeerCore.send_text)."""
        core, runner = self._registered()
        pieces = core.send_text(text, asyncio.get_running_loop().time())
        runner.pump()
        return pieces

    @property
    def unacknowledged(self) -> int:
        """Pieces of our lines the partner has not acknowledged (0 when it does not ack)."""
        return self.core.unacknowledged if self.core is not None else 0

    async def wait_acknowledged(self, timeout: float | None = None) -> None:
        """Wait until the partner has acknowledged every line sent (``TimeoutError`` if not);
        at once when it does not acknowledge lines (a Go peer): nothing will come."""
        await self._wait_for(lambda: self.unacknowledged == 0, timeout)

    async def receive_text(self, timeout: float | None = None) -> str:
        """The next chat line; raises ``TimeoutError`` or :class:`ConnectFailed` if closed."""
        async with asyncio.timeout(timeout):
            item = await self._texts.get()
        if item is _END:
            self._texts.put_nowait(_END)
            raise ConnectFailed("peer closed")
        assert isinstance(item, str)
        return item

    async def texts(self) -> AsyncIterator[str]:
        """Every chat line received, until :meth:`close`."""
        while True:
            item = await self._texts.get()
            if item is _END:
                self._texts.put_nowait(_END)
                return
            assert isinstance(item, str)
            yield item

    async def close(self) -> None:
        if self._nat_task is not None:
            self._nat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._nat_task
        if self.core is not None and self.core.state is not PeerState.CLOSED:
            self.core.close()
        if self._runner is not None:
            self._runner.close()
        if self._sockets is not None:
            self._sockets.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._queue_text(_END)
        self._changed.set()

    async def __aenter__(self) -> Peer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- internals ----------------------------------------------------------------------

    def _registered(self) -> tuple[PeerCore, CoreRunner]:
        if self.core is None or self._runner is None or self.core.peer_id is None:
            raise LocalProtocolError("register() first")
        if self.core.state is PeerState.CLOSED:
            raise LocalProtocolError("peer is closed")
        return self.core, self._runner

    async def _until_connected(
        self, timeout: float | None, waiting_for_introduction: bool = False
    ) -> None:
        waiting = set(PUNCHING_STATES)
        if waiting_for_introduction:
            waiting |= {state for state in PeerState if accepts_introduction(state)}
            if self.state is not PeerState.CONNECTED:
                self._failure = None
        try:
            await self._wait_for(
                lambda: (
                    self.state not in waiting
                    or (waiting_for_introduction and self._failure is not None)
                ),
                timeout,
            )
        except TimeoutError:
            raise ConnectFailed(
                f"not connected after {timeout} s (state {self.state.value})"
            ) from None
        if self.state is not PeerState.CONNECTED:
            raise ConnectFailed(self._failure_text(f"connection ended while {self.state.value}"))

    async def _wait_for(self, condition: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def _on_event(self, event: PeerEvent, cause: bytes | None) -> None:
        if isinstance(event, TextReceived):
            self._queue_text(event.text)
        elif isinstance(event, Failed | Disconnected):
            self._failure = event.reason
        elif isinstance(event, IntroductionRefused):
            self._refusal = event
        self._changed.set()
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a widget's bug must not stop the peer
                log.exception("%s: listener failed on %r", self.name, event)

    def _queue_text(self, item: object) -> None:
        """Keep the newest lines for :meth:`receive_text`; a partner cannot fill our memory."""
        if self._texts.full():
            self._texts.get_nowait()
            self.texts_dropped += 1
        self._texts.put_nowait(item)

    def _failure_text(self, default: str) -> str:
        text = self._failure or default
        if self._runner is not None and self._runner.socket_errors:
            error = self._runner.socket_errors[-1]
            text += f" (socket error: {error.strerror or error})"
        return text

    async def _resolve_server_host(self) -> str:
        """The server's IP, of a family our socket can send to.

        A socket bound to an IPv4 address takes IPv4, to an IPv6 one (``::``
        included) IPv6; the default wildcard prefers IPv4, as before, and takes
        IPv6 where the name has no IPv4 address (``http://[::1]:8088``).
        """
        host = urlsplit(self.server_url).hostname
        assert host is not None
        if ":" in self.host:
            families = [socket.AF_INET6]
        elif self.host == "0.0.0.0":
            families = [socket.AF_INET, socket.AF_INET6]
        else:
            families = [socket.AF_INET]
        loop = asyncio.get_running_loop()
        problem: OSError | None = None
        for family in families:
            try:
                infos = await loop.getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
            except OSError as exc:
                problem = problem or exc
                continue
            if infos:
                return from_socket(infos[0][4])[0]
        raise ServerUnreachable(f"cannot resolve {host!r} for a socket on {self.host}: {problem}")

    async def _http_exchange(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the rendezvous server: its status and JSON (None if not JSON)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        url = self.server_url + path
        try:
            async with self._http.request(method, url, json=body) as response:
                try:
                    reply = await response.json(content_type=None)
                except ValueError:
                    reply = None
                return response.status, reply
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise ServerUnreachable(
                f"cannot reach the rendezvous server at {url}: {detail}"
            ) from None

    async def _http_request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A request whose answer must be a 200 with a JSON object."""
        status, reply = await self._http_exchange(method, path, body)
        url = self.server_url + path
        if not isinstance(reply, dict):
            raise ServerError(f"{method} {url} answered {status} without a JSON object")
        if status != 200:
            raise ServerError(f"{method} {url} answered {status}: {reply.get('error', reply)}")
        return reply
