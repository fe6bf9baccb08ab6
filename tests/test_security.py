"""An attacker on loopback against the real server and peers (issue: close the hijacks).

Each test plays one finding of the attack report and fails on the code that
had it. Loopback stands for the attacker's position: every local process
shares the peers' IP, as does everyone behind the same (carrier-grade) NAT.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from punchlab.aio import Peer, RendezvousServer
from punchlab.aio.load import register_many
from punchlab.aio.peer import MAX_QUEUED_TEXTS, PEER_TRACE_EVENTS
from punchlab.messages import (
    Address,
    Message,
    MessageType,
    UnknownMessageType,
    decode,
    describe,
    encode,
)
from punchlab.peer import PeerAddressChanged, PeerCore, PeerState, TextReceived
from punchlab.server import (
    DatagramIgnored,
    PeerRegistered,
    RendezvousCore,
    ServerLimits,
    TooManyIntroductions,
)
from punchlab.trace import EventKind, Trace
from tests.conftest import PeerFactory, introduce, ipv6_loopback_works
from tests.gopeer import GoPeer, go_datagram

# -- the attacker's tools ----------------------------------------------------------------


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    """A UDP socket on the victims' IP, another port: any local process, any NAT neighbour."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def nothing_received(sock: socket.socket) -> bool:
    try:
        sock.recv(65535)
    except BlockingIOError:
        return True
    return False


async def connected_pair(make_peer: PeerFactory) -> tuple[Peer, Peer]:
    a, b = await make_peer("A"), await make_peer("B")
    assert b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
    return a, b


async def flush(sender: Peer, receiver: Peer, marker: str) -> None:
    """Send ``marker`` and wait for it: loopback delivers in order of sending, so
    everything the attacker sent before has been handled by ``receiver`` when it arrives."""
    await sender.send_text(marker)
    assert await receiver.receive_text(timeout=5) == marker


# -- 1. token-less packets from the peer's IP ---------------------------------------------


async def test_a_stranger_on_the_peers_ip_cannot_move_or_join_a_punchlab_chat(
    make_peer: PeerFactory, attacker: socket.socket
) -> None:
    a, b = await connected_pair(make_peer)
    assert a.core is not None and b.local_address is not None
    b_address = a.peer_address
    for kind in ("HELLO", "SUCCESS", "HEART-BEAT"):
        attacker.sendto(go_datagram(kind), a.local_address)
    attacker.sendto(go_datagram("TEXT", "forged line\n"), a.local_address)
    attacker.sendto(encode(Message(MessageType.HELLO, token="0" * 16)), a.local_address)
    await flush(b, a, "marker from B")
    assert a.peer_address == b_address  # not moved to the attacker
    await a.send_text("for B only")
    assert await b.receive_text(timeout=5) == "for B only"
    assert nothing_received(attacker)  # never answered, never sent a line
    assert a.core.ignored >= 5


async def test_a_stranger_cannot_take_over_a_chat_with_a_go_peer(
    server: RendezvousServer, make_peer: PeerFactory, attacker: socket.socket
) -> None:
    """A Go peer has no token: its address is fixed once connected, and only it is heard."""
    a = await make_peer("A")
    go = await GoPeer.start(server.url, hello_delay=0.05)
    try:
        assert go.id is not None and a.core is not None
        await a.connect(go.id, timeout=5)
        async with asyncio.timeout(5):
            await go.connected.wait()
        for kind in ("HELLO", "SUCCESS"):
            attacker.sendto(go_datagram(kind), a.local_address)
        attacker.sendto(go_datagram("TEXT", "forged line\n"), a.local_address)
        go.send_text("marker from Go")
        assert await a.receive_text(timeout=5) == "marker from Go"
        assert a.peer_address == go.address
        await a.send_text("for the Go peer only")
        async with asyncio.timeout(5):
            assert await go.texts.get() == "for the Go peer only\n"
        assert nothing_received(attacker)
    finally:
        go.close()


async def test_both_clicking_connect_at_once_connects_with_either_token(
    make_peer: PeerFactory,
) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    assert a.id is not None and b.id is not None
    await asyncio.gather(a.connect(b.id, timeout=5), b.connect(a.id, timeout=5))
    await flush(a, b, "from A")
    await flush(b, a, "from B")
    assert a.core is not None and b.core is not None
    assert len(a.core._tokens) <= 2 and len(b.core._tokens) <= 2


# -- 2. posing as the initiator ----------------------------------------------------------


async def post_start(url: str, body: object, local_ip: str = "127.0.0.1") -> tuple[int, object]:
    connector = aiohttp.TCPConnector(local_addr=(local_ip, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(f"{url}/start-communication", json=body) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_knowing_two_identifiers_is_not_enough_to_introduce_them(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    a, b = await make_peer("A"), await make_peer("B")
    for body in (
        {"peerInitiator": a.id, "peer": b.id},
        {"peerInitiator": a.id, "peer": b.id, "secret": "0" * 32},
    ):
        status, answer = await post_start(server.url, body)
        assert status == 403 and isinstance(answer, dict) and "error" in answer
    assert server.core.introductions == 0
    assert b.state is PeerState.REGISTERED  # no INITIATE_CHAT reached B


async def test_an_established_chat_cannot_be_taken_over_through_the_server(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    a, b = await connected_pair(make_peer)
    status, _ = await post_start(server.url, {"peerInitiator": a.id, "peer": b.id})
    assert status == 403
    await flush(a, b, "still A and B")
    await flush(b, a, "yes")


async def test_a_go_initiator_is_accepted_only_from_the_address_it_registered_from(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    b = await make_peer("B")
    go = await GoPeer.start(server.url)
    try:
        body = {"peerInitiator": go.id, "peer": b.id}
        status, _ = await post_start(server.url, body, local_ip="127.0.0.2")
        assert status == 403
        assert server.core.introductions == 0
        status, answer = await post_start(server.url, body, local_ip="127.0.0.1")
        assert status == 200 and isinstance(answer, dict) and "public" in answer
    finally:
        go.close()


# -- registration table under attack (finding 5), on real sockets ---------------------------


def spoofed_udp(source: tuple[str, int], destination: tuple[str, int], payload: bytes) -> bytes:
    """An IPv4 + UDP packet with any source (UDP checksum 0: none, allowed over IPv4)."""
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(source[0]),
        socket.inet_aton(destination[0]),
    )
    return header + udp


@pytest.fixture
def raw_socket() -> Iterator[socket.socket]:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        pytest.skip("spoofing source addresses needs root")
    yield sock
    sock.close()


async def test_a_new_peer_registers_while_the_table_is_under_attack(
    raw_socket: socket.socket,
) -> None:
    limits = ServerLimits(max_registrations=2000, max_registrations_per_ip=500)
    registration = go_datagram("REGISTRATION", "")
    handled = 0

    def count(event: object) -> None:
        nonlocal handled
        handled += isinstance(event, PeerRegistered | DatagramIgnored)

    async with RendezvousServer("127.0.0.1", 0, 0, limits=limits, on_event=count) as server:
        assert server.udp_address is not None
        sent = 0
        for attacker in range(40):
            for port in range(150):
                source = (f"127.0.0.{10 + attacker}", 20000 + port)
                packet = spoofed_udp(source, server.udp_address, registration)
                raw_socket.sendto(packet, ("127.0.0.1", 0))
                sent += 1
            async with asyncio.timeout(10):  # let the server read: socket buffers are finite
                while handled < sent * 0.9:
                    await asyncio.sleep(0.001)
        assert len(server.core) == limits.max_registrations  # the flood filled the table
        result = await register_many(server.udp_address, 1, timeout=10)
        assert result.failures == [] and len(result.identifiers) == 1
        assert server.core.lookup(result.identifiers[0]) is not None


# -- a peer's trace is bounded (finding 7) ----------------------------------------------


@pytest.mark.slow
async def test_junk_datagrams_cannot_fill_a_peers_memory(
    server: RendezvousServer, attacker: socket.socket
) -> None:
    async with Peer(server.url, host="127.0.0.1") as peer:  # its own default trace
        await peer.register(timeout=5)
        assert peer.core is not None and peer.local_address is not None
        junk = b'{"type":"TEXT","payload":"' + b"x" * 200 + b'"}'
        sent = 0
        while peer.core.ignored < PEER_TRACE_EVENTS * 2:
            for _ in range(50):  # a batch the socket's receive buffer holds
                attacker.sendto(junk, peer.local_address)
            sent += 50
            async with asyncio.timeout(10):  # socket buffers are finite: let the peer read
                while peer.core.ignored < sent * 0.9:
                    await asyncio.sleep(0.001)
        assert len(peer.trace) <= PEER_TRACE_EVENTS * 5 // 4


def test_a_notebook_can_still_keep_every_event() -> None:
    peer = Peer("http://127.0.0.1:8088", trace=Trace())
    assert peer.trace.max_events is None


# -- reflection and log floods (findings 8 and 9) --------------------------------------------


@pytest.fixture
async def go_victim(server: RendezvousServer) -> AsyncIterator[tuple[socket.socket, str]]:
    """A Go client that registered once and then fell silent."""
    assert server.udp_address is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, go_datagram("REGISTRATION", ""), server.udp_address)
    async with asyncio.timeout(5):
        answer = decode(await loop.sock_recv(sock, 65535))
    yield sock, answer.payload
    sock.close()


async def test_introductions_to_one_peer_are_rate_limited_and_logged_sparingly(
    server: RendezvousServer,
    go_victim: tuple[socket.socket, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="punchlab.server")
    victim, victim_id = go_victim
    assert server.udp_address is not None
    attacker = await register_many(server.udp_address, 1)
    attacker_id = attacker.identifiers[0]
    body = {
        "peerInitiator": attacker_id,
        "peer": victim_id,
        "secret": attacker.secrets[attacker_id],
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    statuses: collections.Counter[int] = collections.Counter()
    async with aiohttp.ClientSession() as http:
        for _ in range(2000):
            async with http.post(f"{server.url}/start-communication", json=body) as response:
                statuses[response.status] += 1
    elapsed = loop.time() - started
    limits = server.core.limits
    allowed = limits.introduction_burst + elapsed * limits.introductions_per_second
    assert statuses[200] <= allowed + 1 and statuses[429] >= 2000 - allowed - 1
    # What reached the victim: the marker's answer ends the count.
    await loop.sock_sendto(victim, go_datagram("REGISTRATION", ""), server.udp_address)
    notices = 0
    async with asyncio.timeout(5):
        while (message := decode(await loop.sock_recv(victim, 65535))).type is not (
            MessageType.REGISTRATION
        ):
            notices += message.type is MessageType.INITIATE_CHAT
    assert notices == statuses[200] <= allowed + 1
    lines = [r for r in caplog.records if r.name == "punchlab.server"]
    assert len(lines) <= 60, f"{len(lines)} log lines for 2,000 requests"


def test_a_punching_peer_answers_a_hello_with_a_bounded_multiple_of_its_bytes() -> None:
    """Answering a HELLO with SUCCESS and our own HELLO is what makes the punch fast;
    the README states the factor this measures (a spoofed HELLO needs the token)."""
    core = PeerCore(("203.0.113.1", 8089))
    core.register(0.0)
    answer = Message(MessageType.REGISTRATION, "my-id", features="ack,secret,token", secret="s")
    core.receive_datagram(encode(answer), core.server_address, 0.01)
    token = "0123456789abcdef"
    core.start_punching(("198.51.100.7", 62001), 1.0, token, "ack,large,token")
    core.datagrams_to_send(1.0)
    hello = encode(Message(MessageType.HELLO, token=token))
    core.receive_datagram(hello, ("192.0.2.66", 40000), 1.01)  # from any address: the token
    out = core.datagrams_to_send(1.01)
    assert {decode(data).type for data, _ in out} == {MessageType.SUCCESS, MessageType.HELLO}
    assert sum(len(data) for data, _ in out) / len(hello) <= 2.2


# -- the Go client's 1024-byte buffer ------------------------------------------------------


async def test_a_long_line_reaches_a_go_peer_in_pieces_it_can_read(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    a = await make_peer("A")
    go = await GoPeer.start(server.url, hello_delay=0.05)
    try:
        assert go.id is not None
        await a.connect(go.id, timeout=5)
        line = "é" * 1500  # 3,000 bytes of UTF-8
        pieces = await a.send_text(line)
        assert pieces >= 3
        received = ""
        async with asyncio.timeout(5):
            while len(received) < len(line):
                received += (await go.texts.get()).rstrip("\n")
        assert received == line  # the stand-in drops datagrams over its 1024-byte buffer
    finally:
        go.close()


async def test_a_connected_peer_reports_no_address_change_after_junk(
    make_peer: PeerFactory, attacker: socket.socket
) -> None:
    events: list[object] = []
    a, b = await connected_pair(make_peer)
    a.add_listener(events.append)
    attacker.sendto(json.dumps({"type": "HELLO", "payload": "..."}).encode(), a.local_address)
    await flush(b, a, "marker")
    assert not [e for e in events if isinstance(e, PeerAddressChanged)]


# -- the rules in the core, one by one ------------------------------------------------------

SERVER = ("203.0.113.1", 8089)
PARTNER = ("198.51.100.7", 62001)
PARTNER_NEW_PORT = ("198.51.100.7", 62999)
ELSEWHERE = ("192.0.2.66", 62001)
TOKEN, OTHER_TOKEN, THIRD_TOKEN = "1" * 16, "2" * 16, "3" * 16
SECRET = "5" * 32


def introduced(partner_features: str | None, token: str | None = TOKEN) -> PeerCore:
    """A punchlab peer introduced to PARTNER (``partner_features=None``: a Go partner)."""
    core = PeerCore(SERVER)
    core.register(0.0)
    answer = Message(MessageType.REGISTRATION, "me", features="ack,secret,token", secret=SECRET)
    core.receive_datagram(encode(answer), SERVER, 0.01)
    notice = Message(
        MessageType.INITIATE_CHAT, "198.51.100.7:62001", token, partner_features, SECRET
    )
    core.receive_datagram(encode(notice), SERVER, 1.0)
    core.datagrams_to_send(1.0)
    return core


def feed(
    core: PeerCore, kind: MessageType, source: Address, now: float, **keys: str
) -> list[Message]:
    core.receive_datagram(encode(Message(kind, **keys)), source, now)
    return [decode(data) for data, _ in core.datagrams_to_send(now)]


def test_between_punchlab_peers_a_datagram_without_the_token_is_never_adopted_or_answered() -> None:
    core = introduced("ack,large,token")
    assert core.checks_tokens
    assert feed(core, MessageType.HELLO, PARTNER, 1.01) == []  # even from the given address
    assert feed(core, MessageType.HELLO, PARTNER, 1.01, token=OTHER_TOKEN) == []
    assert feed(core, MessageType.SUCCESS, PARTNER_NEW_PORT, 1.02, token=TOKEN) == []
    assert core.state is PeerState.CONNECTED and core.peer_address == PARTNER_NEW_PORT
    feed(core, MessageType.TEXT, PARTNER_NEW_PORT, 1.03, payload="no token\n")
    assert not any(isinstance(e, TextReceived) for e in drain_events(core))
    core.send_text("hello", 1.04)
    sent = [decode(data) for data, _ in core.datagrams_to_send(1.04)]
    assert [m.token for m in sent] == [TOKEN]  # our own datagrams carry it


def test_a_go_partner_is_adopted_only_while_punching_and_only_on_the_given_ip() -> None:
    core = introduced(None)
    assert not core.checks_tokens
    assert feed(core, MessageType.HELLO, ELSEWHERE, 1.01) == []  # another IP: ignored
    answers = feed(core, MessageType.HELLO, PARTNER_NEW_PORT, 1.02)  # symmetric NAT: new port
    assert MessageType.SUCCESS in {m.type for m in answers}
    assert core.peer_address == PARTNER_NEW_PORT
    feed(core, MessageType.SUCCESS, PARTNER_NEW_PORT, 1.03)
    assert core.state is PeerState.CONNECTED
    # Connected: the address is fixed; the same IP from another port is a stranger.
    assert feed(core, MessageType.HELLO, PARTNER, 1.04) == []
    feed(core, MessageType.TEXT, PARTNER, 1.05, payload="forged\n")
    assert core.peer_address == PARTNER_NEW_PORT
    assert not any(isinstance(e, TextReceived) for e in drain_events(core))


def test_two_introductions_to_the_same_partner_are_both_valid_and_a_third_is_not() -> None:
    core = introduced("ack,large,token")
    for token in (OTHER_TOKEN, THIRD_TOKEN):
        notice = Message(
            MessageType.INITIATE_CHAT, "198.51.100.7:62001", token, "ack,large,token", SECRET
        )
        core.receive_datagram(encode(notice), SERVER, 1.01)
    core.datagrams_to_send(1.01)
    assert feed(core, MessageType.HELLO, PARTNER, 1.02, token=THIRD_TOKEN) == []
    answers = feed(core, MessageType.HELLO, PARTNER, 1.03, token=OTHER_TOKEN)
    assert [m.token for m in answers] == [OTHER_TOKEN, OTHER_TOKEN]  # answered with its token


def test_a_connected_peer_ignores_a_new_introduction() -> None:
    core = introduced("ack,large,token")
    feed(core, MessageType.SUCCESS, PARTNER, 1.01, token=TOKEN)
    notice = Message(
        MessageType.INITIATE_CHAT, "192.0.2.66:62001", OTHER_TOKEN, "ack,large,token", SECRET
    )
    core.receive_datagram(encode(notice), SERVER, 2.0)
    acks = [decode(data).type for data, _ in core.datagrams_to_send(2.0)]
    assert acks == [MessageType.INITIATE_CHAT_ACK]  # acknowledged, so the server stops resending
    assert core.state is PeerState.CONNECTED and core.peer_address == PARTNER
    assert feed(core, MessageType.HELLO, PARTNER, 2.1, token=OTHER_TOKEN) == []


def drain_events(core: PeerCore) -> list[object]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


# -- the Go client still works, both ways -----------------------------------------------------


async def test_a_go_initiator_connects_to_a_punchlab_peer_and_they_chat_both_ways(
    server: RendezvousServer, make_peer: PeerFactory
) -> None:
    b = await make_peer("B")
    go = await GoPeer.start(server.url, hello_delay=0.05)
    try:
        assert b.id is not None
        await asyncio.gather(go.connect(b.id), b.wait_connected(timeout=5))
        async with asyncio.timeout(5):
            await go.connected.wait()
        go.send_text("from Go")
        assert await b.receive_text(timeout=5) == "from Go"
        await b.send_text("from punchlab")
        async with asyncio.timeout(5):
            assert await go.texts.get() == "from punchlab\n"
    finally:
        go.close()


@pytest.mark.skipif(not ipv6_loopback_works(), reason="this machine has no IPv6 loopback")
async def test_a_go_client_over_ipv4_is_recognised_by_a_server_on_both_families() -> None:
    """The UDP socket sees the client as ::ffff:127.0.0.1; it is the same host as 127.0.0.1."""
    async with (
        RendezvousServer("::", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="B") as b,
    ):
        await b.register(timeout=5)
        go = await GoPeer.start(server.url, hello_delay=0.05)
        try:
            assert go.id is not None and b.id is not None
            registration = server.core.lookup(go.id)
            assert registration is not None and registration.address[0] == "127.0.0.1"
            await asyncio.gather(go.connect(b.id), b.wait_connected(timeout=5))
            assert server.core.introductions == 1
        finally:
            go.close()


@pytest.mark.parametrize("secret", [None, "6" * 32])
@pytest.mark.parametrize("punching", [False, True])
def test_an_introduction_without_our_secret_is_forged_and_ignored(
    secret: str | None, punching: bool
) -> None:
    """Someone who can forge the server's source address cannot introduce us to
    themselves, nor slip a token of theirs into a punch under way (review M1)."""
    core = introduced("ack,large,token") if punching else None
    if core is None:
        core = PeerCore(SERVER)
        core.register(0.0)
        answer = Message(MessageType.REGISTRATION, "me", features="ack,secret,token", secret=SECRET)
        core.receive_datagram(encode(answer), SERVER, 0.01)
        core.datagrams_to_send(0.01)
    state = core.state
    forged = Message(
        MessageType.INITIATE_CHAT, "198.51.100.7:62001", THIRD_TOKEN, "ack,large,token", secret
    )
    assert feed_raw(core, forged, 1.5) == []  # not even acknowledged
    assert core.state is state
    assert feed(core, MessageType.SUCCESS, ELSEWHERE, 1.6, token=THIRD_TOKEN) == []
    assert core.state is state


def feed_raw(core: PeerCore, message: Message, now: float) -> list[Message]:
    core.receive_datagram(encode(message), SERVER, now)
    return [decode(data) for data, _ in core.datagrams_to_send(now)]


# -- what a second review found ---------------------------------------------------------------


def test_a_strangers_long_message_type_is_kept_short_in_traces_and_errors() -> None:
    data = json.dumps({"type": "X" * 8000, "payload": ""}).encode()
    kind, _ = describe(data)
    assert len(kind) <= 40
    with pytest.raises(UnknownMessageType) as caught:
        decode(data)
    assert len(str(caught.value)) < 100


def test_a_trace_table_shows_network_text_escaped() -> None:
    trace = Trace()
    trace.datagram(  # what a stranger can put in a type and a payload
        EventKind.DELIVERED,
        0.0,
        "A",
        ("192.0.2.66", 1),
        ("127.0.0.1", 2),
        json.dumps({"type": "\x1b]0;pwned\x07", "payload": "\x1b[2J\rforged"}).encode(),
    )
    table = trace.table()
    assert "\x1b" not in table and "\x07" not in table and "\r" not in table
    assert "\\x1b" in table


@pytest.mark.parametrize(
    "request_keys",
    [
        {},
        {"features": ""},
        {"features": "ack"},
        {"features": "x"},
        {"features": "ack,large,token"},
    ],
)
@pytest.mark.parametrize(("rfc5780_port", "bound"), [(None, 2.9), (65535, 3.2)])
def test_a_registration_answer_is_a_bounded_multiple_of_its_request(
    request_keys: dict[str, str], rfc5780_port: int | None, bound: float
) -> None:
    core = RendezvousCore(rfc5780_port=rfc5780_port)
    request = json.dumps(
        {"type": "REGISTRATION", "payload": "", **request_keys}, separators=(",", ":")
    ).encode()
    core.receive_datagram(request, ("192.0.2.66", 5000), 0.0)
    [(answer, _)] = core.datagrams_to_send(0.0)
    assert len(answer) / len(request) <= bound  # the bounds the README states


def test_one_ipv6_slash_64_is_one_share_of_the_table() -> None:
    core = RendezvousCore(limits=ServerLimits(max_registrations_per_ip=3))
    heart_beat = go_datagram("HEART-BEAT")
    for host in range(1, 6):
        address = (f"2001:db8:0:1::{host}", 5000)
        core.receive_datagram(go_datagram("REGISTRATION", ""), address, 0.0)
        core.receive_datagram(heart_beat, address, 0.1)  # live: not evictable
    assert len(core) == 3 and core.rejected["address full"] == 2
    core.receive_datagram(go_datagram("REGISTRATION", ""), ("2001:db8:0:2::1", 5000), 0.2)
    assert len(core) == 4  # another /64 is another share


def test_one_initiator_asking_again_and_again_cannot_keep_others_from_a_peer() -> None:
    core = RendezvousCore()
    ids = {}
    for name, host in (("eve", "192.0.2.66"), ("bob", "198.51.100.7"), ("friend", "203.0.113.9")):
        core.receive_datagram(go_datagram("REGISTRATION", ""), (host, 5000), 0.0)
        [(answer, _)] = core.datagrams_to_send(0.0)
        ids[name] = decode(answer).payload
    statuses = []
    for attempt in range(6):
        try:
            introduce(core, ids["eve"], ids["bob"], attempt * 0.1)
            statuses.append(200)
        except TooManyIntroductions:
            statuses.append(429)
    assert statuses.count(200) == core.limits.pair_introduction_burst
    introduce(core, ids["friend"], ids["bob"], 0.7)  # Bob's budget is not used up


async def test_a_partner_cannot_fill_memory_with_lines_nobody_reads(
    make_peer: PeerFactory,
) -> None:
    a, b = await connected_pair(make_peer)
    heard: list[str] = []
    a.add_listener(
        lambda event: heard.append(event.text) if isinstance(event, TextReceived) else None
    )
    lines = MAX_QUEUED_TEXTS + 100
    for index in range(lines):
        await b.send_text(f"line {index}")
        if index % 50 == 49:
            async with asyncio.timeout(5):  # paced: loopback socket buffers are finite
                while len(heard) < index + 1:
                    await asyncio.sleep(0.001)
    assert len(heard) == lines  # listeners (widgets) see every line
    assert a.texts_dropped == 100
    assert await a.receive_text(timeout=1) == "line 100"  # the oldest unread were dropped


async def test_a_flood_of_junk_from_many_addresses_is_logged_in_a_few_lines(
    raw_socket: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="punchlab.server")
    handled = 0

    def count(event: object) -> None:
        nonlocal handled
        handled += isinstance(event, DatagramIgnored)

    async with RendezvousServer("127.0.0.1", 0, 0, on_event=count) as server:
        assert server.udp_address is not None
        for index in range(500):
            source = (f"127.0.{1 + index // 250}.{1 + index % 250}", 40000)
            raw_socket.sendto(spoofed_udp(source, server.udp_address, b"junk"), ("127.0.0.1", 0))
            if index % 50 == 49:
                async with asyncio.timeout(5):
                    while handled < index + 1:
                        await asyncio.sleep(0.001)
    lines = [r for r in caplog.records if "rejected datagram" in r.getMessage()]
    assert 1 <= len(lines) <= 5, len(lines)
