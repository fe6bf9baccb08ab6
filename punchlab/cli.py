"""``punchlab serve | chat | demo``: the command line for a classroom.

A teacher runs ``punchlab serve`` on a machine the class can reach; each
student runs ``punchlab chat --server http://TEACHER:8088``, reads their
identifier, and types a classmate's to connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

from punchlab import __version__, scripted
from punchlab.aio import DEFAULT_HTTP_PORT, DEFAULT_UDP_PORT, Peer, RendezvousServer
from punchlab.aio.server import SERVER_TRACE_EVENTS
from punchlab.errors import ConnectFailed, LocalProtocolError, PunchlabError, UnknownPeer
from punchlab.messages import format_address
from punchlab.peer import Connected, Introduced, PeerAddressChanged, PeerConfig, PeerEvent
from punchlab.sim.nat import PRESET_NAMES
from punchlab.trace import Trace

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="punchlab",
        description="Learn, teach and see UDP hole punching.",
        epilog="Run 'punchlab COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"punchlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the rendezvous server (for a teacher)",
        description="Run the rendezvous server: peers register over UDP and ask to be "
        "introduced over HTTP. Registrations and introductions are logged as they happen.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    serve.add_argument(
        "--http-port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port (default: %(default)s)"
    )
    serve.add_argument(
        "--udp-port", type=int, default=DEFAULT_UDP_PORT, help="UDP port (default: %(default)s)"
    )
    serve.add_argument(
        "--ttl",
        type=float,
        default=30.0,
        help="seconds a silent registration lives (default: %(default)s)",
    )
    serve.add_argument(
        "--trace", metavar="FILE", help="write every datagram to FILE (JSON Lines) on exit"
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="log only warnings")

    chat = commands.add_parser(
        "chat",
        help="register and chat with another peer (for a student)",
        description="Register with a rendezvous server, then type another peer's identifier "
        "to connect (or wait to be connected to), and chat line by line. Ctrl-D quits.",
    )
    chat.add_argument(
        "--server",
        default=f"http://127.0.0.1:{DEFAULT_HTTP_PORT}",
        help="server URL (default: %(default)s)",
    )
    chat.add_argument(
        "--peer", metavar="ID", help="connect to this identifier at once instead of asking"
    )
    chat.add_argument("--port", type=int, default=0, help="local UDP port (default: any)")
    chat.add_argument(
        "--name", default="peer", help="name of this peer in the trace (default: %(default)s)"
    )
    chat.add_argument(
        "--original",
        action="store_true",
        help="behave like the original Go client (3 s HELLO ticker)",
    )
    chat.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for a connection (default: %(default)s)",
    )
    chat.add_argument(
        "--trace", metavar="FILE", help="write every datagram to FILE (JSON Lines) on exit"
    )

    demo = commands.add_parser(
        "demo",
        help="punch through two simulated NATs, print the trace and draw the diagram",
        description="Run a whole punch on the simulated internet (two peers behind NATs and a "
        "public server), print what crossed the network, and write the sequence diagram to a "
        "PNG file. With --loopback, use real UDP sockets on this machine instead.",
    )
    demo.add_argument(
        "--nat-a",
        default="port-restricted-cone",
        choices=PRESET_NAMES,
        help="NAT in front of peer A (default: %(default)s)",
    )
    demo.add_argument(
        "--nat-b",
        default="port-restricted-cone",
        choices=PRESET_NAMES,
        help="NAT in front of peer B (default: %(default)s)",
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
        "--original", action="store_true", help="use the original algorithm (3 s HELLO ticker)"
    )
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
        "--window",
        type=float,
        metavar="MS",
        help="draw only the first MS milliseconds (default: the whole run if it connects, "
        "else up to 300 ms after the request to connect)",
    )
    demo.add_argument(
        "--loopback",
        action="store_true",
        help="real sockets on loopback instead of the simulator (no NATs, no diagram)",
    )
    demo.add_argument("--trace", metavar="FILE", help="also write the trace to FILE (JSON Lines)")
    scripted.add_parser(commands)
    from punchlab.netlab.cli import add_parser as add_netlab_parser

    add_netlab_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runner = {"serve": _serve, "chat": _chat, "demo": _loopback_demo}.get(args.command)
    try:
        if args.command == "peer":
            return scripted.main(args)
        if args.command == "netlab":
            return int(args.run(args))
        if args.command == "demo" and not args.loopback:
            return _simulated_demo(args)
        assert runner is not None
        return asyncio.run(runner(args))
    except BrokenPipeError:  # output piped into `head`: stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except PunchlabError as exc:
        print(f"punchlab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"punchlab: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- serve ---------------------------------------------------------------------------


def _lan_addresses() -> list[str]:
    """Addresses students might use to reach this machine (best effort, no traffic)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family=socket.AF_INET)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos if not str(info[4][0]).startswith("127.")})


async def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    trace = Trace(max_events=SERVER_TRACE_EVENTS)
    server = RendezvousServer(
        args.host, args.udp_port, args.http_port, registration_ttl=args.ttl, trace=trace
    )
    await server.start()
    assert server.http_address is not None
    assert server.udp_address is not None
    _say(f"punchlab server ready: HTTP {server.url}, UDP port {server.udp_address[1]}")
    for address in _lan_addresses():
        print(
            f"  students: punchlab chat --server http://{address}:{server.http_address[1]}",
            flush=True,
        )
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
        if args.trace:
            print(f"trace written to {trace.save(args.trace)}")
    return EXIT_OK


# -- chat ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _stdin_lines(stream: TextIO) -> AsyncIterator[asyncio.Queue[str | None]]:
    """Lines of standard input on a queue (``None`` at end), without blocking the loop."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport = None
    task = None
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), stream
        )

        async def pump() -> None:
            while line := await reader.readline():
                await queue.put(line.decode("utf-8", "replace").rstrip("\r\n"))
            await queue.put(None)

        task = asyncio.create_task(pump())
    except ValueError:  # a regular file cannot be watched; it never blocks either
        for line in stream:
            queue.put_nowait(line.rstrip("\r\n"))
        queue.put_nowait(None)
    try:
        yield queue
    finally:
        if task is not None:
            task.cancel()
        if transport is not None:
            transport.close()


def _say(text: str) -> None:
    print(text, flush=True)


def _chat_event(event: PeerEvent) -> None:
    if isinstance(event, Introduced) and not event.initiator:
        _say(f"A peer at {format_address(event.peer_address)} wants to talk; punching...")
    elif isinstance(event, PeerAddressChanged):
        _say(f"The peer answers from {format_address(event.new)} (its NAT chose a new port).")
    elif isinstance(event, Connected):
        _say(f"Connected to {format_address(event.peer_address)} in {event.elapsed * 1000:.0f} ms.")


async def _chat(args: argparse.Namespace) -> int:
    config = PeerConfig.seed_compatible() if args.original else PeerConfig()
    async with Peer(
        args.server, port=args.port, config=config, name=args.name, on_event=_chat_event
    ) as peer:
        try:
            return await _chat_session(peer, args)
        finally:
            if args.trace:
                _say(f"trace written to {peer.trace.save(args.trace)}")


async def _chat_session(peer: Peer, args: argparse.Namespace) -> int:
    _say(f"Registering with {args.server} ...")
    my_id = await peer.register()
    _say(f"Your ID: {my_id}")
    async with _stdin_lines(sys.stdin) as lines:
        if args.peer:
            await peer.connect(args.peer, timeout=args.timeout)
        else:
            _say("Type a peer's ID and press Enter to connect, or wait to be connected to.")
            if not await _connect_or_wait(peer, lines, args.timeout):
                return EXIT_OK
        _say("Type a message and press Enter; Ctrl-D quits.")
        printer = asyncio.create_task(_print_texts(peer))
        try:
            while (line := await lines.get()) is not None:
                if line:
                    await peer.send_text(line)
        finally:
            printer.cancel()
    return EXIT_OK


async def _connect_or_wait(peer: Peer, lines: asyncio.Queue[str | None], timeout: float) -> bool:
    """Either the user types an identifier or someone connects to us; False at end of input."""
    waiting = asyncio.create_task(peer.wait_connected())
    while True:
        typed = asyncio.create_task(lines.get())
        done, _ = await asyncio.wait({waiting, typed}, return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            typed.cancel()
            waiting.result()
            return True
        line = typed.result()
        if line is None:
            waiting.cancel()
            return False
        if not line.strip():
            continue
        waiting.cancel()
        _say(f"Connecting to {line.strip()} ...")
        started = time.perf_counter()
        try:
            await peer.connect(line.strip(), timeout=timeout)
        except (UnknownPeer, ConnectFailed, LocalProtocolError) as exc:
            _say(f"Could not connect: {exc}. Type another ID, or wait.")
            waiting = asyncio.create_task(peer.wait_connected())
            continue
        _say(f"Connected after {(time.perf_counter() - started) * 1000:.0f} ms.")
        return True


async def _print_texts(peer: Peer) -> None:
    async for text in peer.texts():
        _say(f"Message: {text}")


# -- demo ----------------------------------------------------------------------------


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
    if args.trace:
        _say(f"trace written to {result.trace.save(args.trace)}")
    return EXIT_OK


async def _loopback_demo(args: argparse.Namespace) -> int:
    trace = Trace()
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
    if args.trace:
        _say(f"trace written to {trace.save(args.trace)}")
    return EXIT_OK
