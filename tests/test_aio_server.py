"""The asyncio rendezvous server on loopback: real UDP sockets and real HTTP.

Nothing here sleeps for a fixed time. "Nothing was sent" is shown by a later
marker exchange: UDP on loopback keeps order, so if the server had sent an
INITIATE_CHAT it would arrive before the answer to a REGISTRATION sent after
the HTTP request returned.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from punchlab.aio.server import MAX_BODY_BYTES, RendezvousServer
from punchlab.messages import Address
from punchlab.server import NOTICE_RETRANSMIT_DELAYS, RegistrationExpired, ServerEvent
from punchlab.trace import EventKind

WAIT = 2.0


# -- helpers --------------------------------------------------------------------------


def dgram(kind: str, payload: str = "...", **extra: Any) -> bytes:
    return json.dumps({"type": kind, "payload": payload, **extra}).encode()


def addr(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


class UdpClient(asyncio.DatagramProtocol):
    """A bare UDP socket on 127.0.0.1 that queues what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.address: Address = ("127.0.0.1", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sockname = transport.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1])

    def datagram_received(self, data: bytes, address: Any) -> None:
        self.queue.put_nowait((data, (address[0], address[1])))

    def send(self, data: bytes, destination: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, destination)

    async def recv_raw(self) -> tuple[bytes, Address]:
        async with asyncio.timeout(WAIT):
            return await self.queue.get()

    async def recv(self) -> tuple[dict[str, Any], Address]:
        data, source = await self.recv_raw()
        return json.loads(data), source

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


ClientFactory = Callable[[], Awaitable[UdpClient]]


@pytest.fixture
async def server() -> AsyncIterator[RendezvousServer]:
    async with RendezvousServer("127.0.0.1", 0, 0, rng=random.Random(0)) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        yield session


@pytest.fixture
async def udp_client() -> AsyncIterator[ClientFactory]:
    clients: list[UdpClient] = []

    async def make() -> UdpClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


async def register(server: RendezvousServer, client: UdpClient, features: str | None = None) -> str:
    assert server.udp_address is not None
    extra = {} if features is None else {"features": features}
    client.send(dgram("REGISTRATION", "", **extra), server.udp_address)
    message, source = await client.recv()
    assert source == server.udp_address
    assert message["type"] == "REGISTRATION", message
    return str(message["payload"])


async def assert_nothing_pending(server: RendezvousServer, client: UdpClient, peer_id: str) -> None:
    """Prove nothing reached ``client`` so far: the next datagram is the marker's answer."""
    assert server.udp_address is not None
    client.send(dgram("REGISTRATION", ""), server.udp_address)
    message, source = await client.recv()
    assert (message, source) == (
        {"type": "REGISTRATION", "payload": peer_id},
        server.udp_address,
    ), "the client received something before the marker's answer"


async def start(
    http: aiohttp.ClientSession, server: RendezvousServer, body: Any, *, raw: bool = False
) -> tuple[int, Any, aiohttp.ClientResponse]:
    data = body if raw else json.dumps(body).encode()
    async with http.post(f"{server.url}/start-communication", data=data) as response:
        payload = await response.json(content_type=None)
        return response.status, payload, response


def assert_json_error(response: aiohttp.ClientResponse, payload: Any, status: int) -> None:
    assert response.status == status
    assert response.content_type == "application/json"
    assert isinstance(payload, dict)
    assert isinstance(payload.get("error"), str)
    assert payload["error"]


def sent_notices(server: RendezvousServer) -> int:
    return server.trace.count(EventKind.SENT, "INITIATE_CHAT")


def assert_sent_nothing_but_registration_answers(server: RendezvousServer) -> None:
    """The server sent no datagram to anyone except the answers to REGISTRATION."""
    sent = server.trace.filter(kinds=[EventKind.SENT])
    assert [(e.dst, e.msg_type) for e in sent if e.msg_type != "REGISTRATION"] == []


# -- HTTP basics ------------------------------------------------------------------------


async def test_get_udp_port_returns_the_bound_udp_port(
    server: RendezvousServer, http: aiohttp.ClientSession
) -> None:
    assert server.udp_address is not None
    assert server.udp_address[1] != 0
    async with http.get(f"{server.url}/get-udp-port") as response:
        assert response.status == 200
        assert await response.json() == {"port": server.udp_address[1]}


async def test_server_binds_loopback_on_chosen_ports(server: RendezvousServer) -> None:
    assert server.udp_address is not None
    assert server.http_address is not None
    assert server.udp_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.http_address[1]}"


# -- UDP registration -------------------------------------------------------------------


async def test_registration_over_udp_gets_an_identifier(
    server: RendezvousServer, udp_client: ClientFactory
) -> None:
    client = await udp_client()
    peer_id = await register(server, client)
    assert uuid.UUID(peer_id).version == 4
    registration = server.core.lookup(peer_id)
    assert registration is not None
    assert registration.address == client.address


async def test_repeated_registration_over_udp_keeps_the_identifier(
    server: RendezvousServer, udp_client: ClientFactory
) -> None:
    client = await udp_client()
    first = await register(server, client)
    assert await register(server, client) == first
    assert len(server.core) == 1


# -- start-communication ----------------------------------------------------------------


async def test_start_communication_introduces_the_peers(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    initiator, peer = await udp_client(), await udp_client()
    initiator_id = await register(server, initiator)
    peer_id = await register(server, peer)

    status, body, _ = await start(http, server, {"peerInitiator": initiator_id, "peer": peer_id})

    assert status == 200
    assert body["public"] == f"127.0.0.1:{peer.address[1]}"
    assert isinstance(body["token"], str)
    assert body["token"]
    notice, source = await peer.recv()
    assert source == server.udp_address
    assert notice == {
        "type": "INITIATE_CHAT",
        "payload": f"127.0.0.1:{initiator.address[1]}",
        "token": body["token"],
    }
    # The initiator learns over HTTP only; no datagram for it.
    await assert_nothing_pending(server, initiator, initiator_id)
    assert sent_notices(server) == 1


@pytest.mark.parametrize(
    ("initiator_key", "peer_key"),
    [("PeerInitiator", "Peer"), ("PEERINITIATOR", "PEER"), ("peerinitiator", "peer")],
)
async def test_start_communication_accepts_keys_in_any_case(
    server: RendezvousServer,
    http: aiohttp.ClientSession,
    udp_client: ClientFactory,
    initiator_key: str,
    peer_key: str,
) -> None:
    initiator, peer = await udp_client(), await udp_client()
    initiator_id = await register(server, initiator)
    peer_id = await register(server, peer)

    status, body, _ = await start(http, server, {initiator_key: initiator_id, peer_key: peer_id})

    assert status == 200, body
    assert body["public"] == addr(peer.address)
    notice, _ = await peer.recv()
    assert notice["type"] == "INITIATE_CHAT"
    assert notice["payload"] == addr(initiator.address)


@pytest.mark.parametrize("unknown", ["initiator", "peer"])
async def test_unknown_identifier_is_404_and_nothing_is_sent(
    server: RendezvousServer,
    http: aiohttp.ClientSession,
    udp_client: ClientFactory,
    unknown: str,
) -> None:
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob)
    stranger = str(uuid.UUID(int=42, version=4))
    body = (
        {"peerInitiator": stranger, "peer": bob_id}
        if unknown == "initiator"
        else {"peerInitiator": alice_id, "peer": stranger}
    )

    _, payload, response = await start(http, server, body)

    assert_json_error(response, payload, 404)
    assert "public" not in payload
    assert stranger in payload["error"]
    await assert_nothing_pending(server, alice, alice_id)
    await assert_nothing_pending(server, bob, bob_id)
    assert_sent_nothing_but_registration_answers(server)
    assert server.core.introductions == 0


async def test_self_introduction_is_400_and_nothing_is_sent(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    alice = await udp_client()
    alice_id = await register(server, alice)
    _, payload, response = await start(http, server, {"peerInitiator": alice_id, "peer": alice_id})
    assert_json_error(response, payload, 400)
    await assert_nothing_pending(server, alice, alice_id)
    assert_sent_nothing_but_registration_answers(server)


BAD_BODIES: list[Any] = [
    pytest.param(b"{", id="truncated-json"),
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff\xfe\xfa", id="not-utf8"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"peer"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"NaN", id="nan"),
    pytest.param(b"[" * 2000 + b"]" * 2000, id="deep-nesting"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"peerInitiator": "A"}', id="missing-peer"),
    pytest.param(b'{"peer": "B"}', id="missing-initiator"),
    pytest.param(b'{"peerInitiator": 1, "peer": "B"}', id="initiator-int"),
    pytest.param(b'{"peerInitiator": "A", "peer": null}', id="peer-null"),
    pytest.param(b'{"peerInitiator": ["A"], "peer": "B"}', id="initiator-list"),
]


@pytest.mark.parametrize("template", BAD_BODIES)
async def test_malformed_body_is_400_json_and_nothing_is_sent(
    server: RendezvousServer,
    http: aiohttp.ClientSession,
    udp_client: ClientFactory,
    template: bytes,
) -> None:
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob)
    # Real identifiers where the template has placeholders, so only the shape is wrong.
    body = template.replace(b'"A"', json.dumps(alice_id).encode()).replace(
        b'"B"', json.dumps(bob_id).encode()
    )

    _, payload, response = await start(http, server, body, raw=True)

    assert_json_error(response, payload, 400)
    await assert_nothing_pending(server, bob, bob_id)
    await assert_nothing_pending(server, alice, alice_id)
    assert_sent_nothing_but_registration_answers(server)
    assert server.http_errors == 1


async def test_oversized_body_is_413_json_and_nothing_is_sent(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob)
    body = {"peerInitiator": alice_id, "peer": bob_id, "padding": "x" * MAX_BODY_BYTES}

    _, payload, response = await start(http, server, body)

    assert_json_error(response, payload, 413)
    await assert_nothing_pending(server, bob, bob_id)
    assert_sent_nothing_but_registration_answers(server)


async def test_get_start_communication_is_405_with_allow(
    server: RendezvousServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/start-communication") as response:
        payload = await response.json(content_type=None)
        assert_json_error(response, payload, 405)
        assert "POST" in response.headers["Allow"]


async def test_post_get_udp_port_is_405(
    server: RendezvousServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{server.url}/get-udp-port", data=b"{}") as response:
        payload = await response.json(content_type=None)
        assert_json_error(response, payload, 405)
        assert "GET" in response.headers["Allow"]


async def test_unknown_route_is_404_json(
    server: RendezvousServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/no-such-thing") as response:
        payload = await response.json(content_type=None)
        assert_json_error(response, payload, 404)


# -- garbage on UDP ---------------------------------------------------------------------


async def test_garbage_datagrams_are_dropped_and_registration_still_works(
    server: RendezvousServer, udp_client: ClientFactory
) -> None:
    assert server.udp_address is not None
    client = await udp_client()
    garbage = [
        b"not json",
        b"\xff\xfe\xfd",
        b"[1,2]",
        b'{"type":"REGISTRATION"}',
        b'{"type":"GOODBYE","payload":""}',
        dgram("HELLO"),
        dgram("TEXT", "hi\n"),
        dgram("HEART-BEAT"),
        b"x" * 20000,
    ]
    for data in garbage:
        client.send(data, server.udp_address)

    peer_id = await register(server, client)

    # The first thing the client got back was the registration answer: no error replies.
    assert uuid.UUID(peer_id).version == 4
    assert server.core.rejected == {
        "malformed": 4,
        "unknown type": 1,
        "unexpected type": 2,
        "not registered": 1,
        "oversized": 1,
    }
    assert len(server.core) == 1
    ignored = server.trace.filter(kinds=[EventKind.IGNORED])
    assert len(ignored) == len(garbage)
    assert all(e.src == addr(client.address) for e in ignored)
    assert [e.reason for e in ignored][-1] == "oversized"
    assert ignored[-1].payload == "20000 bytes"  # read whole, not cut at some buffer size
    assert server.trace.count(EventKind.SENT) == 1


async def test_huge_integer_datagram_is_counted_and_traced(
    server: RendezvousServer, udp_client: ClientFactory
) -> None:
    """An integer over Python's 4300-digit limit must be dropped like any bad JSON."""
    assert server.udp_address is not None
    client = await udp_client()
    client.send(
        b'{"type":"REGISTRATION","payload":"","x":' + b"9" * 5000 + b"}", server.udp_address
    )
    peer_id = await register(server, client)
    assert uuid.UUID(peer_id).version == 4
    assert server.core.rejected == {"malformed": 1}
    assert server.trace.count(EventKind.IGNORED) == 1
    assert server.trace.count(EventKind.DELIVERED) == 2


# -- trace ------------------------------------------------------------------------------


async def test_trace_records_what_crossed_the_network(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    assert server.udp_address is not None
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob)
    status, _, _ = await start(http, server, {"peerInitiator": alice_id, "peer": bob_id})
    assert status == 200
    await bob.recv()
    alice.send(dgram("HELLO"), server.udp_address)
    await assert_nothing_pending(server, alice, alice_id)

    me, a, b = addr(server.udp_address), addr(alice.address), addr(bob.address)
    rows = [(e.kind, e.actor, e.src, e.dst, e.msg_type, e.payload) for e in server.trace]
    assert rows == [
        (EventKind.DELIVERED, "server", a, me, "REGISTRATION", ""),
        (EventKind.SENT, "server", me, a, "REGISTRATION", alice_id),
        (EventKind.DELIVERED, "server", b, me, "REGISTRATION", ""),
        (EventKind.SENT, "server", me, b, "REGISTRATION", bob_id),
        (EventKind.SENT, "server", me, b, "INITIATE_CHAT", a),
        (EventKind.DELIVERED, "server", a, me, "HELLO", "..."),
        (EventKind.IGNORED, "server", a, me, "HELLO", "..."),
        (EventKind.DELIVERED, "server", a, me, "REGISTRATION", ""),
        (EventKind.SENT, "server", me, a, "REGISTRATION", alice_id),
    ]
    assert server.trace.filter(kinds=[EventKind.IGNORED])[0].reason == "unexpected type"
    times = [e.time for e in server.trace]
    assert times == sorted(times)


# -- timers in the driver ---------------------------------------------------------------


async def test_registration_expires_on_the_driver_timer(
    http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    expired: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()

    def on_event(event: ServerEvent) -> None:
        if isinstance(event, RegistrationExpired) and not expired.done():
            expired.set_result(event)

    async with RendezvousServer(
        "127.0.0.1", 0, 0, registration_ttl=0.2, rng=random.Random(0), on_event=on_event
    ) as server:
        alice, bob = await udp_client(), await udp_client()
        alice_id = await register(server, alice)
        async with asyncio.timeout(WAIT):
            event = await expired
        assert event == RegistrationExpired(alice_id, alice.address)
        bob_id = await register(server, bob)
        _, payload, response = await start(
            http, server, {"peerInitiator": bob_id, "peer": alice_id}
        )
        assert_json_error(response, payload, 404)
        assert_sent_nothing_but_registration_answers(server)


async def test_ack_peer_gets_initiate_chat_again_until_it_acknowledges(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    assert server.udp_address is not None
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob, features="ack")
    loop = asyncio.get_running_loop()  # the server runs on this loop: same clock
    asked_at = loop.time()
    status, body, _ = await start(http, server, {"peerInitiator": alice_id, "peer": bob_id})
    assert status == 200

    first, _ = await bob.recv()
    # A heart-beat shows Bob is there (the server resends only to peers it hears from).
    bob.send(dgram("HEART-BEAT"), server.udp_address)
    again, _ = await bob.recv()  # nobody acknowledged: the server sends it again
    assert loop.time() - asked_at >= NOTICE_RETRANSMIT_DELAYS[0] - 0.001
    assert again == first
    assert first["token"] == body["token"]

    bob.send(dgram("INITIATE_CHAT_ACK", token=body["token"]), server.udp_address)
    bob.send(dgram("REGISTRATION", ""), server.udp_address)
    while True:  # a copy already on its way is fine; the marker's answer must follow
        message, _ = await bob.recv()
        if message["type"] != "INITIATE_CHAT":
            break
        assert message == first
    assert (message["type"], message["payload"]) == ("REGISTRATION", bob_id)
    assert server.core.rejected == {}
    # Nothing left to retransmit: the next timer is the registrations' expiry.
    due = server.core.get_timer()
    assert due is not None
    assert due > loop.time() + 10


async def test_go_peer_gets_initiate_chat_once(
    server: RendezvousServer, http: aiohttp.ClientSession, udp_client: ClientFactory
) -> None:
    alice, bob = await udp_client(), await udp_client()
    alice_id = await register(server, alice)
    bob_id = await register(server, bob)  # no "features" key: a Go client
    status, _, _ = await start(http, server, {"peerInitiator": alice_id, "peer": bob_id})
    assert status == 200
    notice, _ = await bob.recv()
    assert notice["type"] == "INITIATE_CHAT"
    due = server.core.get_timer()
    assert due is not None
    assert due > asyncio.get_running_loop().time() + 10
    await assert_nothing_pending(server, bob, bob_id)
    assert sent_notices(server) == 1
