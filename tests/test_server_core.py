"""The rendezvous core, driven with explicit ``now`` floats: no sockets, no sleeps."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from punchlab.messages import (
    MAX_DATAGRAM_BYTES,
    Address,
    MessageType,
    RemoteProtocolError,
    decode,
)
from punchlab.server import (
    DEFAULT_REGISTRATION_TTL,
    NOTICE_RETRANSMIT_DELAYS,
    DatagramIgnored,
    PeerIntroduced,
    PeerRegistered,
    RegistrationExpired,
    RendezvousCore,
    RequestError,
    UnknownIdentifier,
    uuid4_text,
)
from tests.conftest import introduce

ALICE: Address = ("198.51.100.7", 62001)
BOB: Address = ("203.0.113.9", 40000)
CAROL: Address = ("192.0.2.66", 51000)
# Same public IP as ALICE, another port: a second host behind the same NAT.
ALICE_NEIGHBOUR: Address = ("198.51.100.7", 62002)

TTL = DEFAULT_REGISTRATION_TTL


# -- helpers --------------------------------------------------------------------------


def dgram(kind: str, payload: Any = "...", **extra: Any) -> bytes:
    """A datagram as a Go client (or anyone) would write it, unknown keys allowed."""
    return json.dumps({"type": kind, "payload": payload, **extra}).encode()


def registration(features: str | None = None) -> bytes:
    if features is None:
        return dgram("REGISTRATION", "")
    return dgram("REGISTRATION", "", features=features)


def drain(core: RendezvousCore, now: float = 0.0) -> list[tuple[bytes, Address]]:
    return core.datagrams_to_send(now)


def events(core: RendezvousCore) -> list[object]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def register(
    core: RendezvousCore, address: Address, now: float, features: str | None = None
) -> str:
    """Register ``address`` and return the identifier the server answered with."""
    core.receive_datagram(registration(features), address, now)
    out = drain(core, now)
    assert len(out) == 1, out
    data, destination = out[0]
    assert destination == address
    answer = decode(data)
    assert answer.type is MessageType.REGISTRATION
    events(core)
    return answer.payload


def snapshot(core: RendezvousCore) -> object:
    """Everything observable about a core's state, for 'nothing changed' checks."""
    return (
        [
            (r.peer_id, r.address, r.registered_at, r.last_seen, r.features)
            for r in core.registrations
        ],
        len(core),
        core.get_timer(),
        core.introductions,
    )


def two_registered(
    *, alice_features: str | None = None, bob_features: str | None = None, bob_beats: int = 0
) -> tuple[RendezvousCore, str, str]:
    """Alice and Bob registered at 0.0; Bob's heart-beats give the server room to resend."""
    core = RendezvousCore(rng=random.Random(0))
    alice = register(core, ALICE, 0.0, alice_features)
    bob = register(core, BOB, 0.0, bob_features)
    for _ in range(bob_beats):
        core.receive_datagram(dgram("HEART-BEAT"), BOB, 0.0)
    return core, alice, bob


# -- registration -----------------------------------------------------------------------


def test_registration_is_answered_with_a_uuid4_to_the_source_address() -> None:
    core = RendezvousCore()
    core.receive_datagram(registration(), ALICE, 1.0)
    out = drain(core, 1.0)
    assert len(out) == 1
    data, destination = out[0]
    assert destination == ALICE
    raw = json.loads(data)
    assert set(raw) == {"type", "payload"}  # lowercase keys, as the Go client reads them
    assert raw["type"] == "REGISTRATION"
    parsed = uuid.UUID(raw["payload"])
    assert parsed.version == 4
    assert str(parsed) == raw["payload"]


def test_registration_stores_the_public_address_and_emits_an_event() -> None:
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(registration(), ALICE, 5.0)
    (data, _), *_ = drain(core, 5.0)
    peer_id = decode(data).payload
    assert events(core) == [PeerRegistered(peer_id, ALICE, repeated=False)]
    found = core.lookup(peer_id)
    assert found is not None
    assert found.address == ALICE
    assert found.registered_at == 5.0
    assert found.last_seen == 5.0
    assert len(core) == 1


def test_seeded_rng_gives_reproducible_identifiers() -> None:
    def ids(seed: int) -> list[str]:
        core = RendezvousCore(rng=random.Random(seed))
        return [register(core, address, 0.0) for address in (ALICE, BOB, CAROL)]

    first = ids(0)
    assert first == ids(0)
    assert first != ids(1)
    assert len(set(first)) == 3
    assert all(uuid.UUID(i).version == 4 for i in first)


@settings(derandomize=True, max_examples=300)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_identifiers_are_formatted_exactly_as_the_uuid_module_would(bits: int) -> None:
    assert uuid4_text(f"{bits:032x}") == str(uuid.UUID(int=bits, version=4))


def test_unseeded_identifiers_are_distinct_uuid4() -> None:
    core = RendezvousCore()
    ids = [register(core, ("192.0.2.1", 40000 + n), 0.0) for n in range(20)]
    assert len(set(ids)) == 20
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_two_hosts_behind_one_nat_get_different_identifiers() -> None:
    core = RendezvousCore(rng=random.Random(0))
    first = register(core, ALICE, 0.0)
    second = register(core, ALICE_NEIGHBOUR, 0.0)
    assert first != second
    assert core.lookup(second) is not None
    assert core.lookup(second).address == ALICE_NEIGHBOUR  # type: ignore[union-attr]


def test_repeated_registration_returns_the_same_identifier() -> None:
    """The answer was lost and the peer asks again: same peer, same identifier."""
    core = RendezvousCore(rng=random.Random(0))
    first = register(core, ALICE, 0.0)
    core.receive_datagram(registration(), ALICE, 2.0)
    out = drain(core, 2.0)
    assert [(decode(d).type, decode(d).payload, a) for d, a in out] == [
        (MessageType.REGISTRATION, first, ALICE)
    ]
    assert events(core) == [PeerRegistered(first, ALICE, repeated=True)]
    assert len(core) == 1
    assert core.lookup(first).last_seen == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        b'{"Type":"REGISTRATION","Payload":""}',
        b'{"TYPE":"REGISTRATION","PAYLOAD":""}',
        b'{"type":"REGISTRATION","payload":"","extra":[1,2,{"x":null}],"v":2}',
    ],
    ids=["title-case", "upper-case", "unknown-keys"],
)
def test_registration_accepts_any_key_case_and_unknown_keys(data: bytes) -> None:
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(data, ALICE, 0.0)
    out = drain(core)
    assert len(out) == 1
    assert out[0][1] == ALICE
    assert core.lookup(decode(out[0][0]).payload) is not None


# -- heart-beats and expiry -------------------------------------------------------------


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RendezvousCore(registration_ttl=0)


def test_no_timer_without_registrations() -> None:
    assert RendezvousCore().get_timer() is None


def test_heartbeat_refreshes_last_seen_and_keeps_registration_past_ttl() -> None:
    core = RendezvousCore(rng=random.Random(0))
    peer_id = register(core, ALICE, 0.0)
    for now in (20.0, 40.0, 60.0):
        core.receive_datagram(dgram("HEART-BEAT"), ALICE, now)
        core.handle_timer(now + TTL - 1.0)
        registration_now = core.lookup(peer_id)
        assert registration_now is not None
        assert registration_now.last_seen == now
        assert core.get_timer() == now + TTL
    # Heart-beats are answered by nothing and reported as nothing.
    assert drain(core) == []
    assert events(core) == []
    assert len(core) == 1


def test_silence_expires_a_registration_at_the_timer() -> None:
    core = RendezvousCore(rng=random.Random(0))
    peer_id = register(core, ALICE, 10.0)
    due = core.get_timer()
    assert due == 10.0 + TTL
    core.handle_timer(due - 0.001)
    assert core.lookup(peer_id) is not None
    assert events(core) == []
    core.handle_timer(due)
    assert core.lookup(peer_id) is None
    assert len(core) == 0
    assert events(core) == [RegistrationExpired(peer_id, ALICE)]
    assert core.get_timer() is None
    assert drain(core) == []
    # The address is forgotten too: a HEART-BEAT from it is now rejected.
    core.receive_datagram(dgram("HEART-BEAT"), ALICE, due + 1)
    assert [type(e) for e in events(core)] == [DatagramIgnored]
    assert core.rejected["not registered"] == 1


def test_custom_ttl_sets_the_timer() -> None:
    core = RendezvousCore(registration_ttl=5.0, rng=random.Random(0))
    register(core, ALICE, 1.0)
    assert core.get_timer() == 6.0


def test_timer_follows_the_least_recently_seen_registration() -> None:
    core = RendezvousCore(rng=random.Random(0))
    alice = register(core, ALICE, 0.0)
    bob = register(core, BOB, 5.0)
    assert core.get_timer() == TTL
    core.receive_datagram(dgram("HEART-BEAT"), ALICE, 10.0)
    assert core.get_timer() == 5.0 + TTL
    core.handle_timer(5.0 + TTL)
    assert events(core) == [RegistrationExpired(bob, BOB)]
    assert core.lookup(alice) is not None
    assert core.get_timer() == 10.0 + TTL


def test_reregistration_after_expiry_gets_a_new_identifier() -> None:
    core = RendezvousCore(rng=random.Random(0))
    old = register(core, ALICE, 0.0)
    core.handle_timer(TTL)
    new = register(core, ALICE, TTL + 1)
    assert new != old
    assert core.lookup(old) is None
    assert core.lookup(new) is not None


def test_expiry_happens_on_receive_without_a_timer_call() -> None:
    """A driver that is late with its timer still never sees a dead registration."""
    core = RendezvousCore(rng=random.Random(0))
    old = register(core, ALICE, 0.0)
    register(core, BOB, TTL + 5)
    assert core.lookup(old) is None


# -- introductions ----------------------------------------------------------------------


def test_start_communication_introduces_both_sides() -> None:
    core, alice, bob = two_registered()
    intro = introduce(core, alice, bob, 1.0)
    assert intro.initiator_id == alice
    assert intro.peer_id == bob
    assert intro.initiator_address == ALICE
    assert intro.peer_address == BOB
    assert intro.token
    out = drain(core, 1.0)
    assert len(out) == 1
    data, destination = out[0]
    assert destination == BOB
    raw = json.loads(data)
    assert raw == {"type": "INITIATE_CHAT", "payload": "198.51.100.7:62001", "token": intro.token}
    assert events(core) == [PeerIntroduced(intro)]
    assert core.introductions == 1


def test_each_introduction_gets_its_own_token() -> None:
    core, alice, bob = two_registered()
    first = introduce(core, alice, bob, 1.0)
    second = introduce(core, bob, alice, 2.0)
    assert first.token != second.token
    out = drain(core)
    assert [(json.loads(d)["payload"], a) for d, a in out] == [
        ("198.51.100.7:62001", BOB),
        ("203.0.113.9:40000", ALICE),
    ]
    assert [json.loads(d)["token"] for d, _ in out] == [first.token, second.token]


def test_seeded_rng_gives_reproducible_tokens() -> None:
    def token() -> str:
        core, alice, bob = two_registered()
        return introduce(core, alice, bob, 1.0).token

    assert token() == token()


@pytest.mark.parametrize("role", ["initiator", "peer"])
def test_unknown_identifier_is_404_and_sends_nothing(role: str) -> None:
    core, alice, bob = two_registered()
    before = snapshot(core)
    stranger = str(uuid.UUID(int=12345, version=4))
    initiator, peer = (stranger, bob) if role == "initiator" else (alice, stranger)
    with pytest.raises(UnknownIdentifier) as caught:
        introduce(core, initiator, peer, 1.0)
    assert caught.value.status == 404
    assert caught.value.role == role
    assert caught.value.identifier == stranger
    assert isinstance(caught.value, RequestError)
    assert drain(core) == []
    assert events(core) == []
    assert snapshot(core) == before


def test_both_unknown_reports_the_initiator() -> None:
    core = RendezvousCore(rng=random.Random(0))
    with pytest.raises(UnknownIdentifier) as caught:
        introduce(core, "nobody", "noone", 0.0)
    assert caught.value.role == "initiator"
    assert drain(core) == []


def test_self_introduction_is_400_and_sends_nothing() -> None:
    core, alice, _ = two_registered()
    before = snapshot(core)
    with pytest.raises(RequestError) as caught:
        introduce(core, alice, alice, 1.0)
    assert not isinstance(caught.value, UnknownIdentifier)
    assert caught.value.status == 400
    assert drain(core) == []
    assert events(core) == []
    assert snapshot(core) == before


def test_non_string_identifiers_are_400() -> None:
    core, alice, _ = two_registered()
    with pytest.raises(RequestError) as caught:
        introduce(core, alice, None, 1.0)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert drain(core) == []


@pytest.mark.parametrize("expired", ["initiator", "peer"])
def test_expired_identifier_is_unknown(expired: str) -> None:
    core, alice, bob = two_registered()
    # Keep the other side alive; the expired one stays silent past the TTL.
    alive = BOB if expired == "initiator" else ALICE
    core.receive_datagram(dgram("HEART-BEAT"), alive, 20.0)
    events(core)
    with pytest.raises(UnknownIdentifier) as caught:
        introduce(core, alice, bob, TTL + 1)
    assert caught.value.status == 404
    assert caught.value.role == expired
    assert drain(core) == []
    gone = alice if expired == "initiator" else bob
    gone_address = ALICE if expired == "initiator" else BOB
    assert events(core) == [RegistrationExpired(gone, gone_address)]


# -- INITIATE_CHAT retransmission -------------------------------------------------------


def retransmit_times(start: float) -> list[float]:
    return [start + t for t in itertools.accumulate(NOTICE_RETRANSMIT_DELAYS)]


def test_ack_peer_gets_initiate_chat_retransmitted_at_the_delays() -> None:
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    start = 1.0
    intro = introduce(core, alice, bob, start)
    [(first, destination)] = drain(core, start)
    assert destination == BOB
    for due in retransmit_times(start):
        assert core.get_timer() == pytest.approx(due)
        core.handle_timer(due - 0.001)
        assert drain(core) == [], f"retransmitted before {due}"
        core.handle_timer(due)
        assert drain(core) == [(first, BOB)], f"no retransmission at {due}"
    # After the last delay it gives up: the only timer left is the expiry.
    assert core.get_timer() == TTL
    for now in (start + 10, start + 20, TTL - 0.5):
        core.handle_timer(now)
        assert drain(core) == []
    assert json.loads(first)["token"] == intro.token


def test_features_list_with_ack_enables_retransmission() -> None:
    core, alice, bob = two_registered(bob_features="chat,ack", bob_beats=5)
    introduce(core, alice, bob, 0.0)
    drain(core)
    core.handle_timer(NOTICE_RETRANSMIT_DELAYS[0])
    assert len(drain(core)) == 1


def test_ack_stops_retransmission() -> None:
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    intro = introduce(core, alice, bob, 1.0)
    drain(core)
    first_retransmit = retransmit_times(1.0)[0]
    core.handle_timer(first_retransmit)
    assert len(drain(core)) == 1
    events(core)
    core.receive_datagram(
        dgram("INITIATE_CHAT_ACK", token=intro.token), BOB, first_retransmit + 0.1
    )
    assert events(core) == []  # accepted, not rejected
    assert core.rejected == {}
    assert drain(core) == []  # an ACK is not answered
    assert core.get_timer() == TTL  # only the registrations' expiry is left
    for now in retransmit_times(1.0):
        core.handle_timer(now)
        assert drain(core) == []


def test_immediate_ack_means_no_retransmission_at_all() -> None:
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    intro = introduce(core, alice, bob, 1.0)
    drain(core)
    core.receive_datagram(dgram("INITIATE_CHAT_ACK", token=intro.token), BOB, 1.01)
    for now in retransmit_times(1.0):
        core.handle_timer(now)
        assert drain(core) == []


@pytest.mark.parametrize(
    ("source", "token"),
    [(CAROL, "right"), (ALICE, "right"), (BOB, "0000000000000000"), (BOB, None)],
    ids=["stranger", "initiator", "wrong-token", "no-token"],
)
def test_ack_from_elsewhere_or_with_wrong_token_is_rejected(
    source: Address, token: str | None
) -> None:
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    intro = introduce(core, alice, bob, 1.0)
    drain(core)
    events(core)
    extra = {} if token is None else {"token": intro.token if token == "right" else token}
    core.receive_datagram(dgram("INITIATE_CHAT_ACK", **extra), source, 1.1)
    [event] = events(core)
    assert isinstance(event, DatagramIgnored)
    assert event.address == source
    assert core.rejected["unexpected ack"] == 1
    # The notice is still pending and goes out again.
    core.handle_timer(retransmit_times(1.0)[0])
    assert [a for _, a in drain(core)] == [BOB]


@pytest.mark.parametrize("features", [None, "", "chat", "acks", "ACK,chat"])
def test_peer_without_ack_feature_gets_initiate_chat_exactly_once(features: str | None) -> None:
    """A Go client never acknowledges: it must not be flooded with copies."""
    core, alice, bob = two_registered(bob_features=features)
    introduce(core, alice, bob, 1.0)
    assert [a for _, a in drain(core)] == [BOB]
    assert core.get_timer() == TTL
    for now in [*retransmit_times(1.0), 10.0, 20.0]:
        core.handle_timer(now)
        assert drain(core) == []


def test_retransmission_stops_when_the_peer_expires() -> None:
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    core.receive_datagram(dgram("HEART-BEAT"), ALICE, 29.0)
    start = TTL - 0.5  # bob expires at TTL, in the middle of the retransmissions
    introduce(core, alice, bob, start)
    drain(core)
    core.handle_timer(start + NOTICE_RETRANSMIT_DELAYS[0])
    assert [a for _, a in drain(core)] == [BOB]
    core.handle_timer(TTL)
    assert core.lookup(bob) is None
    for now in retransmit_times(start):
        core.handle_timer(now)
        assert drain(core) == []


# -- garbage ----------------------------------------------------------------------------

GARBAGE = [
    pytest.param(b"", "malformed", id="empty"),
    pytest.param(b"not json at all", "malformed", id="not-json"),
    pytest.param(b"\xff\xfe\x00{", "malformed", id="not-utf8"),
    pytest.param(b'{"type":"REGISTRATION","payload":"\xc3"}', "malformed", id="bad-utf8-in-json"),
    pytest.param(b"[1, 2, 3]", "malformed", id="json-array"),
    pytest.param(b'"REGISTRATION"', "malformed", id="json-string"),
    pytest.param(b'{"type":"REGISTRATION"}', "malformed", id="no-payload"),
    pytest.param(b'{"payload":""}', "malformed", id="no-type"),
    pytest.param(b'{"type":"REGISTRATION","payload":5}', "malformed", id="payload-int"),
    pytest.param(b'{"type":7,"payload":""}', "malformed", id="type-int"),
    pytest.param(
        b'{"type":"REGISTRATION","payload":"","features":["ack"]}', "malformed", id="features-list"
    ),
    pytest.param(b'{"type":"REGISTRATION","payload":"","x":NaN}', "malformed", id="nan"),
    pytest.param(b"[" * 3000 + b"]" * 3000, "malformed", id="deep-nesting"),
    pytest.param(
        b'{"type":"REGISTRATION","payload":""}' + b" " * MAX_DATAGRAM_BYTES,
        "oversized",
        id="oversized",
    ),
    pytest.param(b'{"type":"GOODBYE","payload":""}', "unknown type", id="unknown-type"),
    pytest.param(dgram("HELLO"), "unexpected type", id="hello"),
    pytest.param(dgram("TEXT", "hi\n"), "unexpected type", id="text"),
    pytest.param(dgram("SUCCESS"), "unexpected type", id="success"),
    pytest.param(dgram("INITIATE_CHAT", "1.2.3.4:5"), "unexpected type", id="initiate-chat"),
    pytest.param(dgram("HEART-BEAT"), "not registered", id="unregistered-heartbeat"),
    pytest.param(dgram("INITIATE_CHAT_ACK", token="abc"), "unexpected ack", id="stray-ack"),
]


@pytest.mark.parametrize(("data", "reason"), GARBAGE)
def test_garbage_is_rejected_counted_and_changes_nothing(data: bytes, reason: str) -> None:
    core, alice, _bob = two_registered()
    before = snapshot(core)
    core.receive_datagram(data, CAROL, 1.0)
    [event] = events(core)
    assert isinstance(event, DatagramIgnored)
    assert event.address == CAROL
    assert event.reason == reason
    assert event.detail
    assert core.rejected == {reason: 1}
    assert drain(core, 1.0) == []
    assert snapshot(core) == before
    assert all(r.address != CAROL for r in core.registrations)
    # The server is not wedged: the same address registers normally afterwards.
    carol = register(core, CAROL, 2.0)
    assert core.lookup(carol) is not None
    assert introduce(core, carol, alice, 3.0).peer_address == ALICE


@pytest.mark.parametrize(
    "data",
    [dgram("TEXT", "hi\n"), dgram("HELLO"), b"garbage", dgram("NOPE")],
    ids=["text", "hello", "not-json", "unknown-type"],
)
def test_garbage_from_a_registered_peer_does_not_refresh_it(data: bytes) -> None:
    core, alice, _ = two_registered()
    before = snapshot(core)
    core.receive_datagram(data, ALICE, 20.0)
    assert snapshot(core) == before
    assert core.lookup(alice).last_seen == 0.0  # type: ignore[union-attr]
    assert drain(core) == []


def test_largest_allowed_datagram_is_accepted() -> None:
    data = registration()
    data = data[:-1] + b" " * (MAX_DATAGRAM_BYTES - len(data)) + b"}"
    assert len(data) == MAX_DATAGRAM_BYTES
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(data, ALICE, 0.0)
    assert len(core) == 1
    assert core.rejected == {}


def test_rejections_are_counted_by_reason() -> None:
    core = RendezvousCore(rng=random.Random(0))
    for data in (b"x", b"y", dgram("HELLO"), dgram("HEART-BEAT"), dgram("WHAT")):
        core.receive_datagram(data, CAROL, 0.0)
    assert core.rejected == {
        "malformed": 2,
        "unexpected type": 1,
        "not registered": 1,
        "unknown type": 1,
    }
    assert len(core) == 0


def test_huge_integer_in_a_datagram_is_rejected_not_raised() -> None:
    """Python refuses to parse integers over 4300 digits with a plain ValueError.

    A 5 kB datagram (under MAX_DATAGRAM_BYTES) carrying such a number in an
    unknown key is bad input from the network: DESIGN.md section 2 says it is
    counted and dropped, never raised.
    """
    data = b'{"type":"REGISTRATION","payload":"","x":' + b"1" * 5000 + b"}"
    assert len(data) <= MAX_DATAGRAM_BYTES
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(data, CAROL, 0.0)
    assert core.rejected == {"malformed": 1}
    assert len(core) == 0
    assert drain(core) == []


# -- property: arbitrary input never raises and never changes state ---------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from([t.value for t in MessageType] + ["", "registration", "HEART_BEAT"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
json_keys = st.sampled_from(["type", "payload", "Type", "PAYLOAD", "token", "features", "x"])
json_objects = st.dictionaries(json_keys, json_values, max_size=5).map(
    lambda obj: json.dumps(obj).encode()
)
arbitrary_datagrams = st.one_of(
    st.binary(max_size=600), json_objects, json_values.map(lambda v: json.dumps(v).encode())
)


def is_registration(data: bytes) -> bool:
    try:
        return decode(data).type is MessageType.REGISTRATION
    except RemoteProtocolError:
        return False


@pytest.mark.slow
@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=arbitrary_datagrams)
def test_arbitrary_datagrams_never_raise_and_never_change_state(data: bytes) -> None:
    assume(not is_registration(data))
    core, alice, bob = two_registered(bob_features="ack", bob_beats=20)
    introduce(core, alice, bob, 1.0)
    drain(core)
    events(core)
    before = snapshot(core)
    core.receive_datagram(data, CAROL, 1.5)
    assert drain(core) == []
    assert snapshot(core) == before
    found = events(core)
    assert len(found) == 1
    assert isinstance(found[0], DatagramIgnored)
    assert sum(core.rejected.values()) == 1
    # The pending notice is untouched: it still goes out on time.
    core.handle_timer(retransmit_times(1.0)[0])
    assert [a for _, a in drain(core)] == [BOB]


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(payload=st.text(max_size=200), features=st.none() | st.text(max_size=30))
def test_any_registration_payload_or_features_registers(payload: str, features: str | None) -> None:
    """Go clients send "", but the payload of a REGISTRATION is never interpreted."""
    extra = {} if features is None else {"features": features}
    data = json.dumps({"type": "REGISTRATION", "payload": payload, **extra}).encode()
    core = RendezvousCore(rng=random.Random(0))
    core.receive_datagram(data, ALICE, 0.0)
    out = drain(core)
    assert len(out) == 1
    assert out[0][1] == ALICE
    peer_id = decode(out[0][0]).payload
    assert uuid.UUID(peer_id).version == 4
    assert core.lookup(peer_id) is not None


def test_a_silent_peer_is_never_sent_more_than_it_sent_plus_the_introduction() -> None:
    """No reflection: an address that stops talking stops getting copies."""
    core, alice, bob = two_registered(bob_features="ack")
    introduce(core, alice, bob, 1.0)
    sent = [a for _, a in drain(core)]
    now = 1.0
    while (due := core.get_timer()) is not None and due < 20.0:
        now = due
        core.handle_timer(now)
        sent += [a for _, a in drain(core)]
    assert sent == [BOB]  # one REGISTRATION came from Bob; one answer, one introduction
    assert core.rejected["reflection limit"] > 0
    # A heart-beat from Bob earns exactly one more copy.
    core.receive_datagram(dgram("HEART-BEAT"), BOB, now + 0.01)
    core.handle_timer(core.get_timer() or now)
    assert [a for _, a in drain(core)] == [BOB]


def test_json_with_leading_whitespace_is_still_json_not_stun() -> None:
    from punchlab.server import RendezvousCore

    core = RendezvousCore()
    core.receive_datagram(b'\n{"type":"REGISTRATION","payload":""}', ("192.0.2.9", 5000), 0.0)
    [(answer, _)] = core.datagrams_to_send(0.0)
    assert answer.startswith(b'{"type":"REGISTRATION"')
