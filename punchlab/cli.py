"""``punchlab serve | chat | demo | lab``: the command line for a classroom.

A teacher runs ``punchlab serve`` on a machine the class can reach; each
student runs ``punchlab chat --server http://TEACHER:8088``, reads their
identifier, and types a classmate's to connect. ``punchlab lab`` opens the
course's notebooks for a student who has only pip.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import selectors
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeAlias

from punchlab import __version__, course_files, scripted
from punchlab.addresses import route_ip
from punchlab.aio import DEFAULT_HTTP_PORT, DEFAULT_UDP_PORT, Peer, RendezvousServer
from punchlab.aio.peer import PEER_TRACE_EVENTS
from punchlab.aio.server import SERVER_TRACE_EVENTS
from punchlab.display import EscapingFormatter, printable
from punchlab.errors import ConnectFailed, LocalProtocolError, PunchlabError
from punchlab.messages import format_address
from punchlab.narrate import tell
from punchlab.peer import (
    Connected,
    Introduced,
    NatDiscovered,
    PeerAddressChanged,
    PeerConfig,
    PeerEvent,
    PeerState,
    TextDelivered,
    TextFailed,
    TextSent,
)
from punchlab.sim.nat import PRESET_NAMES
from punchlab.trace import Trace

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _seconds(text: str) -> float:
    """A positive number of seconds, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, not {text!r}")
    return value


Handler = Callable[[argparse.Namespace], int]
#: The subparsers of ``punchlab``, to which each command adds its own.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    """``punchlab`` and its commands; each command's parser names its handler."""
    parser = argparse.ArgumentParser(
        prog="punchlab",
        description="Learn, teach and see UDP hole punching.",
        epilog="Run 'punchlab COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"punchlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_chat(commands)
    _add_demo(commands)
    _add_lab(commands)
    scripted.add_parser(commands)
    commands.choices["peer"].set_defaults(handler=scripted.main)
    from punchlab.natcheck import add_parser as add_natcheck_parser

    add_natcheck_parser(commands)
    from punchlab.netlab.cli import add_parser as add_netlab_parser

    add_netlab_parser(commands)  # its actions name their own handlers
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except PunchlabError as exc:
        # The message may quote the network (a server's error text): escaped.
        print(f"punchlab: {printable(str(exc), ERROR_SHOWN)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"punchlab: {printable(str(exc), ERROR_SHOWN)}", file=sys.stderr)
        return EXIT_USAGE


def _port(text: str) -> int:
    """A TCP or UDP port number, for argparse (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {text!r}")
    return value


# -- serve ---------------------------------------------------------------------------


def _add_serve(commands: Commands) -> None:
    """``punchlab serve``: the teacher's rendezvous server."""
    serve = commands.add_parser(
        "serve",
        help="run the rendezvous server (for a teacher)",
        description="Run the rendezvous server: peers register over UDP and ask to be "
        "introduced over HTTP. It prints the command students run, then logs registrations "
        "and introductions as they happen.",
    )
    serve.add_argument(
        "--host",
        default="0.0.0.0",
        help="address to listen on (default: every IPv4 address; '::' for IPv6 and IPv4)",
    )
    serve.add_argument(
        "--http-port",
        type=_port,
        default=DEFAULT_HTTP_PORT,
        help="HTTP port (default: %(default)s)",
    )
    serve.add_argument(
        "--udp-port", type=_port, default=DEFAULT_UDP_PORT, help="UDP port (default: %(default)s)"
    )
    serve.add_argument(
        "--stun-alternate",
        metavar="IP",
        help="a second IP address of this machine: also run an RFC 5780 STUN server on --host "
        "and IP, on --stun-port and the port after it, so 'punchlab natcheck' works against "
        "this machine (on loopback: --host 127.0.0.1 --stun-alternate 127.0.0.2) (default: "
        "none; the UDP port still answers plain STUN Binding requests)",
    )
    serve.add_argument(
        "--stun-port",
        type=_port,
        default=3478,
        help="the RFC 5780 server's first port (default: %(default)s, STUN's own)",
    )
    serve.add_argument(
        "--ttl",
        type=float,
        default=30.0,
        help="seconds a silent registration lives (default: %(default)s). Go clients stop "
        "beating the server once they chat, so they are forgotten this long after; raise it "
        "to keep them introducible, at the price of holding vanished peers as long",
    )
    serve.add_argument(
        "--trace",
        metavar="FILE",
        help="write every datagram to FILE (JSON Lines) on exit (default: not written)",
    )
    serve.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log only warnings (default: log every registration and introduction)",
    )
    serve.set_defaults(handler=lambda args: asyncio.run(_serve(args)))


PCAP_HELP = (
    "write every datagram to FILE as a pcapng capture for Wireshark, each on the link it "
    "crossed (default: not written)"
)

#: A documentation address (RFC 5737, TEST-NET-1). Connecting a UDP socket to it
#: makes the kernel choose the route and source address, and sends nothing; were
#: anything ever sent, it would go to an address that belongs to no one.
PROBE_ADDRESS = ("192.0.2.1", 9)


#: The IPv6 probe, from the documentation prefix (RFC 3849), for the same purpose.
PROBE_ADDRESS_V6 = ("2001:db8::1", 9)


def _outward_address() -> str | None:
    """The IPv4 address this machine would send from to reach beyond itself, if any."""
    return route_ip(PROBE_ADDRESS)


def _outward_v6_addresses() -> list[str]:
    """The IPv6 address this machine would send from beyond its link, if it has one
    students could use (not loopback, not link-local: those need no server or a zone)."""
    found = route_ip(PROBE_ADDRESS_V6)
    try:
        address = ipaddress.ip_address(found or "")
    except ValueError:
        return []
    usable = not (address.is_loopback or address.is_link_local or address.is_unspecified)
    return [str(address)] if usable else []


def _hostname_addresses() -> list[str]:
    """The IPv4 addresses this machine's name resolves to (often only a loopback one)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family=socket.AF_INET)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def student_addresses(
    outward: Callable[[], str | None] = _outward_address,
    named: Callable[[], Sequence[str]] = _hostname_addresses,
) -> list[str]:
    """Addresses students might reach this machine at: the outward one first, then the rest.

    Loopback and unspecified addresses are left out: no student can use them.
    """
    chosen: list[str] = []
    for text in [outward(), *named()]:
        try:
            address = ipaddress.ip_address(text or "")
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified) and str(address) not in chosen:
            chosen.append(str(address))
    return chosen


def _student_lines(
    host: str,
    http_port: int,
    addresses: Callable[[], list[str]] = student_addresses,
    v6: Callable[[], list[str]] = _outward_v6_addresses,
) -> list[str]:
    """The command students run, for each address they could reach the server at
    (on ``::``, the IPv6 one too: ``http://[v6]:port``)."""
    if host in ("", "0.0.0.0", "::"):
        found = addresses()
        if host == "::":
            found += [address for address in v6() if address not in found]
    else:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name: students resolve it as we did
            loopback = host == "localhost"
        if loopback:
            return [f"  listening on {host} only: use --host 0.0.0.0 to let students in"]
        found = [host]
    if not found:
        return [
            "  students: no network address found (is this machine offline?); "
            f"on this machine: punchlab chat --server http://127.0.0.1:{http_port}"
        ]
    hosts = [f"[{a}]" if ":" in a else a for a in found]
    return [f"  students: punchlab chat --server http://{h}:{http_port}" for h in hosts]


def _port_problem(exc: OSError, server: RendezvousServer, args: argparse.Namespace) -> str | None:
    """Why the server could not listen, naming the port and the option to change it."""
    if server.udp_address is None:
        kind, port, option = "UDP", args.udp_port, "--udp-port"
    elif server.stun is not None and server.stun.responder is None:
        kind, port, option = "STUN", args.stun_port, "--stun-port"
    else:
        kind, port, option = "HTTP", args.http_port, "--http-port"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{kind} port {port} is already in use (another punchlab serve?); choose another "
            f"with {option} N, or {option} 0 for any free port"
        )
    if exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", errno.EACCES)):  # Windows
        return (
            f"not allowed to listen on {kind} port {port} (ports below 1024 need root); "
            f"choose another with {option} N"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {args.host}: not an address of this machine (see --host)"
    return None


async def _serve(args: argparse.Namespace) -> int:
    # Log lines quote the network (an unknown message type, a requested ID): escaped.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[handler])
    trace = Trace(max_events=SERVER_TRACE_EVENTS)
    try:
        server = RendezvousServer(
            args.host,
            args.udp_port,
            args.http_port,
            registration_ttl=args.ttl,
            trace=trace,
            stun_alternate=args.stun_alternate,
            stun_port=args.stun_port,
        )
    except ValueError as exc:
        print(f"punchlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        await server.start()
    except OSError as exc:
        problem = _port_problem(exc, server, args)
        if problem is None:
            raise
        print(f"punchlab: {problem}", file=sys.stderr)
        return EXIT_USAGE
    assert server.http_address is not None
    assert server.udp_address is not None
    _say(f"punchlab server ready: HTTP {server.url}, UDP port {server.udp_address[1]}")
    if server.stun is not None:
        primary = server.stun.endpoints.primary
        _say(f"  RFC 5780 STUN server: punchlab natcheck --server {format_address(primary)}")
    for line in _student_lines(args.host, server.http_address[1]):
        _say(line)
    _say("Press Ctrl-C to stop.")
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
        if args.trace:
            print(f"trace written to {trace.save(args.trace)}")
    return EXIT_OK


# -- chat ----------------------------------------------------------------------------


def _add_chat(commands: Commands) -> None:
    """``punchlab chat``: a student's peer, typed into."""
    chat = commands.add_parser(
        "chat",
        help="register and chat with another peer (for a student)",
        description="Register with a rendezvous server, then type another peer's identifier "
        "to connect (or wait to be connected to), and chat line by line. Ctrl-D (the end of "
        "input) quits. Control characters in what the network sends are shown escaped, "
        "Python-style (\\x1b, \\r, \\u202e).",
    )
    chat.add_argument(
        "--server",
        default=f"http://127.0.0.1:{DEFAULT_HTTP_PORT}",
        help="server URL (default: %(default)s)",
    )
    chat.add_argument(
        "--peer",
        metavar="ID",
        help="connect to this identifier at once (default: ask for one, or wait)",
    )
    chat.add_argument("--port", type=_port, default=0, help="local UDP port (default: any)")
    chat.add_argument(
        "--name", default="peer", help="name of this peer in the trace (default: %(default)s)"
    )
    chat.add_argument(
        "--no-acks",
        action="store_true",
        help="send plain TEXT, unnumbered and unacknowledged, as the Go client does (default: "
        "with a punchlab partner, every line is acknowledged and shown sent / delivered / failed)",
    )
    chat.add_argument(
        "--original",
        action="store_true",
        help="behave like the original Go client: first HELLO after 3 s (default: punchlab's "
        "schedule, at once and then retried)",
    )
    chat.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for a connection (default: %(default)s)",
    )
    chat.add_argument(
        "--punch-timeout",
        type=_seconds,
        default=PeerConfig().punch_timeout,
        metavar="SECONDS",
        help="seconds to keep punching before giving up (default: %(default)s)",
    )
    chat.add_argument(
        "--trace",
        metavar="FILE",
        help="write every datagram to FILE (JSON Lines) on exit (default: not written)",
    )
    chat.add_argument("--pcap", metavar="FILE", help=PCAP_HELP)
    chat.set_defaults(handler=lambda args: asyncio.run(_chat(args)))


#: How much of an identifier is shown: a real one is a 36-character UUID.
ID_SHOWN = 100
#: How much of an error message is shown (a server's error text can be long).
ERROR_SHOWN = 500
#: Longest input line read at once; a longer one is refused, not buffered.
INPUT_LINE_BYTES = 64 * 1024


class _Input:
    """Lines of standard input, read without blocking the event loop.

    ``get`` returns ``None`` at the end of input, and again on every later
    call, so each stage of the chat sees the end. The queue is bounded, so a
    fast producer waits instead of filling memory.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        self.ended = asyncio.Event()

    async def put(self, line: str | None) -> None:
        """Queue a line, or ``None`` for the end (waits while the queue is full)."""
        await self._queue.put(line)
        if line is None:
            self.ended.set()

    async def get(self) -> str | None:
        """The next line, or ``None`` once input has ended."""
        line = await self._queue.get()
        if line is None:
            self._queue.put_nowait(None)
        return line

    def exhausted(self) -> bool:
        """Input has ended and no line before the end is left to read."""
        return self.ended.is_set() and self._queue.qsize() == 1


def _pollable(fd: int) -> bool:
    """Whether the event loop can watch ``fd``: not so for /dev/null or a regular file."""
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(fd, selectors.EVENT_READ)
        except (OSError, ValueError):
            return False
    return True


async def _pump_pipe(stream: TextIO, lines: _Input) -> None:
    """Read a terminal, pipe or socket through the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=INPUT_LINE_BYTES)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stream
    )
    try:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # longer than the limit: the reader has dropped it
                _say(f"(an input line longer than {INPUT_LINE_BYTES} bytes was ignored)")
                continue
            if not raw:
                break
            await lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    finally:
        transport.close()
    await lines.put(None)


async def _pump_file(stream: TextIO, lines: _Input) -> None:
    """Read what the event loop cannot watch (/dev/null, a file) in a thread.

    Such reads never wait for a person, so the thread never outlives the chat.
    """
    while line := await asyncio.to_thread(stream.readline, INPUT_LINE_BYTES):
        await lines.put(line.rstrip("\r\n"))
    await lines.put(None)


@contextlib.asynccontextmanager
async def _stdin_lines(stream: TextIO | None) -> AsyncIterator[_Input]:
    """Lines of ``stream`` as they come, whatever it is (terminal, pipe, file, /dev/null)."""
    lines = _Input()
    if stream is None:  # started with standard input closed: it has ended already
        await lines.put(None)
        yield lines
        return
    fd = stream.fileno()
    blocking = os.get_blocking(fd)
    pump = _pump_pipe if _pollable(fd) else _pump_file
    task = asyncio.create_task(pump(stream, lines))
    try:
        yield lines
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        os.set_blocking(fd, blocking)  # leave the terminal as the shell gave it


def _say(text: str) -> None:
    """Print a line; what the terminal's encoding cannot show is escaped, never fatal."""
    encoding = sys.stdout.encoding or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding), flush=True)


def _bye() -> int:
    """Say why we stop (the user may not know their input ended) and stop."""
    _say("End of input: leaving the chat.")
    return EXIT_OK


#: What the chat tells its user (failures are said elsewhere), each line's state included.
_TOLD = (
    Introduced,
    PeerAddressChanged,
    Connected,
    NatDiscovered,
    TextSent,
    TextDelivered,
    TextFailed,
)


def _chat_event(event: PeerEvent) -> None:
    """Say what the peer does, in the words the widgets use (failures are said elsewhere)."""
    if isinstance(event, _TOLD):
        text = tell(event)
        if text is not None:
            _say(text)


def _chat_config(args: argparse.Namespace) -> PeerConfig:
    """The peer's timing: --original's or ours, punching for --punch-timeout seconds;
    with --no-acks, plain TEXT as the Go program sends it (no ``reliable`` feature)."""
    fields: dict[str, Any] = {"punch_timeout": args.punch_timeout}
    if args.no_acks:
        fields["reliable"] = None
    return PeerConfig.seed_compatible(**fields) if args.original else PeerConfig(**fields)


async def _chat(args: argparse.Namespace) -> int:
    async with Peer(
        args.server,
        port=args.port,
        config=_chat_config(args),
        name=args.name,
        on_event=_chat_event,
        trace=Trace(max_events=PEER_TRACE_EVENTS, keep_data=bool(args.pcap)),
    ) as peer:
        try:
            return await _chat_session(peer, args)
        finally:
            _save_trace(peer.trace, args)


async def _register(peer: Peer, lines: _Input) -> str | None:
    """Our identifier, or ``None`` if input ends (with nothing left to read) first."""
    registering = asyncio.create_task(peer.register())
    ended = asyncio.create_task(lines.ended.wait())
    try:
        await asyncio.wait({registering, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not registering.done() and lines.exhausted():
            return None
        return await registering  # lines typed before the end are still to be acted on
    finally:
        registering.cancel()
        ended.cancel()


async def _chat_session(peer: Peer, args: argparse.Namespace) -> int:
    """Register, connect (or be connected to), then send typed lines until input ends."""
    _say(f"Registering with {printable(args.server)} ...")
    async with _stdin_lines(sys.stdin) as lines:
        my_id = await _register(peer, lines)
        if my_id is None:
            return _bye()
        _say(f"Your ID: {printable(my_id, ID_SHOWN)}")
        if args.peer:
            await peer.connect(args.peer, timeout=args.timeout)
        else:
            _say("Type a peer's ID and press Enter to connect, or wait to be connected to.")
            if not await _connect_or_wait(peer, lines, args.timeout):
                return _bye()
        _say("Type a message and press Enter; Ctrl-D quits.")
        printer = asyncio.create_task(_print_texts(peer))
        try:
            while (line := await lines.get()) is not None:
                if line:
                    await _send(peer, line)
            await _last_acks(peer)
        finally:
            printer.cancel()
    return _bye()


#: At the end of input, how long the chat waits for the last lines' acknowledgements.
LAST_ACKS = 2.0


async def _last_acks(peer: Peer) -> None:
    """Input ended (a pipe, Ctrl-D): give the last lines a moment to be acknowledged, so a
    piped line is not cut off by our own exit (what is still unacknowledged then is said)."""
    with contextlib.suppress(TimeoutError):
        await peer.wait_acknowledged(timeout=LAST_ACKS)


async def _send(peer: Peer, line: str) -> None:
    """Send one line; one that cannot be sent (too long) is said, not fatal."""
    try:
        await peer.send_text(line)
    except LocalProtocolError as exc:
        if peer.state is not PeerState.CONNECTED:
            raise  # the peer is gone: nothing more can be sent
        _say(f"Not sent: {printable(str(exc), ERROR_SHOWN)}")


async def _connect_or_wait(peer: Peer, lines: _Input, timeout: float) -> bool:
    """Either the user types an identifier or someone connects to us; False at end of input.

    Nothing the network does ends the wait: a failed incoming punch or a
    server's odd answer is said, and the user can type another ID.
    """
    waiting: asyncio.Task[None] | None = None
    typed: asyncio.Task[str | None] | None = None
    try:
        while True:
            waiting = waiting or asyncio.create_task(peer.wait_connected())
            typed = typed or asyncio.create_task(lines.get())
            await asyncio.wait({waiting, typed}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                if _incoming_connected(peer, waiting):
                    return True
                waiting = None
                continue
            line, typed = typed.result(), None
            if line is None:
                return False
            if not line.strip():
                continue
            waiting.cancel()
            waiting = None
            if await _dial(peer, line.strip(), timeout):
                return True
    finally:
        for task in (waiting, typed):
            if task is not None:
                task.cancel()


def _incoming_connected(peer: Peer, waiting: asyncio.Task[None]) -> bool:
    """Whether the peer that asked for us got through; if not, say why (we keep waiting)."""
    try:
        waiting.result()
    except ConnectFailed as exc:
        if peer.state is PeerState.CLOSED:
            raise  # nothing more will come
        address = peer.peer_address
        who = f"A peer at {format_address(address)}" if address else "A peer"
        _say(
            f"{who} asked to connect but the punch failed: {printable(str(exc), ERROR_SHOWN)}; "
            "still waiting. Type an ID, or wait."
        )
        return False
    return True


async def _dial(peer: Peer, peer_id: str, timeout: float) -> bool:
    """Connect to a typed identifier; on any failure say it (escaped) and return False."""
    _say(f"Connecting to {printable(peer_id, ID_SHOWN)} ...")
    try:
        await peer.connect(peer_id, timeout=timeout)
    except PunchlabError as exc:
        _say(f"Could not connect: {printable(str(exc), ERROR_SHOWN)}. Type another ID, or wait.")
        return False
    return True  # the core's Connected event said how long it took: one figure, measured once


async def _print_texts(peer: Peer) -> None:
    """Show each received line, escaped: it is the remote peer's, not the terminal's."""
    async for text in peer.texts():
        _say(f"Message: {printable(text)}")


# -- demo ----------------------------------------------------------------------------


def _add_demo(commands: Commands) -> None:
    """``punchlab demo``: a whole punch, simulated (or on loopback), told and drawn."""
    demo = commands.add_parser(
        "demo",
        help="punch through two simulated NATs, print the trace and draw the diagram",
        description="Run a whole punch on the simulated internet (two peers behind NATs and a "
        "public server), print what crossed the network, and write the sequence diagram to a "
        "PNG file. With --loopback, use real UDP sockets on this machine instead. Exit 0 when "
        "the peers connected, 1 when not, 2 for a usage error.",
    )
    for side in "ab":
        demo.add_argument(
            f"--nat-{side}",
            default="port-restricted-cone",
            choices=PRESET_NAMES,
            help=f"NAT in front of peer {side.upper()} (default: %(default)s)",
        )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument(
        "--latency",
        type=float,
        default=20.0,
        help="one-way internet latency in ms (default: %(default)s)",
    )
    demo.add_argument(
        "--loss",
        type=float,
        default=0.0,
        help="chance a datagram is lost on the internet, 0..1 (default: %(default)s)",
    )
    demo.add_argument(
        "--original",
        action="store_true",
        help="use the original algorithm: a 3 s HELLO ticker (default: punchlab's schedule)",
    )
    demo.add_argument(
        "--cgn",
        choices=("same", "different"),
        help="put both homes behind one carrier-grade NAT (same) or each behind its own "
        "(different), on RFC 6598's 100.64.0.0/10 (default: no carrier-grade NAT)",
    )
    _add_drawing_options(demo)
    demo.add_argument(
        "--loopback",
        action="store_true",
        help="real sockets on loopback, no NATs, no diagram (default: the simulator)",
    )
    demo.add_argument(
        "--trace", metavar="FILE", help="also write the trace to FILE, JSON Lines (default: not)"
    )
    demo.add_argument("--pcap", metavar="FILE", help=PCAP_HELP)
    demo.set_defaults(handler=_demo)


def _add_drawing_options(demo: argparse.ArgumentParser) -> None:
    """Where the demo's diagram goes and how much of the run it shows."""
    demo.add_argument(
        "--output",
        "-o",
        default="punchlab-demo.png",
        metavar="PNG",
        help="where to write the diagram (default: %(default)s)",
    )
    demo.add_argument(
        "--all",
        action="store_true",
        help="draw every datagram (default: fold repeated HEART-BEATs and retries)",
    )
    demo.add_argument(
        "--no-ladder",
        action="store_true",
        help="punch directly and stop there: no port prediction, birthday probing or relay "
        "(default: climb the traversal ladder; the first line names the route that won)",
    )
    demo.add_argument(
        "--window",
        type=float,
        metavar="MS",
        help="draw only the first MS milliseconds (default: the whole run if it connects, "
        "else up to 300 ms after the request to connect)",
    )


def _demo(args: argparse.Namespace) -> int:
    """Exit 0 when the peers connected and 1 when not, so a script can tell (as netlab's)."""
    if args.loopback:
        return asyncio.run(_loopback_demo(args))
    return _simulated_demo(args)


def _simulated_demo(args: argparse.Namespace) -> int:
    """Punch through two simulated NATs; print the trace; draw the ladder diagram."""
    import matplotlib

    matplotlib.use("Agg")
    from punchlab.diagram import save_sequence_diagram
    from punchlab.sim import punch

    if not 0.0 <= args.loss <= 1.0:
        print("punchlab: --loss is a probability between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    result = punch(
        args.nat_a,
        args.nat_b,
        seed=args.seed,
        latency=args.latency / 1000.0,
        loss=args.loss,
        seed_compatible=args.original,
        texts=2,
        discover=not args.no_ladder,
        config=PeerConfig(ladder=False) if args.no_ladder and not args.original else None,
        cgn=args.cgn,
    )
    algorithm = "original algorithm" if args.original else "punchlab"
    _say(f"{result.summary()} ({algorithm}, seed {args.seed})")
    _say("")
    _say(result.trace.table())
    _say("")
    for box in result.network.nat_boxes:
        _say(box.show(result.network.now))
    window = None
    if args.window is not None:
        window = (0.0, args.window / 1000.0)
    elif not result.connected:
        # A failing punch retries for seconds; its story is told in the first few RTTs.
        asked = next((e.time for e in result.trace if e.msg_type == "HTTP"), 0.0)
        window = (0.0, asked + 0.3)
    written = save_sequence_diagram(
        result.trace,
        args.output,
        collapse=not args.all,
        time_range=window,
        title=result.summary(),
    )
    _say(f"\nsequence diagram written to {written}")
    _save_trace(result.trace, args)
    return EXIT_OK if result.connected else EXIT_FAILED


def _save_trace(trace: Trace, args: argparse.Namespace) -> None:
    """--trace and --pcap: the run as JSON Lines, and as a capture for Wireshark."""
    if args.trace:
        _say(f"trace written to {trace.save(args.trace)}")
    if getattr(args, "pcap", None):
        from punchlab.pcap import decode_rules, sightings, write_pcapng

        packets = sightings(trace)  # once, for the file and for its decode rules
        _say(f"capture written to {write_pcapng(packets, args.pcap)}")
        rules = " ".join(f"-d {rule}" for rule in decode_rules(packets))
        _say(f"  read it with: tshark -r {args.pcap} {rules}")


async def _loopback_demo(args: argparse.Namespace) -> int:
    trace = Trace(keep_data=bool(args.pcap))
    async with (
        RendezvousServer("127.0.0.1", 0, 0, trace=trace) as server,
        Peer(server.url, host="127.0.0.1", name="A", trace=trace) as a,
        Peer(server.url, host="127.0.0.1", name="B", trace=trace) as b,
    ):
        id_a, id_b = await a.register(), await b.register()
        _say(f"A registered as {id_a}\nB registered as {id_b}")
        started = time.perf_counter()
        await asyncio.gather(a.connect(id_b, timeout=10), b.wait_connected(timeout=10))
        _say(f"A and B connected in {(time.perf_counter() - started) * 1000:.1f} ms")
        await a.send_text("hello from A")
        _say(f"B got: {await b.receive_text(timeout=5)}")
        await b.send_text("hello from B")
        _say(f"A got: {await a.receive_text(timeout=5)}")
    _say("")
    _say(trace.table())
    _save_trace(trace, args)
    return EXIT_OK


# -- lab -----------------------------------------------------------------------------


def _add_lab(commands: Commands) -> None:
    """``punchlab lab``: the course for a student who has only pip."""
    lab = commands.add_parser(
        "lab",
        help="copy the course's notebooks into a folder and open them in JupyterLab",
        description="Copy the course's notebooks into FOLDER the first time, and open "
        "JupyterLab there on the first one. A notebook already in FOLDER is yours and is "
        "never overwritten (delete it to get the original back). Needs the 'lab' extra: "
        f"{course_files.INSTALL_HINT}.",
    )
    lab.add_argument(
        "folder",
        nargs="?",
        default=course_files.DEFAULT_FOLDER,
        metavar="FOLDER",
        help="where your copy of the course lives (default: %(default)s, in the current folder)",
    )
    lab.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="do not open a browser; open the printed address yourself (default: open one)",
    )
    lab.add_argument(
        "--port",
        type=_port,
        help="JupyterLab's port (default: JupyterLab's, 8888 or the next free one)",
    )
    lab.set_defaults(handler=_lab)


def _lab(args: argparse.Namespace) -> int:
    """Copy the course (keeping the student's files), say where it is, start JupyterLab."""
    if not course_files.jupyterlab_installed():
        print(f"punchlab lab needs JupyterLab: {course_files.INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = course_files.copy_course(Path(args.folder))
    except course_files.CourseMissing as exc:
        print(f"punchlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.lines():
        _say(line)
    _say(f"Opening JupyterLab on {report.first}; press Ctrl-C twice to stop it.")
    command = course_files.lab_command(
        report.folder, report.first, port=args.port, browser=args.browser
    )
    return course_files.launch(command)
