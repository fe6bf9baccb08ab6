"""The notebook panels, driven as a student would (clicks, typing), without a browser."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Callable

import matplotlib

matplotlib.use("Agg")

import pytest

from punchlab.aio import Peer, RendezvousServer
from punchlab.display import format_duration
from punchlab.peer import Connected, PeerConfig, PeerState, TextReceived
from punchlab.sim import Network
from punchlab.sim.session import AsyncSimPeer, SimSession
from punchlab.widgets import LiveDiagram, PeerPanel, ServerPanel, connect_panels, side_by_side


def simulated(
    seed: int = 0, nat_b: str = "port-restricted-cone", config: PeerConfig | None = None
) -> tuple[SimSession, Network]:
    net = Network(seed)
    net.add_server()
    net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"), config=config)
    net.add_peer("Bob", behind=net.add_nat("NAT B", nat_b), config=config)
    return SimSession(net), net


#: The punch alone, no traversal ladder: a port-restricted cone and a symmetric NAT fail.
DIRECT_ONLY = PeerConfig(ladder=False)


async def text_arrives(peer: Peer | AsyncSimPeer) -> asyncio.Event:
    arrived = asyncio.Event()
    peer.add_listener(lambda e: arrived.set() if isinstance(e, TextReceived) else None)
    return arrived


async def click_through(a: PeerPanel, b: PeerPanel) -> None:
    """Register both, paste B's ID into A, connect, send one line from A."""
    a.register_button.click()
    b.register_button.click()
    await a.idle()
    await b.idle()
    assert b.peer.id is not None
    assert b.peer.id in b.my_id.value
    a.peer_id.value = b.peer.id
    assert not a.connect_button.disabled
    a.connect_button.click()
    await a.idle()


async def test_two_simulated_panels_register_connect_and_chat() -> None:
    session, net = simulated()
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    assert alice.connect_button.disabled and alice.send_button.disabled
    await click_through(alice, bob)
    assert alice.status_text.startswith("Connected to 198.51.100.2:5000 in")
    assert bob.status_text.startswith("Connected to 198.51.100.1:5000 in")
    assert not alice.send_button.disabled

    alice.message.value = "hello Bob"
    alice.send_button.click()
    await alice.idle()
    assert alice.log.value == "you: hello Bob  [delivered]\n"  # acknowledged by Bob
    assert bob.log.value == "peer: hello Bob\n"
    assert alice.message.value == ""


async def test_the_simulated_run_is_the_same_every_time() -> None:
    traces = []
    for _ in range(2):
        session, net = simulated(seed=5)
        alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
        await connect_panels(alice, bob)
        traces.append(net.trace.to_jsonl())
    assert traces[0] == traces[1]


async def test_panels_on_real_sockets_chat() -> None:
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="Alice") as a,
        Peer(server.url, host="127.0.0.1", name="Bob") as b,
    ):
        alice, bob = PeerPanel(a), PeerPanel(b)
        await click_through(alice, bob)
        assert a.state is b.state is PeerState.CONNECTED
        assert "Connected to 127.0.0.1:" in alice.status_text
        arrived = await text_arrives(b)
        alice.message.value = "over loopback"
        alice.send_button.click()
        await alice.idle()
        async with asyncio.timeout(2):
            await arrived.wait()
        assert bob.log.value == "peer: over loopback\n"


async def test_an_unknown_peer_id_is_shown_as_an_error() -> None:
    session, net = simulated()
    alice = PeerPanel(session.peer(net.peers[0]))
    alice.register_button.click()
    await alice.idle()
    alice.peer_id.value = "not-a-real-id"
    alice.connect_button.click()
    await alice.idle()
    assert "No peer has the ID 'not-a-real-id'" in alice.status_text
    assert "#b00020" in alice.status.value  # shown in red
    assert alice.peer.state is PeerState.REGISTERED
    assert not alice.connect_button.disabled  # free to try another ID


async def test_an_empty_or_own_id_is_refused_before_asking_the_server() -> None:
    session, net = simulated()
    alice = PeerPanel(session.peer(net.peers[0]))
    await alice.register()
    await alice.connect("   ")
    assert alice.status_text == "Type the other peer's ID first."
    await alice.connect(alice.peer.id or "")
    assert "your own ID" in alice.status_text
    assert not [e for e in net.trace if e.msg_type == "HTTP"]


async def test_an_unreachable_server_is_shown_as_an_error() -> None:
    server = RendezvousServer("127.0.0.1", 0, 0)
    await server.start()
    url = server.url
    await server.close()
    async with Peer(url, host="127.0.0.1", name="Alice") as peer:
        panel = PeerPanel(peer)
        panel.register_button.click()
        await panel.idle()
        assert panel.status_text.startswith(
            "Server unreachable: cannot reach the rendezvous server"
        )
        assert not panel.register_button.disabled  # can try again


async def test_a_failed_punch_is_explained() -> None:
    session, net = simulated(nat_b="symmetric", config=DIRECT_ONLY)
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    assert alice.status_text.startswith("The punch failed: no SUCCESS")
    assert alice.status_is_error
    assert alice.progress.layout.visibility == "hidden"


async def test_a_failed_punch_is_explained_on_the_other_side_too() -> None:
    """Bob (symmetric NAT) was introduced, not asked: his panel must not say 'punching…' forever."""
    session, net = simulated(nat_b="symmetric", config=DIRECT_ONLY)
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    assert bob.peer.state is PeerState.FAILED
    status = bob.status_text
    assert status.startswith("The punch failed:"), status  # that it failed
    assert "no SUCCESS" in status and "198.51.100.1:5000" in status  # why, and with whom
    assert "dropped by a NAT" in status
    assert "Try: Connect again" in status and "symmetric NAT" in status  # what to try
    assert bob.status_is_error
    assert not bob.connect_button.disabled  # and he can try


async def test_the_server_panel_lists_registrations_and_introductions() -> None:
    session, net = simulated()
    panel = ServerPanel(net.servers[0])
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    panel.flush()
    assert "2 registered now · 2 registrations (0 repeated) · 1 introductions" in (
        panel.counts.value
    )
    assert alice.peer.id in panel.table.value and "198.51.100.1:5000" in panel.table.value
    assert "introduced" in panel.log.value


async def test_the_server_panel_follows_a_real_server() -> None:
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="Alice") as a,
    ):
        panel = ServerPanel(server)
        peer_id = await a.register()
        panel.flush()
        assert peer_id in panel.table.value
        assert "1 registrations" in panel.counts.value


async def test_the_server_panel_counts_a_repeated_registration_once() -> None:
    """A REGISTRATION retried because its answer was lost is the same peer, counted apart."""
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        panel = ServerPanel(server)
        assert server.udp_address is not None
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            for _ in range(3):
                await loop.sock_sendto(
                    sock, b'{"type":"REGISTRATION","payload":""}', server.udp_address
                )
                async with asyncio.timeout(5):
                    await loop.sock_recv(sock, 65535)
        panel.flush()
        assert panel.registered == 1 and panel.repeated == 2
        assert "1 registrations (2 repeated)" in panel.counts.value


async def test_a_flood_of_junk_does_not_stall_the_teachers_panel() -> None:
    """A review measured 10 ms per junk datagram with 1,500 peers: every event redrew."""
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        panel = ServerPanel(server)
        runner = server._runner
        assert runner is not None
        for index in range(3000):  # as the receive path does, without the socket
            server.core.receive_datagram(b"junk", ("192.0.2.66", 1000 + index), 0.0)
            runner.pump(b"junk")
        assert panel.redraws <= 3  # the first at once, then at most one pending
        panel.flush()
        assert sum(panel.refused.values()) == 3000
        assert panel.log.value.count("refused a datagram") == 1
        assert "3000 refused datagrams" in panel.counts.value


async def test_live_diagram_redraws_when_the_peers_act(monkeypatch: pytest.MonkeyPatch) -> None:
    session, net = simulated()
    alice, bob = (session.peer(p) for p in net.peers)
    diagram = LiveDiagram(net.trace, collapse=True)
    drawn = asyncio.Event()
    original = diagram.refresh

    def refresh() -> None:
        original()
        drawn.set()

    monkeypatch.setattr(diagram, "refresh", refresh)
    diagram.follow(alice, bob, delay=0.0)
    await alice.register()
    async with asyncio.timeout(5):
        await drawn.wait()
    assert diagram.redraws >= 1
    assert bytes(diagram.image.value).startswith(b"\x89PNG")


async def test_side_by_side_holds_the_panels() -> None:
    session, net = simulated()
    panels = [PeerPanel(session.peer(p)) for p in net.peers]
    box = side_by_side(*panels)
    assert list(box.children) == [p.widget for p in panels]


@pytest.fixture
async def paced() -> AsyncIterator[SimSession]:
    session, _ = simulated()
    session.speed = 200.0  # 200 virtual seconds per real second
    session.start()
    yield session
    await session.stop()


async def test_a_paced_session_moves_time_with_the_clock(paced: SimSession) -> None:
    alice, bob = (paced.peer(p) for p in paced.network.peers)
    await asyncio.gather(alice.register(timeout=30), bob.register(timeout=30))
    assert bob.id is not None
    await alice.connect(bob.id, timeout=10)
    assert alice.state is PeerState.CONNECTED
    before = paced.now
    await paced.run_until(lambda: paced.now > before + 6.0, 30.0)
    beats = paced.network.trace.filter(types=["HEART-BEAT"], kinds=["delivered"])
    assert len(beats) >= 2  # time passed on its own, and heart-beats flowed


async def test_an_error_inside_a_paced_simulation_reaches_whoever_waits() -> None:
    session, net = simulated()
    session.speed = 1.0

    def broken_node() -> None:
        raise ValueError("a node's bug")

    net.scheduler.after(0.01, broken_node)
    session.start()
    try:
        with pytest.raises(RuntimeError, match="the simulation stopped") as info:
            await session.run_until(lambda: False, 30.0)  # not a 31 s wait for a timeout
        assert isinstance(info.value.__cause__, ValueError)
    finally:
        await session.stop()


async def test_a_pacer_that_died_unheard_is_logged_when_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, net = simulated()
    session.speed = 1.0
    died = asyncio.Event()

    def broken_node() -> None:
        died.set()
        raise ValueError("a node's bug")

    net.scheduler.after(0.01, broken_node)
    session.start()
    await asyncio.wait_for(died.wait(), 5.0)
    await session.stop()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == ["the paced simulation had stopped"]
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is ValueError


def test_a_step_session_refuses_to_start() -> None:
    session, _ = simulated()
    with pytest.raises(RuntimeError, match="step-mode"):
        session.start()


async def test_sim_peer_has_the_real_peers_errors() -> None:
    from punchlab.errors import ConnectFailed, UnknownPeer

    session, net = simulated(nat_b="symmetric", config=DIRECT_ONLY)
    alice, bob = (session.peer(p) for p in net.peers)
    await alice.register()
    bob_id = await bob.register()
    with pytest.raises(UnknownPeer):
        await alice.connect("nobody")
    with pytest.raises(ConnectFailed):
        await alice.connect(bob_id)
    assert PeerConfig().punch_timeout <= net.now


# -- text from the network is shown as text ---------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07<img src=x onerror=alert(1)> <b>bold</b>\r\nyou: forged \u202egnp.exe"
HOSTILE_SHOWN = (
    r"\x1b]0;pwned\x07<img src=x onerror=alert(1)> <b>bold</b>\r\nyou: forged \u202egnp.exe"
)


async def test_a_chat_line_with_markup_and_controls_is_shown_as_one_line_of_text() -> None:
    session, net = simulated()
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    alice.message.value = HOSTILE
    alice.send_button.click()
    await alice.idle()
    # A Textarea shows its value as text, so markup stays markup-free text; the
    # controls (and the newline that would forge a "you:" line) are escaped.
    assert bob.log.value == f"peer: {HOSTILE_SHOWN}\n"
    assert alice.log.value == f"you: {HOSTILE_SHOWN}  [delivered]\n"


async def test_a_hostile_servers_identifier_and_error_are_escaped_in_html() -> None:
    from tests.standin import StandInServer

    error = '<img src=x onerror="alert(1)">\x1b[2J\u202e'
    async with (
        StandInServer(
            registration_answer="<b>id</b>\x1b]0;pwned\x07",
            start_status=500,
            start_body=json.dumps({"error": error}).encode(),
        ) as standin,
        Peer(standin.url, host="127.0.0.1", name="Alice") as peer,
    ):
        panel = PeerPanel(peer)
        panel.register_button.click()
        await panel.idle()
        assert "&lt;b&gt;id&lt;/b&gt;\\x1b]0;pwned\\x07</code>" in panel.my_id.value
        await panel.connect("someone")
    status = str(panel.status.value)
    assert "<img" not in status and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in status
    assert panel.status_text.endswith('<img src=x onerror="alert(1)">\\x1b[2J\\u202e')
    for widget in (panel.my_id, panel.status):
        assert not [c for c in str(widget.value) if ord(c) < 0x20 or c == "\u202e"]


# -- callbacks run wherever the kernel runs them; the work runs on the peer's loop -----------


class SubshellThread:
    """A thread with its own running event loop, as a kernel subshell runs widget callbacks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="subshell-test")

    def __enter__(self) -> SubshellThread:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def run(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on this thread, inside its running loop, and wait until it returns."""

        async def call() -> None:
            callback()

        asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=5)


class ConnectedWatch:
    """Each peer's Connected event: when it came, on which loop, and the time it measured."""

    def __init__(self, *peers: Peer) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.loops: dict[str, asyncio.AbstractEventLoop] = {}
        self.elapsed: dict[str, float] = {}
        for peer in peers:
            self.events[peer.name] = asyncio.Event()
            peer.add_listener(lambda event, name=peer.name: self._heard(name, event))

    def _heard(self, name: str, event: object) -> None:
        if isinstance(event, Connected):
            self.loops[name] = asyncio.get_running_loop()
            self.elapsed[name] = event.elapsed
            self.events[name].set()

    async def wait(self, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            for event in self.events.values():
                await event.wait()


async def test_connect_clicked_on_a_subshell_thread_runs_on_the_peers_loop() -> None:
    """JupyterLab 4.6's default: a click's callback runs on a subshell with another loop."""
    owner = asyncio.get_running_loop()
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="Alice") as a,
        Peer(server.url, host="127.0.0.1", name="Bob") as b,
    ):
        alice, bob = PeerPanel(a), PeerPanel(b)
        await asyncio.gather(alice.register(), bob.register())  # sockets made on this loop
        assert b.id is not None
        alice.peer_id.value = b.id
        watch = ConnectedWatch(a, b)
        with SubshellThread() as subshell:
            await asyncio.to_thread(subshell.run, alice.connect_button.click)
            async with asyncio.timeout(10):
                await alice.idle()
        await watch.wait()
        assert watch.loops == {"Alice": owner, "Bob": owner}
        assert alice.status_text.startswith("Connected to 127.0.0.1:"), alice.status_text
        assert bob.status_text.startswith("Connected to 127.0.0.1:"), bob.status_text


async def test_a_line_typed_on_a_subshell_thread_is_sent_from_the_peers_loop() -> None:
    session, net = simulated()
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    with SubshellThread() as subshell:

        def press_enter() -> None:
            alice.message.value = "from a subshell"  # what Enter does to the box's value

        await asyncio.to_thread(subshell.run, press_enter)
        async with asyncio.timeout(10):
            await alice.idle()
    assert bob.log.value == "peer: from a subshell\n"


class BrokenPeer(AsyncSimPeer):
    """A peer whose connect fails as aiohttp does when called from the wrong loop."""

    async def connect(self, peer_id: str, timeout: float | None = None) -> None:
        raise RuntimeError("Timeout context manager should be used inside a task")


async def test_any_exception_in_a_panels_task_is_shown_in_red_with_its_type() -> None:
    session, net = simulated()
    panel = PeerPanel(BrokenPeer(session, net.peers[0]))
    panel.register_button.click()
    await panel.idle()
    panel.peer_id.value = "someone"
    panel.connect_button.click()
    await panel.idle()
    assert panel.status_text == (
        "RuntimeError: Timeout context manager should be used inside a task"
    )
    assert panel.status_is_error
    assert panel.progress.layout.visibility == "hidden"
    assert not panel.connect_button.disabled  # the student can try again


async def test_an_exception_while_registering_is_shown_and_register_works_again() -> None:
    session, net = simulated()
    peer = session.peer(net.peers[0])

    async def broken(timeout: float | None = None) -> str:
        raise KeyError("no such thing")

    real_register = peer.register
    peer.register = broken  # type: ignore[method-assign]
    panel = PeerPanel(peer)
    panel.register_button.click()
    await panel.idle()
    assert panel.status_text == "KeyError: 'no such thing'"
    assert panel.status_is_error
    assert not panel.register_button.disabled
    peer.register = real_register  # type: ignore[method-assign]
    panel.register_button.click()
    await panel.idle()
    assert peer.state is PeerState.REGISTERED


# -- what the message box does ----------------------------------------------------------------


async def test_enter_in_the_message_box_sends_the_line() -> None:
    session, net = simulated()
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    # The box updates its value only when the line is submitted (Enter): that is the send.
    assert alice.message.continuous_update is False
    alice.message.value = "sent with Enter"
    await alice.idle()
    assert bob.log.value == "peer: sent with Enter\n"
    assert alice.log.value == "you: sent with Enter  [delivered]\n"
    assert alice.message.value == ""
    # Clicking Send takes the focus from the box, so its value arrives first: sent once.
    alice.message.value = "then clicked"
    alice.send_button.click()
    await alice.idle()
    assert bob.log.value == "peer: sent with Enter\npeer: then clicked\n"


# -- one time figure -------------------------------------------------------------------------

TIME_FIGURE = re.compile(r"\d+(?:\.\d+)? ms")


def test_durations_keep_the_digits_that_matter() -> None:
    assert format_duration(0.00042) == "0.42 ms"  # a loopback punch is not "0 ms"
    assert format_duration(0.0031) == "3.1 ms"
    assert format_duration(0.044) == "44 ms"
    assert format_duration(0.0) == "0 ms"


async def test_each_side_shows_one_connect_time_the_one_its_core_measured() -> None:
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="Alice") as a,
        Peer(server.url, host="127.0.0.1", name="Bob") as b,
    ):
        watch = ConnectedWatch(a, b)
        alice, bob = PeerPanel(a), PeerPanel(b)
        await click_through(alice, bob)
        await watch.wait()
        for panel in (alice, bob):
            shown = TIME_FIGURE.findall(panel.status_text)
            assert shown == [format_duration(watch.elapsed[panel.peer.name])], panel.status_text


async def test_what_the_peer_learns_of_its_nat_goes_in_the_log() -> None:
    from punchlab.peer import NatDiscovered
    from punchlab.stun.discovery import DiscoveryResult

    net = Network(seed=0)
    net.add_server()
    session = SimSession(net)
    panel = PeerPanel(session.peer(net.add_peer("Alice")))
    found = DiscoveryResult(
        mapping="endpoint-independent", filtering="address-dependent", behind_nat=True
    )
    panel._on_event(NatDiscovered(found))
    assert "endpoint-independent mapping, address-dependent filtering" in panel.log.value


async def test_a_relayed_connection_says_so_in_both_panels() -> None:
    session, net = simulated(nat_b="symmetric")
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    for panel in (alice, bob):
        assert panel.peer.state is PeerState.CONNECTED
        assert "through the server's relay" in panel.status_text
        assert "route: relayed" in panel.status_text


async def test_the_server_panel_shows_the_relay_at_work() -> None:
    session, net = simulated(nat_b="symmetric")
    server = ServerPanel(net.servers[0])
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    server.flush()
    relayed = net.servers[0].core.relay.relayed
    assert relayed > 0 and f"{relayed} relayed datagrams" in server.counts.value
    assert "relaying from" in server.log.value


async def test_a_line_to_a_peer_that_is_gone_shows_as_failed_after_its_tries() -> None:
    """The sender's log keeps each line's state: sent, then failed once the peer is gone."""
    session, net = simulated()
    alice, bob = (PeerPanel(session.peer(p)) for p in net.peers)
    await connect_panels(alice, bob)
    net.peers[1].close()  # Bob leaves without a word
    await alice.send("anyone?")
    assert alice.log.value == "you: anyone?  [sent]\n"
    await session.advance(35.0)  # past the 30 s liveness timeout
    assert alice.log.value == "you: anyone?  [failed after 6 tries: the peer is gone]\n"
