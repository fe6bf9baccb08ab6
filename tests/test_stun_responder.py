"""The STUN server side: right answers, right sockets, and never an amplifier."""

from __future__ import annotations

import os

import pytest

from punchlab.stun.codec import (
    Attr,
    Cls,
    StunMessage,
    change_request,
    encode,
    parse,
    read_error_code,
    read_unknown_attributes,
)
from punchlab.stun.responder import (
    MAX_AMPLIFICATION,
    Reply,
    StunEndpoints,
    StunRefused,
    StunResponder,
)

PRIMARY, ALTERNATE = ("192.0.2.1", 3478), ("192.0.2.2", 3479)
CLIENT = ("198.51.100.7", 40000)


def full() -> StunResponder:
    return StunResponder(StunEndpoints(PRIMARY, ALTERNATE))


def ask(*attributes: tuple[int, bytes], cookie: bool = True, fingerprint: bool = False) -> bytes:
    tid = os.urandom(12 if cookie else 16)
    return encode(StunMessage(Cls.REQUEST, tid, attributes, cookie), fingerprint=fingerprint)


def answer(responder: StunResponder, data: bytes, arrived_on: tuple[str, int] = PRIMARY) -> Reply:
    reply = responder.answer(data, CLIENT, arrived_on, 0.0)
    assert isinstance(reply, Reply), reply
    return reply


def test_a_binding_answer_names_the_source_and_the_other_address() -> None:
    reply = answer(full(), ask())
    message = parse(reply.data)
    assert message.cls is Cls.SUCCESS and reply.via == PRIMARY and reply.destination == CLIENT
    assert message.address(Attr.XOR_MAPPED_ADDRESS) == CLIENT
    assert message.address(Attr.MAPPED_ADDRESS) == CLIENT
    assert message.address(Attr.OTHER_ADDRESS) == ALTERNATE
    assert message.address(Attr.RESPONSE_ORIGIN) == PRIMARY


@pytest.mark.parametrize(
    ("change", "via"),
    [
        ((True, True), ALTERNATE),
        ((False, True), (PRIMARY[0], ALTERNATE[1])),
        ((True, False), (ALTERNATE[0], PRIMARY[1])),
        ((False, False), PRIMARY),
    ],
)
def test_change_request_picks_the_answering_socket(
    change: tuple[bool, bool], via: tuple[str, int]
) -> None:
    reply = answer(full(), ask((Attr.CHANGE_REQUEST, change_request(*change))))
    assert reply.via == via
    assert parse(reply.data).address(Attr.RESPONSE_ORIGIN) == via


def test_without_an_alternate_address_change_request_is_an_unknown_attribute() -> None:
    single = StunResponder(StunEndpoints(PRIMARY))
    reply = answer(single, ask((Attr.CHANGE_REQUEST, change_request(True, True))))
    message = parse(reply.data)
    assert message.cls is Cls.ERROR and reply.via == PRIMARY
    assert read_error_code(message.get(Attr.ERROR_CODE) or b"")[0] == 420
    assert read_unknown_attributes(message.get(Attr.UNKNOWN_ATTRIBUTES) or b"") == [0x0003]
    assert parse(answer(single, ask()).data).get(Attr.OTHER_ADDRESS) is None


@pytest.mark.parametrize("kind", [Attr.PADDING, Attr.RESPONSE_PORT, 0x0002, 0x7ABC])
def test_padding_response_port_and_unknown_required_attributes_get_420(kind: int) -> None:
    responder = full()
    reply = answer(responder, ask((kind, b"\0" * 4)))
    message = parse(reply.data)
    assert read_error_code(message.get(Attr.ERROR_CODE) or b"")[0] == 420
    assert read_unknown_attributes(message.get(Attr.UNKNOWN_ATTRIBUTES) or b"") == [kind]
    assert responder.counts["error 420"] == 1


def test_unknown_optional_attributes_are_ignored() -> None:
    assert parse(answer(full(), ask((0xC001, b"hi"))).data).cls is Cls.SUCCESS


def test_an_rfc_3489_client_gets_the_classic_attributes() -> None:
    message = parse(answer(full(), ask(cookie=False)).data)
    assert not message.cookie and message.address(Attr.MAPPED_ADDRESS) == CLIENT
    assert message.get(Attr.XOR_MAPPED_ADDRESS) is None
    assert message.address(Attr.CHANGED_ADDRESS) == ALTERNATE
    assert message.address(Attr.SOURCE_ADDRESS) == PRIMARY


def test_no_answer_is_more_than_four_times_its_request() -> None:
    v6 = StunResponder(StunEndpoints(("2001:db8::1", 3478), ("2001:db8::2", 3479)))
    for responder, client in ((full(), CLIENT), (v6, ("2001:db8::99", 40000))):
        for data in (ask(), ask(fingerprint=True), ask(cookie=False)):
            primary = responder.endpoints.primary
            reply = responder.answer(data, client, primary, 0.0)
            assert isinstance(reply, Reply)
            assert len(reply.data) <= MAX_AMPLIFICATION * len(data)
            assert parse(reply.data).mapped() == client


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x00\x08" + bytes(16), encode(StunMessage(Cls.SUCCESS, os.urandom(12)))],
)
def test_malformed_or_non_requests_are_counted_and_not_answered(data: bytes) -> None:
    responder = full()
    assert isinstance(responder.answer(data, CLIENT, PRIMARY, 0.0), StunRefused)
    assert sum(responder.counts.values()) == 1 and "answered" not in responder.counts


def test_one_source_is_rate_limited_and_others_are_not() -> None:
    responder = StunResponder(StunEndpoints(PRIMARY), per_second=1.0, burst=3)
    answers = [responder.answer(ask(), CLIENT, PRIMARY, 0.0) for _ in range(5)]
    assert [isinstance(a, Reply) for a in answers] == [True, True, True, False, False]
    assert isinstance(responder.answer(ask(), ("198.51.100.8", 1), PRIMARY, 0.0), Reply)
    assert isinstance(responder.answer(ask(), CLIENT, PRIMARY, 1.0), Reply)


def test_a_fingerprinted_request_gets_a_fingerprinted_answer() -> None:
    assert parse(answer(full(), ask(fingerprint=True)).data).fingerprinted
    assert not parse(answer(full(), ask()).data).fingerprinted


def test_sources_in_one_ipv6_slash_64_share_a_budget_and_everyone_shares_another() -> None:
    v6 = StunEndpoints(("2001:db8::1", 3478))
    responder = StunResponder(v6, per_second=1.0, burst=2, total_per_second=1.0, total_burst=5)
    near = [(f"2001:db8:1:2::{n:x}", 40000) for n in range(4)]
    answers = [responder.answer(ask(), source, v6.primary, 0.0) for source in near]
    assert [isinstance(a, Reply) for a in answers] == [True, True, False, False]
    far = [(f"2001:db8:{n}::1", 40000) for n in range(10, 16)]
    answers = [responder.answer(ask(), source, v6.primary, 0.0) for source in far]
    assert sum(isinstance(a, Reply) for a in answers) == 3  # the total budget: 5 in all


def test_a_wildcard_bound_server_names_no_origin_and_unmaps_ipv4_clients() -> None:
    wildcard = StunResponder(StunEndpoints(("::", 8089)))
    reply = wildcard.answer(ask(), ("::ffff:198.51.100.7", 4000), ("::", 8089), 0.0)
    assert isinstance(reply, Reply)
    message = parse(reply.data)
    assert message.get(Attr.RESPONSE_ORIGIN) is None
    assert message.mapped() == ("198.51.100.7", 4000)


def test_change_request_asking_for_nothing_is_still_420_without_an_alternate() -> None:
    single = StunResponder(StunEndpoints(PRIMARY))
    reply = answer(single, ask((Attr.CHANGE_REQUEST, change_request(False, False))))
    assert read_error_code(parse(reply.data).get(Attr.ERROR_CODE) or b"")[0] == 420
