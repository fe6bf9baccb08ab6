"""IPv6 end to end on loopback: the server, two peers, the wire's ``[v6]:port``, the CLI,
and a Go client over IPv4 against a server on ``::`` (issue 17, part 4)."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from punchlab.addresses import for_socket, from_socket
from punchlab.aio import Peer, RendezvousServer
from punchlab.messages import MalformedMessage, format_address, parse_address
from punchlab.trace import EventKind, Trace
from punchlab.traversal import Route
from tests.conftest import ipv6_loopback_works
from tests.gopeer import GoPeer
from tests.test_cli import Proc, procs, two_students_connect  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not ipv6_loopback_works(), reason="this machine has no IPv6 loopback"),
]


async def test_two_peers_on_ipv6_loopback_connect_directly_and_chat_both_ways() -> None:
    trace = Trace()
    async with (
        RendezvousServer("::1", 0, 0) as server,
        Peer(server.url, host="::1", name="A", trace=trace) as a,
        Peer(server.url, host="::1", name="B", trace=trace) as b,
    ):
        assert server.url.startswith("http://[::1]:")
        await a.register(timeout=5)
        await b.register(timeout=5)
        assert b.id is not None
        await asyncio.gather(a.connect(b.id, timeout=5), b.wait_connected(timeout=5))
        await a.send_text("over six")
        assert await b.receive_text(timeout=5) == "over six"
        await b.send_text("and back")
        assert await a.receive_text(timeout=5) == "and back"
        assert a.route is Route.DIRECT and b.route is Route.DIRECT
        assert a.peer_address is not None and a.peer_address[0] == "::1"
        # INITIATE_CHAT names the initiator in Go's form for IPv6: [v6]:port.
        assert a.local_address is not None
        introductions = [
            e for e in trace if e.msg_type == "INITIATE_CHAT" and e.kind is EventKind.DELIVERED
        ]
        assert introductions and introductions[0].payload == f"[::1]:{a.local_address[1]}"


async def test_the_http_answer_writes_an_ipv6_public_address_in_brackets() -> None:
    async with (
        RendezvousServer("::1", 0, 0) as server,
        Peer(server.url, host="::1", name="A") as a,
        Peer(server.url, host="::1", name="B") as b,
    ):
        await a.register(timeout=5)
        await b.register(timeout=5)
        assert a.core is not None and b.local_address is not None
        request = a.core.ask_introduction(b.id or "")
        async with (
            aiohttp.ClientSession() as http,
            http.post(server.url + request.path, json=request.body) as response,
        ):
            answer = await response.json()
        assert response.status == 200
        assert answer["public"] == f"[::1]:{b.local_address[1]}"
        assert parse_address(answer["public"]) == ("::1", b.local_address[1])


async def test_a_peer_with_the_default_wildcard_follows_a_bracketed_server_url() -> None:
    """``punchlab chat --server http://[::1]:PORT`` binds no address: it must pick IPv6."""
    async with (
        RendezvousServer("::", 0, 0) as server,
        Peer(f"http://[::1]:{server.http_address[1] if server.http_address else 0}") as a,
        Peer(server.url, name="B") as b,
    ):
        await a.register(timeout=5)
        await b.register(timeout=5)
        assert a.local_address is not None and a.local_address[0] == "::"
        registered = server.core.lookup(a.id or "")
        assert registered is not None and registered.address[0] == "::1"
        assert b.core is not None and b.core.server_address[0] == "127.0.0.1"


async def test_a_go_client_over_ipv4_chats_through_a_server_on_both_families() -> None:
    """A dual-stack socket sees ``::ffff:127.0.0.1``; the Go client must be told ``127.0.0.1:port``
    (what Go's own server writes), and the chat works both ways, by the direct route."""
    async with (
        RendezvousServer("::", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="B", trace=Trace()) as b,
    ):
        await b.register(timeout=5)
        go = await GoPeer.start(server.url, hello_delay=0.05)
        try:
            assert go.id is not None and b.id is not None
            registration = server.core.lookup(go.id)
            assert registration is not None and registration.address == go.address
            await asyncio.gather(go.connect(b.id), b.wait_connected(timeout=5))
            async with asyncio.timeout(5):
                await go.connected.wait()
            assert b.route is Route.DIRECT and b.peer_address == go.address
            initiate = next(e for e in b.trace if e.msg_type == "INITIATE_CHAT")
            assert initiate.payload == format_address(go.address)  # not [::ffff:127.0.0.1]:port
            go.send_text("from Go over IPv4")
            assert await b.receive_text(timeout=5) == "from Go over IPv4"
            await b.send_text("from punchlab")
            async with asyncio.timeout(5):
                assert await go.texts.get() == "from punchlab\n"
        finally:
            go.close()


async def test_a_go_client_over_ipv4_is_introduced_in_the_ipv4_form_it_can_send_to() -> None:
    """The other way round: the Go client is told the punchlab initiator's address in
    INITIATE_CHAT; ``[::ffff:127.0.0.1]:port`` would not even be sendable from its socket."""
    async with (
        RendezvousServer("::", 0, 0) as server,
        Peer(server.url, host="127.0.0.1", name="A", trace=Trace()) as a,
    ):
        await a.register(timeout=5)
        go = await GoPeer.start(server.url, hello_delay=0.05)
        try:
            assert go.id is not None
            await a.connect(go.id, timeout=5)
            async with asyncio.timeout(5):
                await go.connected.wait()
            assert go.peer == a.local_address and a.route is Route.DIRECT
            go.send_text("from Go")
            assert await a.receive_text(timeout=5) == "from Go"
        finally:
            go.close()


async def test_the_cli_chats_over_ipv6(procs: list[Proc]) -> None:  # noqa: F811
    server = await Proc.start("serve", "--host", "::", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    port = (await server.expect(r"HTTP http://127\.0\.0\.1:(\d+)")).group(1)
    url = f"http://[::1]:{port}"
    alice, bob, bob_id = await two_students_connect(procs, url, r"\[::1\]:\d+")
    await alice.type("hi bob")
    await bob.expect(r"^Message: hi bob$")
    await bob.type("hi alice")
    await alice.expect(r"^Message: hi alice$")
    await server.expect(rf"introduced \S+ \(\[::1\]:\d+\) to {bob_id}")
    server.process.send_signal(signal.SIGINT)
    assert await server.finish() == 0


# -- the address forms (no sockets) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("[2001:db8::7]:40001", ("2001:db8::7", 40001)),
        ("[::1]:8089", ("::1", 8089)),
        ("198.51.100.7:62001", ("198.51.100.7", 62001)),
    ],
)
def test_addresses_round_trip_in_gos_form(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address
    assert format_address(address) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2001:db8::7:40001", "[v6]:port"),
        ("[2001:db8::7]", "not an ip:port"),
        ("[2001:db8::zz]:5", "not an IP address"),
        ("[2001:db8::7]:0", "out of range"),
    ],
)
def test_a_bad_ipv6_address_gets_a_clear_error(text: str, says: str) -> None:
    with pytest.raises(MalformedMessage, match=r".*") as caught:
        parse_address(text)
    assert says in str(caught.value)


def test_socket_addresses_map_ipv4_both_ways() -> None:
    import socket

    assert from_socket(("::ffff:192.0.2.7", 5000, 0, 0)) == ("192.0.2.7", 5000)
    assert from_socket(("2001:db8::1", 5000, 0, 0)) == ("2001:db8::1", 5000)
    assert for_socket(socket.AF_INET6, ("192.0.2.7", 5000)) == ("::ffff:192.0.2.7", 5000)
    assert for_socket(socket.AF_INET6, ("2001:db8::1", 5000)) == ("2001:db8::1", 5000)
    assert for_socket(socket.AF_INET, ("192.0.2.7", 5000)) == ("192.0.2.7", 5000)


def test_a_udp_socket_on_the_ipv6_wildcard_takes_ipv4_whatever_the_system_default() -> None:
    import socket

    from punchlab.aio.runner import udp_dual_stack_socket

    sock = udp_dual_stack_socket(0)
    try:
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"ping", ("127.0.0.1", sock.getsockname()[1]))
        sock.settimeout(5.0)
        data, source = sock.recvfrom(64)
        assert data == b"ping" and source[0] == "::ffff:127.0.0.1"
    finally:
        sock.close()
