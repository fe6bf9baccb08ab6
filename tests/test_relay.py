"""The server's relay (DESIGN.md sections 7 and 8): who may use it, to whom, how much.

Each test plays one user: the two introduced peers, a stranger who knows
nothing, a registered peer holding someone else's token, a flooder.
"""

from __future__ import annotations

import json
import random

from punchlab.messages import Address, MessageType, decode
from punchlab.relay import RelayLimits
from punchlab.server import PeerRelayed, RendezvousCore
from tests.conftest import introduce

ALICE: Address = ("198.51.100.7", 62001)
BOB: Address = ("203.0.113.9", 40001)
EVE: Address = ("192.0.2.66", 5000)
PUNCHLAB = "ack,large,relay,token"


def dgram(kind: str, payload: str = "...", **extra: str) -> bytes:
    return json.dumps({"type": kind, "payload": payload, **extra}).encode()


def register(core: RendezvousCore, address: Address, features: str | None = PUNCHLAB) -> str:
    extra = {} if features is None else {"features": features}
    core.receive_datagram(dgram("REGISTRATION", "", **extra), address, 0.0)
    [(answer, _)] = core.datagrams_to_send(0.0)
    return decode(answer).payload


def introduced(limits: RelayLimits | None = None) -> tuple[RendezvousCore, str]:
    """Alice asked for Bob, Bob acknowledged; the token both hold."""
    core = RendezvousCore(rng=random.Random(0), relay_limits=limits)
    alice, bob = register(core, ALICE), register(core, BOB)
    token = introduce(core, alice, bob, 0.0).token
    core.receive_datagram(dgram("INITIATE_CHAT_ACK", token=token), BOB, 0.0)
    core.datagrams_to_send(0.0)
    return core, token


def relay(core: RendezvousCore, source: Address, inner: str, token: str | None, now: float = 0.1):
    extra = {} if token is None else {"token": token}
    core.receive_datagram(dgram("RELAY", inner, **extra), source, now)
    return core.datagrams_to_send(now)


HELLO = json.dumps({"type": "HELLO", "payload": "..."})


def test_an_introduced_peer_reaches_its_partner_and_only_its_partner() -> None:
    core, token = introduced()
    for _ in range(3):  # Bob earns credit for what is relayed to him
        core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.05)
    [(data, destination)] = relay(core, ALICE, HELLO, token)
    assert destination == BOB
    message = decode(data)
    assert message.type is MessageType.RELAY and message.token == token
    assert decode(message.payload.encode()).type is MessageType.HELLO
    assert core.relay.relayed == 1
    assert any(isinstance(e, PeerRelayed) for e in iter(core.next_event, None))


def test_a_stranger_cannot_use_the_relay() -> None:
    core, token = introduced()
    assert relay(core, EVE, HELLO, token) == []  # not registered: knowing the token is not enough
    assert core.rejected["not registered"] == 1
    register(core, EVE)
    assert relay(core, EVE, HELLO, token) == []  # registered, but not one of the pair
    assert relay(core, EVE, HELLO, None) == []
    assert relay(core, EVE, HELLO, "0" * 16) == []
    assert core.rejected["relay refused"] == 3 and core.relay.relayed == 0


def test_a_partner_address_is_never_taken_from_the_datagram() -> None:
    core, token = introduced()
    core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.05)
    out = relay(core, ALICE, HELLO, token)
    assert [destination for _, destination in out] == [BOB]  # the registered address
    # Alice's NAT changes her port: a RELAY from the new port is from nobody registered.
    assert relay(core, (ALICE[0], ALICE[1] + 1), HELLO, token) == []


def test_nothing_is_relayed_to_a_peer_that_has_not_acknowledged_its_introduction() -> None:
    core = RendezvousCore(rng=random.Random(0))
    alice, bob = register(core, ALICE), register(core, BOB)
    token = introduce(core, alice, bob, 0.0).token
    core.datagrams_to_send(0.0)
    assert relay(core, ALICE, HELLO, token) == []  # its INITIATE_CHAT is still on the way
    # Bob using the token shows he has it: that is an acknowledgement too.
    relay(core, BOB, "", token)
    core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.2)
    assert [d for _, d in relay(core, ALICE, HELLO, token, now=0.3)] == [BOB]


def test_the_relay_never_sends_an_address_more_than_it_sent() -> None:
    core, token = introduced()
    bob = core.lookup_address(BOB)
    assert bob is not None
    delivered = sum(len(relay(core, ALICE, HELLO, token, now=0.1 + i / 1000)) for i in range(50))
    assert bob.sent <= bob.received + bob.introduced
    assert delivered < 5 and core.rejected["reflection limit"] > 40
    for i in range(10):  # each empty RELAY Bob returns earns him one more
        relay(core, BOB, "", token, now=0.2 + i / 1000)
    delivered = sum(len(relay(core, ALICE, HELLO, token, now=0.3 + i / 1000)) for i in range(20))
    assert delivered == 10


def test_an_oversized_payload_is_refused_and_changes_nothing() -> None:
    core, token = introduced(RelayLimits(payload_bytes=100, byte_burst=1000))
    core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.05)
    assert relay(core, ALICE, "x" * 101, token) == []
    assert core.rejected["relay limited"] == 1 and core.relay.relayed == 0
    assert len(relay(core, ALICE, "x" * 100, token)) == 1


def test_a_flood_is_cut_to_the_rate_and_the_bytes_allowed() -> None:
    limits = RelayLimits(datagrams_per_second=10, datagram_burst=5, payload_bytes=200,
                         bytes_per_second=400, byte_burst=600)  # fmt: skip
    core, token = introduced(limits)
    for i in range(100):
        core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.05 + i / 10_000)
    sent = sum(len(relay(core, ALICE, HELLO, token, now=0.1)) for _ in range(20))
    assert sent == 5  # the burst, then nothing within the same instant
    sent = sum(len(relay(core, ALICE, "y" * 200, token, now=1.1)) for _ in range(20))
    assert sent == 3  # 600 bytes of burst in 200-byte datagrams, though 10 datagrams are due
    assert core.rejected["relay limited"] == 15 + 17


def test_a_go_peer_is_never_sent_a_relay() -> None:
    core = RendezvousCore(rng=random.Random(0))
    alice, bob = register(core, ALICE), register(core, BOB, features=None)  # Bob: the Go client
    token = introduce(core, alice, bob, 0.0).token
    core.datagrams_to_send(0.0)
    core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.05)
    assert relay(core, ALICE, HELLO, token) == []
    assert core.rejected["relay refused"] == 1


def test_the_server_announces_the_relay_to_punchlab_peers_only() -> None:
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(dgram("REGISTRATION", "", features=PUNCHLAB), ALICE, 0.0)
    core.receive_datagram(dgram("REGISTRATION", ""), BOB, 0.0)
    (ours, _), (gos, _) = core.datagrams_to_send(0.0)
    assert "relay" in (decode(ours).features or "")
    assert decode(gos).features is None
