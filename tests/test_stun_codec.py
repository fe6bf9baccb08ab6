"""The STUN codec: round trips, an independent codec (aioice) agrees, bad bytes are refused."""

from __future__ import annotations

import ipaddress
import os

import aioice.stun as reference
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from punchlab.messages import describe
from punchlab.stun.codec import (
    Attr,
    Cls,
    MalformedStun,
    StunMessage,
    change_request,
    encode,
    encode_address,
    error_code,
    looks_like_stun,
    parse,
    read_change_request,
    read_error_code,
)

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


def request(*attributes: tuple[int, bytes], cookie: bool = True) -> StunMessage:
    return StunMessage(Cls.REQUEST, os.urandom(12 if cookie else 16), attributes, cookie)


@given(ip=ipv4 | ipv6, port=ports, tid=st.binary(min_size=12, max_size=12))
def test_xor_mapped_address_round_trips_and_aioice_reads_it(ip: str, port: int, tid: bytes) -> None:
    base = StunMessage(Cls.SUCCESS, tid)
    attributes = (
        (Attr.XOR_MAPPED_ADDRESS, encode_address((ip, port), xor=True, message=base)),
        (Attr.MAPPED_ADDRESS, encode_address((ip, port))),
    )
    data = encode(StunMessage(Cls.SUCCESS, tid, attributes), fingerprint=True)
    message = parse(data)
    # An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 client) goes out as IPv4.
    mapped_v4 = ipaddress.ip_address(ip).version == 6 and ipaddress.IPv6Address(ip).ipv4_mapped
    expected = (str(mapped_v4) if mapped_v4 else ip, port)
    assert message.fingerprinted and message.mapped() == expected
    assert message.address(Attr.MAPPED_ADDRESS) == expected
    theirs = reference.parse_message(data)
    assert theirs.message_class == reference.Class.RESPONSE
    assert theirs.attributes["XOR-MAPPED-ADDRESS"] == expected
    assert theirs.transaction_id == tid


@given(
    cls=st.sampled_from(list(Cls)),
    software=st.binary(max_size=40),
    change=st.tuples(st.booleans(), st.booleans()),
)
def test_what_aioice_writes_we_read_and_the_other_way(
    cls: Cls, software: bytes, change: tuple[bool, bool]
) -> None:
    theirs = reference.Message(reference.Method.BINDING, reference.Class(cls_to_aioice(cls)))
    theirs.attributes["CHANGE-REQUEST"] = (4 if change[0] else 0) | (2 if change[1] else 0)
    theirs.attributes["SOFTWARE"] = software.decode("latin-1")
    ours = parse(bytes(theirs))
    assert ours.cls is cls and ours.transaction_id == theirs.transaction_id
    assert read_change_request(ours.get(Attr.CHANGE_REQUEST) or b"") == change
    again = reference.parse_message(encode(ours))
    assert again.attributes["CHANGE-REQUEST"] == theirs.attributes["CHANGE-REQUEST"]


def cls_to_aioice(cls: Cls) -> int:
    return {Cls.REQUEST: 0, Cls.INDICATION: 0x10, Cls.SUCCESS: 0x100, Cls.ERROR: 0x110}[cls]


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_any_bytes_parse_or_are_refused_as_malformed(data: bytes) -> None:
    try:
        message = parse(data)
    except MalformedStun:
        return
    assert parse(encode(message)) == message


@given(st.binary(min_size=20, max_size=80))
def test_a_flipped_byte_after_the_fingerprint_is_caught(tail: bytes) -> None:
    data = bytearray(encode(request((Attr.SOFTWARE, tail)), fingerprint=True))
    data[24] ^= 0xFF  # inside SOFTWARE: the fingerprint no longer matches
    with pytest.raises(MalformedStun, match="FINGERPRINT"):
        parse(bytes(data))


def test_an_rfc_3489_request_has_no_cookie_and_a_16_byte_id() -> None:
    classic = request((Attr.CHANGE_REQUEST, change_request(True, False)), cookie=False)
    message = parse(encode(classic))
    assert not message.cookie and len(message.transaction_id) == 16
    assert read_change_request(message.get(Attr.CHANGE_REQUEST) or b"") == (True, False)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x01\x00\x04" + bytes(16), "length field"),
        (b"\x00\x01\x00\x04" + bytes(16) + b"\x00\x01", "length field"),
        (b"\x00\x01\x00\x04" + bytes(16) + b"\x00\x01\x00\x08", "past the end"),
        (b"\x40\x01\x00\x00" + bytes(16), "not a STUN header"),
        (b'{"type":"HELLO"}' + bytes(8), "not a STUN header"),
    ],
)
def test_malformed_messages_say_why(data: bytes, why: str) -> None:
    with pytest.raises(MalformedStun, match=why):
        parse(data)


def test_json_and_stun_are_told_apart_by_the_first_byte() -> None:
    assert looks_like_stun(encode(request()))
    assert not looks_like_stun(b'{"type":"REGISTRATION","payload":""}')
    assert not looks_like_stun(b"\x00\x01")


def test_error_codes_and_traces_read_in_words() -> None:
    code, reason = read_error_code(error_code(420, "Unknown Attribute"))
    assert (code, reason) == (420, "Unknown Attribute")
    assert describe(encode(request((Attr.CHANGE_REQUEST, change_request(True, True))))) == (
        "STUN",
        "Binding request (change IP and port)",
    )
    assert describe(b"\x00\x01\x00\x04" + bytes(16))[0] == "STUN"
