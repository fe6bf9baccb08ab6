"""What a public server must survive: floods, reflection, bad HTTP, many peers at once.

The hypothesis tests at the end throw arbitrary datagrams and requests at a
real server on loopback, then check that it holds nothing it should not and
still registers and introduces peers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from punchlab.aio import RendezvousServer
from punchlab.aio.load import introduce_many, register_many
from punchlab.aio.runner import CoreRunner
from punchlab.messages import Message, MessageType, RemoteProtocolError, decode, encode
from punchlab.server import RendezvousCore, ServerLimits
from tests.conftest import introduce

REGISTRATION = encode(Message(MessageType.REGISTRATION, ""))
HEART_BEAT = encode(Message(MessageType.HEART_BEAT))


def answers(core: RendezvousCore) -> list[tuple[str, tuple[str, int]]]:
    return [(decode(data).payload, address) for data, address in core.datagrams_to_send(0.0)]


# -- the core ----------------------------------------------------------------------------


def test_a_registration_flood_from_one_host_is_limited_and_others_are_not() -> None:
    core = RendezvousCore(limits=ServerLimits(registrations_per_second=1.0, registration_burst=10))
    for port in range(1000, 1100):
        core.receive_datagram(REGISTRATION, ("192.0.2.66", port), 0.0)
    assert len(core) == 10 and len(answers(core)) == 10
    assert core.rejected["rate limited"] == 90
    core.receive_datagram(REGISTRATION, ("198.51.100.7", 5000), 0.0)
    assert len(core) == 11  # another host is not affected
    for port in range(2000, 2010):
        core.receive_datagram(REGISTRATION, ("192.0.2.66", port), 5.0)
    assert len(core) == 16  # five seconds refilled five tokens


def host(index: int) -> tuple[str, int]:
    return (f"10.1.{index // 250}.{index % 250}", 5000)


def test_the_registration_table_is_bounded_and_quiet_entries_make_room() -> None:
    core = RendezvousCore(limits=ServerLimits(max_registrations=100), registration_ttl=30.0)
    for index in range(150):
        core.receive_datagram(REGISTRATION, host(index), 0.0)
    assert len(core) == 100
    # Never heard from again after their first answer: the oldest made room.
    assert core.lookup_address(host(0)) is None and core.lookup_address(host(49)) is None
    assert core.lookup_address(host(50)) is not None
    assert core.rejected["server full"] == 0
    core.handle_timer(31.0)  # they all fell silent
    core.receive_datagram(REGISTRATION, ("10.9.9.9", 5000), 31.0)
    assert len(core) == 1


def test_a_table_of_live_peers_refuses_newcomers_rather_than_evict_them() -> None:
    core = RendezvousCore(limits=ServerLimits(max_registrations=100), registration_ttl=30.0)
    for index in range(100):
        core.receive_datagram(REGISTRATION, host(index), 0.0)
        core.receive_datagram(HEART_BEAT, host(index), 0.5)  # heard again: a live peer
    core.receive_datagram(REGISTRATION, ("10.9.9.9", 5000), 1.0)
    assert len(core) == 100
    assert core.rejected["server full"] == 1
    assert all(core.lookup_address(host(index)) is not None for index in range(100))


def test_one_address_holds_a_bounded_share_of_the_table() -> None:
    limits = ServerLimits(max_registrations=1000, max_registrations_per_ip=10)
    core = RendezvousCore(limits=limits)
    for port in range(1000, 1010):
        core.receive_datagram(REGISTRATION, ("192.0.2.66", port), 0.0)
        core.receive_datagram(HEART_BEAT, ("192.0.2.66", port), 0.1)
    core.receive_datagram(REGISTRATION, ("192.0.2.66", 2000), 1.0)
    assert core.rejected["address full"] == 1
    assert len(core) == 10
    core.receive_datagram(REGISTRATION, ("198.51.100.7", 5000), 1.0)
    assert len(core) == 11  # another address is not affected


@pytest.mark.slow
def test_a_flood_from_many_addresses_does_not_lock_out_a_new_peer() -> None:
    """Finding 5: 40 flooding addresses filled the 100,000-entry table in seconds."""
    core = RendezvousCore()  # the defaults a real server runs with
    now = 0.0
    for round_ in range(6):  # each address at its full rate: 2,500 at once, then 500/s
        now = float(round_)
        for attacker in range(60):
            for port in range(2500 if round_ == 0 else 500):
                core.receive_datagram(REGISTRATION, (f"192.0.2.{attacker}", 1024 + port), now)
        core.datagrams_to_send(now)
        if round_ == 2:
            core.receive_datagram(REGISTRATION, ("198.51.100.7", 5000), now)
            assert core.lookup_address(("198.51.100.7", 5000)) is not None
        if round_ > 2:
            core.receive_datagram(HEART_BEAT, ("198.51.100.7", 5000), now)
    per_address = collections.Counter(r.address[0] for r in core.registrations)
    assert max(per_address.values()) <= core.limits.max_registrations_per_ip
    assert core.lookup_address(("198.51.100.7", 5000)) is not None
    assert len(core) <= core.limits.max_registrations
    core.receive_datagram(REGISTRATION, ("203.0.113.9", 40000), now)
    assert core.lookup_address(("203.0.113.9", 40000)) is not None


def test_a_flood_of_distinct_hosts_keeps_the_rate_table_bounded() -> None:
    limits = ServerLimits(max_registrations=1000)
    core = RendezvousCore(limits=limits, registration_ttl=1.0)
    for index in range(20_000):
        ip = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
        core.receive_datagram(REGISTRATION, (ip, 5000), index / 1000)
    assert len(core._buckets) <= 2 * limits.max_registrations
    assert len(core) <= limits.max_registrations


# -- the real server ---------------------------------------------------------------------


@pytest.fixture
async def limited_server() -> AsyncIterator[RendezvousServer]:
    limits = ServerLimits(registrations_per_second=1.0, registration_burst=5)
    async with RendezvousServer("127.0.0.1", 0, 0, limits=limits) as server:
        yield server


async def test_a_flood_is_logged_in_one_clear_line_not_one_per_datagram(
    limited_server: RendezvousServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert limited_server.udp_address is not None
    caplog.set_level(logging.WARNING, logger="punchlab.server")
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(40)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
            sock.sendto(REGISTRATION, limited_server.udp_address)
        result = await register_many(limited_server.udp_address, 1, timeout=5.0)
    finally:
        for sock in sockets:
            sock.close()
    # The one well-behaved peer still registers, after its retries refill a token.
    assert len(result.identifiers) == 1
    assert limited_server.core.rejected["rate limited"] >= 35
    lines = [
        r.getMessage() for r in caplog.records if "REGISTRATIONs from 127.0.0.1" in r.getMessage()
    ]
    assert 1 <= len(lines) <= 6  # at most one a second while the test runs


async def test_bad_http_of_every_kind_gets_json_errors_and_changes_nothing() -> None:
    rng = random.Random(7)
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        aiohttp.ClientSession() as http,
    ):
        registered = await register_many(server.udp_address or ("", 0), 2)
        ids = registered.identifiers
        bodies: list[bytes] = [
            rng.randbytes(rng.randrange(0, 300)) for _ in range(60)
        ] + [
            json.dumps(value).encode()
            for value in (
                None, 1, "x", [], {}, {"peerInitiator": 1, "peer": 2},
                {"peerInitiator": ids[0]}, {"peerInitiator": ids[0], "peer": None},
                {"peerInitiator": "a" * 100, "peer": ids[1]}, {"peer": ids[1], "x": [1] * 50},
            )
        ] + [b"{" * 5000, b"[" * 3000 + b"]" * 3000, b"x" * 100_000]  # fmt: skip
        statuses = []
        for body in bodies:
            async with http.post(f"{server.url}/start-communication", data=body) as response:
                statuses.append(response.status)
                assert "error" in await response.json(content_type=None)
        for method, path in [("PUT", "/start-communication"), ("DELETE", "/get-udp-port"),
                             ("GET", "/nope"), ("POST", "/../../etc/passwd")]:  # fmt: skip
            async with http.request(method, f"{server.url}{path}") as response:
                statuses.append(response.status)
                assert "error" in await response.json(content_type=None)
        assert set(statuses) <= {400, 404, 405, 413}
        assert server.core.introductions == 0
        # ... and it still works:
        statuses, _ = await introduce_many(
            server.url, [(ids[0], ids[1])], secrets=registered.secrets
        )
        assert statuses == [200]


@pytest.mark.slow
async def test_three_hundred_peers_register_at_once() -> None:
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        assert server.udp_address is not None
        result = await register_many(server.udp_address, 300)
        assert result.failures == []
        assert len(result.identifiers) == len(set(result.identifiers)) == 300
        assert len(server.core) == 300
        pairs = list(zip(result.identifiers[0::2], result.identifiers[1::2], strict=True))
        statuses, _ = await introduce_many(server.url, pairs, secrets=result.secrets)
        assert statuses == [200] * 150
        assert server.core.introductions == 150


def test_each_introduction_of_a_go_peer_reaches_it_even_in_quick_succession() -> None:
    core = RendezvousCore()
    core.receive_datagram(REGISTRATION, ("198.51.100.1", 5000), 0.0)
    core.receive_datagram(REGISTRATION, ("198.51.100.2", 5000), 0.0)
    (alice, _), (bob, _) = answers(core)
    introduce(core, alice, bob, 1.0)
    introduce(core, alice, bob, 1.5)  # no heart-beat from Bob in between
    notices = [a for payload, a in answers(core)]
    assert notices == [("198.51.100.2", 5000)] * 2


def test_rejected_datagrams_earn_no_answers() -> None:
    core = RendezvousCore()
    core.receive_datagram(REGISTRATION, ("198.51.100.1", 5000), 0.0)
    answers(core)
    for _ in range(5):
        core.receive_datagram(encode(Message(MessageType.TEXT, "x")), ("198.51.100.1", 5000), 0.1)
    [registration] = core.registrations
    assert registration.received == 1


# -- hypothesis against the real server --------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
type_names = st.sampled_from([t.value for t in MessageType]) | st.text(max_size=12)
datagrams = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    # Every type, with a payload (or extension key) of the wrong kind.
    st.fixed_dictionaries(
        {"type": type_names},
        optional={"payload": json_values, "token": json_values, "features": json_values},
    ).map(lambda fields: json.dumps(fields).encode()),
    # Well-formed messages of every type, from an address that never registered.
    st.builds(
        Message,
        st.sampled_from(list(MessageType)),
        st.text(max_size=40),
        st.none() | st.text(max_size=20),
        st.none() | st.sampled_from(["ack", "", "x,ack"]),
    ).map(encode),
    st.integers(min_value=8193, max_value=20_000).map(lambda size: b"x" * size),
)


def _registrations_in(batch: list[bytes]) -> int:
    """How many of ``batch`` a server answers (well-formed REGISTRATIONs)."""
    count = 0
    for data in batch:
        with contextlib.suppress(RemoteProtocolError):
            count += decode(data).type is MessageType.REGISTRATION
    return count


async def _after_garbage_it_still_works(batch: list[bytes]) -> None:
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        assert server.udp_address is not None
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Sender(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                received.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Sender, local_addr=("127.0.0.1", 0))
        try:
            for data in [*batch, REGISTRATION]:  # the last one tells us all were handled
                transport.sendto(data, server.udp_address)
            answers = [
                await asyncio.wait_for(received.get(), 5.0)
                for _ in range(_registrations_in(batch) + 1)
            ]
            sender = transport.get_extra_info("sockname")
        finally:
            transport.close()
        # Only registration answers came back, all with the one identifier...
        assert {decode(answer).type for answer in answers} == {MessageType.REGISTRATION}
        assert len({decode(answer).payload for answer in answers}) == 1
        # ... and the server holds nothing else: one registration, no introduction.
        assert [r.address for r in server.core.registrations] == [sender]
        assert server.core.introductions == 0 and not server.core._pending
        registered = await register_many(server.udp_address, 2)
        ids = registered.identifiers
        statuses, _ = await introduce_many(
            server.url, [(ids[0], ids[1])], secrets=registered.secrets
        )
        assert statuses == [200]


@pytest.mark.slow
@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(datagrams, max_size=30))
def test_arbitrary_datagrams_at_the_real_server_change_nothing(batch: list[bytes]) -> None:
    asyncio.run(_after_garbage_it_still_works(batch))


http_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {}, optional={"peerInitiator": json_values, "peer": json_values, "PEER": json_values}
    ).map(lambda fields: json.dumps(fields).encode()),
    st.integers(min_value=4097, max_value=50_000).map(lambda size: b"{" * size),
)
requests = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.sampled_from(["/start-communication", "/get-udp-port", "/", "/start-communication/x"])
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/-.%", max_size=20).map(lambda p: "/" + p),
    http_bodies,
)


async def _after_bad_requests_it_still_works(batch: list[tuple[str, str, bytes]]) -> None:
    async with (
        RendezvousServer("127.0.0.1", 0, 0) as server,
        aiohttp.ClientSession() as http,
    ):
        assert server.udp_address is not None
        for method, path, body in batch:
            async with http.request(method, f"{server.url}{path}", data=body) as response:
                assert response.status < 500, (method, path, body[:40])
                if response.status >= 400:
                    assert "error" in await response.json(content_type=None)
        assert server.core.introductions == 0 and len(server.core) == 0
        registered = await register_many(server.udp_address, 2)
        ids = registered.identifiers
        statuses, _ = await introduce_many(
            server.url, [(ids[0], ids[1])], secrets=registered.secrets
        )
        assert statuses == [200]


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.lists(requests, max_size=12))
def test_arbitrary_http_requests_get_answers_and_change_nothing(
    batch: list[tuple[str, str, bytes]],
) -> None:
    asyncio.run(_after_bad_requests_it_still_works(batch))


async def test_register_many_closes_its_sockets_when_opening_one_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[CoreRunner] = []
    real_open = CoreRunner.open

    async def open_until_the_fourth(*args: Any, **kwargs: Any) -> CoreRunner:
        if len(opened) == 3:
            raise OSError(24, "Too many open files")
        runner = await real_open(*args, **kwargs)
        opened.append(runner)
        return runner

    monkeypatch.setattr(CoreRunner, "open", open_until_the_fourth)
    with pytest.raises(OSError, match="Too many open files"):
        await register_many(("127.0.0.1", 9), 10)
    assert len(opened) == 3
    assert all(r.transport is not None and r.transport.is_closing() for r in opened)
