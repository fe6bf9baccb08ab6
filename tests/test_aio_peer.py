"""Real peers on loopback UDP against the real server: connect, chat, fail clearly."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from punchlab.aio import Peer, RendezvousServer
from punchlab.aio.runner import CoreRunner
from punchlab.errors import (
    ConnectFailed,
    LocalProtocolError,
    RegistrationFailed,
    ServerError,
    ServerUnreachable,
    UnknownPeer,
)
from punchlab.peer import Disconnected, PeerConfig, PeerEvent, PeerState
from punchlab.trace import EventKind, Trace
from tests.conftest import PeerFactory


async def test_two_peers_register_connect_and_chat_both_ways(make_peer: PeerFactory) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    assert a.id and b.id and a.id != b.id
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    assert a.state is b.state is PeerState.CONNECTED
    assert a.peer_address == b.local_address and b.peer_address == a.local_address

    await a.send_text("hello B")
    assert await b.receive_text(timeout=2) == "hello B"
    await b.send_text("hello A")
    assert await a.receive_text(timeout=2) == "hello A"


async def test_texts_iterator_yields_lines_in_order_until_close(make_peer: PeerFactory) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    assert b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    for line in ("one", "two", "three"):
        await a.send_text(line)
    received = []
    async with asyncio.timeout(2):
        async for text in b.texts():
            received.append(text)
            if len(received) == 3:
                await b.close()
    assert received == ["one", "two", "three"]


async def test_the_trace_shows_the_punch(make_peer: PeerFactory) -> None:
    trace = Trace()
    a, b = await make_peer("A", trace=trace), await make_peer("B", trace=trace)
    assert b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    delivered = trace.filter(kinds=[EventKind.DELIVERED])
    assert delivered.count("delivered", "SUCCESS") >= 2
    assert {e.actor for e in delivered.filter(types=["HELLO"])} == {"A", "B"}


async def test_unknown_peer_id_is_a_clear_error_and_changes_nothing(make_peer: PeerFactory) -> None:
    a = await make_peer("A")
    with pytest.raises(UnknownPeer, match="no-such-id"):
        await a.connect("no-such-id", timeout=2)
    assert a.state is PeerState.REGISTERED


async def test_connect_before_register_is_a_local_error(server: RendezvousServer) -> None:
    async with Peer(server.url) as peer:
        with pytest.raises(LocalProtocolError, match="register"):
            await peer.connect("x")


async def test_register_with_a_vanished_server_fails_fast(server: RendezvousServer) -> None:
    url = server.url
    await server.close()
    async with Peer(url, host="127.0.0.1") as peer:
        with pytest.raises(ServerUnreachable, match="cannot reach"):
            await peer.register(timeout=5)


async def test_connect_after_the_server_vanished_fails_fast(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    assert b.id is not None
    await server.close()
    with pytest.raises(ServerUnreachable):
        await a.connect(b.id, timeout=5)


@contextlib.asynccontextmanager
async def udp_port_answering(answer: object) -> AsyncIterator[str]:
    """An HTTP server on loopback whose /get-udp-port answers ``answer``; yields its URL."""
    app = web.Application()

    async def udp_port(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app.router.add_get("/get-udp-port", udp_port)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_server_whose_udp_never_answers_gives_registration_failed() -> None:
    config = PeerConfig(registration_attempts=2, registration_retry=0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        async with (
            udp_port_answering({"port": silent.getsockname()[1]}) as url,
            Peer(url, host="127.0.0.1", config=config) as peer,
        ):
            with pytest.raises(RegistrationFailed, match="2 REGISTRATION attempts"):
                await peer.register(timeout=5)
            assert peer.state is PeerState.FAILED


async def test_punching_a_peer_that_vanished_fails_at_the_deadline(make_peer: PeerFactory) -> None:
    a = await make_peer("A", config=PeerConfig(punch_timeout=0.5))
    b = await make_peer("B")
    assert b.id is not None
    await b.close()  # still registered at the server, but nobody answers
    with pytest.raises(ConnectFailed, match="no SUCCESS"):
        await a.connect(b.id, timeout=5)
    assert a.state is PeerState.FAILED


async def test_a_peer_that_goes_silent_is_noticed(make_peer: PeerFactory) -> None:
    gone = asyncio.Event()

    def watch(event: PeerEvent) -> None:
        if isinstance(event, Disconnected):
            gone.set()

    config = PeerConfig(heartbeat_interval=0.05, peer_timeout=0.3)
    a = await make_peer("A", config=config, on_event=watch)
    b = await make_peer("B", config=config)
    assert b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    await b.close()
    async with asyncio.timeout(3):
        await gone.wait()
    assert a.state is PeerState.DISCONNECTED


async def test_wait_connected_times_out_clearly(make_peer: PeerFactory) -> None:
    a = await make_peer("A")
    with pytest.raises(ConnectFailed, match=r"not connected after 0\.2 s"):
        await a.wait_connected(timeout=0.2)


async def test_punchlab_connects_with_an_original_go_style_peer(
    make_peer: PeerFactory,
) -> None:
    original = PeerConfig.seed_compatible(original_interval=0.1)
    a = await make_peer("A")
    b = await make_peer("B", config=original)
    assert b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    await b.send_text("from the original")
    assert await a.receive_text(timeout=2) == "from the original"
    await a.send_text("from punchlab")
    assert await b.receive_text(timeout=2) == "from punchlab"


@pytest.mark.parametrize("answer", [{"port": True}, {"port": 1.5}, {"port": "8089"}, {"port": 0}])
async def test_a_udp_port_that_is_not_a_port_is_a_clear_error(answer: dict[str, object]) -> None:
    """``True`` is an int in Python; it must not become UDP port 1."""
    async with (
        udp_port_answering(answer) as url,
        Peer(url, host="127.0.0.1") as peer,
    ):
        with pytest.raises(ServerError, match="no usable UDP port"):
            await peer.register(timeout=5)
        assert peer.core is None  # nothing was opened or sent


async def test_an_early_timer_gives_the_core_the_time_it_asked_for() -> None:
    """asyncio may run a timer up to its clock resolution early; the core must not
    see a time before its deadline (it would do nothing and re-arm, forever)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + 60.0

    class Core:
        def __init__(self) -> None:
            self.told: list[float] = []

        def receive_datagram(self, data: bytes, address: object, now: float) -> None: ...
        def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
            return []

        def get_timer(self) -> float | None:
            return due if not self.told else None

        def handle_timer(self, now: float) -> None:
            self.told.append(now)

        def next_event(self) -> None:
            return None

    core = Core()
    runner = await CoreRunner.open(
        core, "127.0.0.1", 0, actor="t", trace=Trace(), on_event=lambda e, c: None
    )
    try:
        fired: list[Callable[[], None]] = []
        # Catch what the runner hands asyncio, to fire it a minute early.
        runner.timer._schedule = lambda when, callback: fired.append(callback)
        runner.pump()
        assert runner.timer.due == due and len(fired) == 1
        fired[0]()  # as if asyncio ran it now
        assert core.told == [due]
    finally:
        runner.close()
