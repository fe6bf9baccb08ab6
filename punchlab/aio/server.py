"""The rendezvous server on real sockets: UDP for registrations, aiohttp for HTTP."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from punchlab.aio.http_guard import GuardedSite, HttpGuard, HttpLimits
from punchlab.aio.log_throttle import LogThrottle
from punchlab.aio.runner import CoreRunner, normalise
from punchlab.aio.stun import DEFAULT_STUN_PORT, StunServer
from punchlab.messages import Address, format_address
from punchlab.server import (
    DEFAULT_REGISTRATION_TTL,
    DatagramIgnored,
    PeerIntroduced,
    PeerRegistered,
    PeerRelayed,
    RegistrationEvicted,
    RegistrationExpired,
    RendezvousCore,
    ServerEvent,
    ServerLimits,
    answer_start_communication,
)
from punchlab.trace import Trace

__all__ = ["DEFAULT_HTTP_PORT", "DEFAULT_UDP_PORT", "MAX_BODY_BYTES", "RendezvousServer"]

log = logging.getLogger("punchlab.server")

DEFAULT_HTTP_PORT = 8088
DEFAULT_UDP_PORT = 8089
#: The newest datagrams a server keeps in its trace (older ones are dropped).
SERVER_TRACE_EVENTS = 100_000
#: A start-communication body is two identifiers; anything much larger is abuse.
MAX_BODY_BYTES = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every HTTP error, aiohttp's own (404, 405, 413) included, gets a JSON body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _json_error(exc.status, exc.reason, headers)


class RendezvousServer:
    """``async with RendezvousServer(...) as server:`` runs UDP and HTTP until the block ends.

    Port 0 lets the operating system choose; the bound ports are then in
    :attr:`udp_address`, :attr:`http_address` and :attr:`url`. Host ``"::"``
    takes IPv4 clients too. ``http_limits`` sets the HTTP deadlines and the
    connection cap (see :mod:`punchlab.aio.http_guard`).
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        udp_port: int = DEFAULT_UDP_PORT,
        http_port: int = DEFAULT_HTTP_PORT,
        *,
        registration_ttl: float = DEFAULT_REGISTRATION_TTL,
        rng: random.Random | None = None,
        limits: ServerLimits | None = None,
        trace: Trace | None = None,
        actor: str = "server",
        on_event: Callable[[ServerEvent], None] | None = None,
        http_limits: HttpLimits | None = None,
        stun_alternate: str | None = None,
        stun_port: int = DEFAULT_STUN_PORT,
    ) -> None:
        """``stun_alternate``: a second IP of this host; with it the server also runs an
        RFC 5780 STUN server on ``host`` and it, on ``stun_port`` and ``stun_port + 1``."""
        if stun_alternate is not None and host in ("", "0.0.0.0", "::"):
            raise ValueError("an RFC 5780 server needs --host to be one address, not a wildcard")
        self.host = host
        self.http_limits = http_limits if http_limits is not None else HttpLimits()
        self.http_guard: HttpGuard | None = None
        self.udp_port = udp_port
        self.http_port = http_port
        self.core = RendezvousCore(registration_ttl=registration_ttl, rng=rng, limits=limits)
        self.trace = trace if trace is not None else Trace(max_events=SERVER_TRACE_EVENTS)
        #: The RFC 5780 server beside the rendezvous server (its datagrams go in the same trace).
        self.stun: StunServer | None = None
        if stun_alternate is not None:
            self.stun = StunServer(host, stun_port, alternate_ip=stun_alternate, trace=self.trace)
        self.actor = actor
        self._listeners: list[Callable[[ServerEvent], None]] = (
            [] if on_event is None else [on_event]
        )
        self.http_errors = 0
        #: Log lines per kind (registered, introduced, refused ...), and per
        #: reason for rejected datagrams.
        self._event_log = LogThrottle(burst=20, per_second=5.0)
        self._rejection_log = LogThrottle(burst=3, per_second=1.0)
        self._runner: CoreRunner | None = None
        self._http: web.AppRunner | None = None
        self.udp_address: Address | None = None
        self.http_address: Address | None = None

    def add_listener(self, callback: Callable[[ServerEvent], None]) -> None:
        """Call ``callback(event)`` for every registration, introduction, expiry, rejection."""
        self._listeners.append(callback)

    @property
    def url(self) -> str:
        """The base URL peers use, with a connectable host for a wildcard bind."""
        if self.http_address is None:
            raise RuntimeError("server not started")
        host = self.http_address[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"  # RFC 3986 section 3.2.2: an IPv6 literal in a URL is bracketed
        return f"http://{host}:{self.http_address[1]}"

    async def start(self) -> None:
        self._runner = await CoreRunner.open(
            self.core,
            self.host,
            self.udp_port,
            actor=self.actor,
            trace=self.trace,
            on_event=self._handle_event,
        )
        self.udp_address = self._runner.local_address
        self.core.bind(self.udp_address)
        if self.stun is not None:
            try:
                await self.stun.start()
            except OSError:
                await self.close()
                raise
            self.core.announce_rfc5780(self.stun.endpoints.primary[1])
        self.http_guard = HttpGuard(self.http_limits)
        app = web.Application(
            client_max_size=MAX_BODY_BYTES, middlewares=[self.http_guard.middleware, _json_errors]
        )
        app.router.add_get("/get-udp-port", self._get_udp_port)
        app.router.add_post("/start-communication", self._start_communication)
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        site = GuardedSite(self._http, self.http_guard, self.host, self.http_port)
        try:
            await site.start()
        except OSError:
            await self.close()
            raise
        self.http_address = normalise(self._http.addresses[0])
        log.info(
            "rendezvous server: HTTP on %s, UDP on %s",
            self.url,
            format_address(self.udp_address),
        )

    async def close(self) -> None:
        if self.stun is not None:
            await self.stun.close()
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    async def __aenter__(self) -> RendezvousServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- HTTP -------------------------------------------------------------------------

    async def _get_udp_port(self, request: web.Request) -> web.Response:
        assert self.udp_address is not None
        return web.json_response({"port": self.udp_address[1]})

    async def _start_communication(self, request: web.Request) -> web.Response:
        try:
            assert self.http_guard is not None
            raw = await self.http_guard.read_body(request)
        except TimeoutError:
            return _json_error(408, "request body not received in time")
        assert self._runner is not None
        now = asyncio.get_running_loop().time()
        try:
            status, answer = answer_start_communication(self.core, raw, request.remote, now)
        finally:
            self._runner.pump()
        if status != 200:
            return self._refuse(status, answer["error"])
        return web.json_response(answer)

    def _refuse(self, status: int, message: str) -> web.Response:
        self.http_errors += 1
        self._log(
            logging.WARNING,
            ("refused", str(status)),
            "start-communication refused (%d): %s",
            status,
            message,
        )
        return _json_error(status, message)

    # -- events -----------------------------------------------------------------------

    def _log(self, level: int, key: tuple[str, ...], text: str, *args: object) -> None:
        """Log unless lines of this kind come too fast; the next line says how many were not.

        A flood (of registrations, introductions, refusals) must be visible in
        the log without becoming a flood of log lines.
        """
        if not log.isEnabledFor(level):  # skip the formatting under load
            return
        throttle = self._rejection_log if key[0] == "rejected" else self._event_log
        suppressed = throttle.allow(key, asyncio.get_running_loop().time())
        if suppressed is None:
            return
        if suppressed:
            text += f" (and {suppressed} more like it not logged)"
        log.log(level, text, *args)

    def _handle_event(self, event: ServerEvent, cause: bytes | None) -> None:
        if isinstance(event, PeerRegistered):
            again = " (again)" if event.repeated else ""
            self._log(
                logging.INFO,
                ("registered",),
                "registered %s from %s%s",
                event.peer_id,
                format_address(event.address),
                again,
            )
        elif isinstance(event, PeerIntroduced):
            intro = event.introduction
            self._log(
                logging.INFO,
                ("introduced",),
                "introduced %s (%s) to %s (%s)",
                intro.initiator_id,
                format_address(intro.initiator_address),
                intro.peer_id,
                format_address(intro.peer_address),
            )
        elif isinstance(event, PeerRelayed):
            # Per pair: a relayed chat says so, without a line per datagram.
            self._log(
                logging.INFO,
                ("relayed", event.from_id, event.to_id),
                "relayed %d bytes from %s to %s",
                event.size,
                event.from_id,
                event.to_id,
            )
        elif isinstance(event, RegistrationExpired | RegistrationEvicted):
            why = "expired" if isinstance(event, RegistrationExpired) else "evicted to make room"
            self._log(
                logging.INFO,
                (why,),
                "registration of %s (%s) %s",
                event.peer_id,
                format_address(event.address),
                why,
            )
        elif isinstance(event, DatagramIgnored):
            self._log(
                logging.WARNING,
                # Per reason, not per source: a flood from many addresses
                # must not become a line per address.
                ("rejected", event.reason),
                "rejected datagram from %s: %s",
                format_address(event.address),
                event.detail,
            )
        for listener in self._listeners:
            listener(event)
