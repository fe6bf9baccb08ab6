"""The wire format of DESIGN.md section 1: exact bytes, tolerant reading, clear errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from punchlab.messages import (
    MAX_DATAGRAM_BYTES,
    LocalProtocolError,
    MalformedMessage,
    Message,
    MessageType,
    OversizedMessage,
    RemoteProtocolError,
    UnknownMessageType,
    decode,
    describe,
    encode,
    format_address,
    parse_address,
)

UUID = "3f2b8c1e-6d4a-4b7e-9c2f-1a5e8d7b6c40"

# -- golden examples: what the Go implementation sends and expects -----------------------

GOLDEN = [
    (Message(MessageType.REGISTRATION, ""), b'{"type":"REGISTRATION","payload":""}'),
    (
        Message(MessageType.REGISTRATION, UUID),
        b'{"type":"REGISTRATION","payload":"' + UUID.encode() + b'"}',
    ),
    (
        Message(MessageType.INITIATE_CHAT, "198.51.100.7:62001"),
        b'{"type":"INITIATE_CHAT","payload":"198.51.100.7:62001"}',
    ),
    (Message(MessageType.HELLO, "..."), b'{"type":"HELLO","payload":"..."}'),
    (Message(MessageType.SUCCESS, "..."), b'{"type":"SUCCESS","payload":"..."}'),
    (Message(MessageType.TEXT, "hi there\n"), b'{"type":"TEXT","payload":"hi there\\n"}'),
    (Message(MessageType.HEART_BEAT, "..."), b'{"type":"HEART-BEAT","payload":"..."}'),
]


@pytest.mark.parametrize(("message", "wire"), GOLDEN, ids=lambda v: getattr(v, "type", None))
def test_encode_golden_bytes(message: Message, wire: bytes) -> None:
    assert encode(message) == wire


@pytest.mark.parametrize(("message", "wire"), GOLDEN, ids=lambda v: getattr(v, "type", None))
def test_decode_golden_bytes(message: Message, wire: bytes) -> None:
    assert decode(wire) == message


def test_default_payload_is_three_dots() -> None:
    assert encode(Message(MessageType.HELLO)) == b'{"type":"HELLO","payload":"..."}'


def test_go_style_spaced_json_decodes() -> None:
    wire = b'{ "type" : "TEXT" , "payload" : "hello\\n" }\n'
    assert decode(wire) == Message(MessageType.TEXT, "hello\n")


def test_encode_writes_utf8_not_escapes() -> None:
    wire = encode(Message(MessageType.TEXT, "héllo ✓"))
    assert wire == '{"type":"TEXT","payload":"héllo ✓"}'.encode()


def test_heart_beat_value_has_a_dash() -> None:
    assert MessageType.HEART_BEAT.value == "HEART-BEAT"
    with pytest.raises(UnknownMessageType):
        decode(b'{"type":"HEART_BEAT","payload":"..."}')


# -- key letter case -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        b'{"Type":"HELLO","Payload":"x"}',
        b'{"TYPE":"HELLO","PAYLOAD":"x"}',
        b'{"tYpE":"HELLO","pAyLoAd":"x"}',
        b'{"type":"HELLO","PAYLOAD":"x"}',
    ],
)
def test_decode_accepts_keys_in_any_case(wire: bytes) -> None:
    assert decode(wire) == Message(MessageType.HELLO, "x")


def test_decode_extension_keys_in_any_case() -> None:
    message = decode(b'{"type":"HELLO","payload":"x","Token":"t1","FEATURES":"ack"}')
    assert message.token == "t1"
    assert message.features == "ack"


@pytest.mark.parametrize(
    "wire",
    [
        b'{"type":"HELLO","Type":"TEXT","payload":"x"}',
        b'{"Type":"TEXT","type":"HELLO","payload":"x"}',
        b'{"TYPE":"TEXT","type":"HELLO","Type":"SUCCESS","payload":"x"}',
    ],
)
def test_exact_lowercase_key_wins_over_other_spellings(wire: bytes) -> None:
    assert decode(wire).type is MessageType.HELLO


def test_exact_lowercase_payload_wins() -> None:
    assert decode(b'{"PAYLOAD":"no","type":"TEXT","payload":"yes"}').payload == "yes"
    assert decode(b'{"type":"TEXT","payload":"yes","Payload":"no"}').payload == "yes"


def test_unknown_keys_are_ignored() -> None:
    wire = b'{"type":"TEXT","payload":"x","extra":[1,{"a":null}],"n":3.5,"flag":true}'
    assert decode(wire) == Message(MessageType.TEXT, "x")


# -- unknown types -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PING", "hello", "", "INITIATE-CHAT", "TEXT "])
def test_unknown_type_raises_with_name(name: str) -> None:
    wire = json.dumps({"type": name, "payload": "..."}).encode()
    with pytest.raises(UnknownMessageType) as info:
        decode(wire)
    assert info.value.message_type == name
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.reason == "unknown type"


def test_unknown_type_is_not_malformed() -> None:
    with pytest.raises(UnknownMessageType) as info:
        decode(b'{"type":"FUTURE","payload":"..."}')
    assert not isinstance(info.value, MalformedMessage)
    assert "FUTURE" in str(info.value)


# -- malformed input -----------------------------------------------------------------------

MALFORMED = {
    "not utf-8": b'{"type":"TEXT","payload":"\xff\xfe"}',
    "truncated utf-8": b'{"type":"TEXT","payload":"\xc3"}',
    "empty": b"",
    "not json": b"hello",
    "truncated json": b'{"type":"TEXT","payload":"x"',
    "trailing garbage": b'{"type":"TEXT","payload":"x"} x',
    "single quotes": b"{'type':'TEXT','payload':'x'}",
    "nan value": b'{"type":"TEXT","payload":"x","n":NaN}',
    "infinity value": b'{"type":"TEXT","payload":"x","n":Infinity}',
    "minus infinity": b'{"type":"TEXT","payload":"x","n":-Infinity}',
    "bare nan": b"NaN",
    "array": b'[{"type":"TEXT","payload":"x"}]',
    "string": b'"TEXT"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
    "missing type": b'{"payload":"x"}',
    "missing payload": b'{"type":"TEXT"}',
    "empty object": b"{}",
    "null type": b'{"type":null,"payload":"x"}',
    "numeric type": b'{"type":1,"payload":"x"}',
    "list type": b'{"type":["TEXT"],"payload":"x"}',
    "null payload": b'{"type":"TEXT","payload":null}',
    "numeric payload": b'{"type":"TEXT","payload":5}',
    "object payload": b'{"type":"TEXT","payload":{"a":"b"}}',
    "bool payload": b'{"type":"TEXT","payload":false}',
    "numeric token": b'{"type":"TEXT","payload":"x","token":7}',
    "object token": b'{"type":"TEXT","payload":"x","token":{}}',
    "list features": b'{"type":"TEXT","payload":"x","features":["ack"]}',
    "bool features": b'{"type":"TEXT","payload":"x","features":true}',
    "bom": b'\xef\xbb\xbf{"type":"TEXT","payload":"x"}',
    "deeply nested array": b"[" * 4000 + b"]" * 4000,
    "deeply nested unclosed": b"[" * MAX_DATAGRAM_BYTES,
    "deeply nested in a key": (
        b'{"type":"TEXT","payload":"x","k":' + b"[" * 4000 + b"]" * 4000 + b"}"
    ),
    "deeply nested objects": b'{"a":' * 1300 + b"1" + b"}" * 1300,
}


@pytest.mark.parametrize("wire", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_raises_malformed_message(wire: bytes) -> None:
    assert len(wire) <= MAX_DATAGRAM_BYTES
    with pytest.raises(MalformedMessage) as info:
        decode(wire)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.reason == "malformed"


def test_huge_integer_in_unknown_key_is_a_remote_error() -> None:
    """A 5000-digit number fits in one datagram; it must not escape as a plain ValueError."""
    wire = b'{"type":"TEXT","payload":"x","n":' + b"1" * 5000 + b"}"
    assert len(wire) <= MAX_DATAGRAM_BYTES
    try:
        message = decode(wire)
    except RemoteProtocolError:
        return
    # Ignoring the unknown key would be fine too.
    assert message == Message(MessageType.TEXT, "x")


def test_huge_integer_does_not_break_describe() -> None:
    wire = b'{"type":"TEXT","payload":"x","n":' + b"9" * 6000 + b"}"
    msg_type, _ = describe(wire)
    assert msg_type in ("TEXT", "MALFORMED")


def test_lone_surrogate_escape_does_not_yield_unencodable_message() -> None:
    """Go replaces an invalid \\ud800 escape with U+FFFD; we must not keep a lone surrogate.

    Either a clear MalformedMessage, or a payload that is real Unicode (so that
    re-encoding it, showing it in a widget or saving it in a trace works).
    """
    wire = b'{"type":"TEXT","payload":"a\\ud800b"}'
    try:
        message = decode(wire)
    except MalformedMessage:
        return
    message.payload.encode("utf-8")
    assert decode(encode(message)) == message


# -- size limits ---------------------------------------------------------------------------


#: Bytes of ``{"type":"TEXT","payload":""}``, around the payload.
TEXT_OVERHEAD = 28


def _text_of_size(size: int) -> bytes:
    return encode(Message(MessageType.TEXT, "a" * (size - TEXT_OVERHEAD)))


def test_datagram_at_the_limit_is_accepted() -> None:
    wire = _text_of_size(MAX_DATAGRAM_BYTES)
    assert len(wire) == MAX_DATAGRAM_BYTES
    assert decode(wire).payload == "a" * (MAX_DATAGRAM_BYTES - TEXT_OVERHEAD)


def test_oversized_datagram_raises_oversized() -> None:
    wire = b'{"type":"TEXT","payload":"' + b"a" * MAX_DATAGRAM_BYTES + b'"}'
    with pytest.raises(OversizedMessage) as info:
        decode(wire)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.reason == "oversized"


def test_one_byte_over_the_limit_is_oversized() -> None:
    wire = b'{"type":"TEXT","payload":"' + b"a" * (MAX_DATAGRAM_BYTES - TEXT_OVERHEAD + 1) + b'"}'
    assert len(wire) == MAX_DATAGRAM_BYTES + 1
    with pytest.raises(OversizedMessage):
        decode(wire)


def test_oversized_garbage_is_oversized_not_malformed() -> None:
    with pytest.raises(OversizedMessage):
        decode(b"\xff" * (MAX_DATAGRAM_BYTES + 1))


def test_encode_of_oversized_message_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode(Message(MessageType.TEXT, "a" * MAX_DATAGRAM_BYTES))


def test_encode_limit_counts_utf8_bytes_not_characters() -> None:
    # 3000 characters of 3 bytes each: under the limit in characters, over it in bytes.
    with pytest.raises(LocalProtocolError):
        encode(Message(MessageType.TEXT, "✓" * 3000))


def test_encode_at_the_limit_succeeds() -> None:
    assert len(encode(Message(MessageType.TEXT, ""))) == TEXT_OVERHEAD
    message = Message(MessageType.TEXT, "a" * (MAX_DATAGRAM_BYTES - TEXT_OVERHEAD))
    assert len(encode(message)) == MAX_DATAGRAM_BYTES
    with pytest.raises(LocalProtocolError):
        encode(Message(MessageType.TEXT, "a" * (MAX_DATAGRAM_BYTES - TEXT_OVERHEAD + 1)))


# -- extension keys ------------------------------------------------------------------------


def test_extension_keys_absent_when_unset() -> None:
    wire = encode(Message(MessageType.HELLO, "..."))
    assert set(json.loads(wire)) == {"type", "payload"}
    assert b"token" not in wire
    assert b"features" not in wire


def test_token_written_when_set() -> None:
    wire = encode(Message(MessageType.HELLO, "...", token="s3cret"))
    assert wire == b'{"type":"HELLO","payload":"...","token":"s3cret"}'


def test_features_written_when_set() -> None:
    wire = encode(Message(MessageType.REGISTRATION, "", features="ack"))
    assert wire == b'{"type":"REGISTRATION","payload":"","features":"ack"}'


def test_empty_token_is_still_written() -> None:
    wire = encode(Message(MessageType.HELLO, "...", token=""))
    assert json.loads(wire) == {"type": "HELLO", "payload": "...", "token": ""}
    assert decode(wire).token == ""


def test_null_extension_keys_decode_as_unset() -> None:
    message = decode(b'{"type":"HELLO","payload":"x","token":null,"features":null}')
    assert message == Message(MessageType.HELLO, "x")


def test_has_feature() -> None:
    assert Message(MessageType.REGISTRATION, "", features="ack,zip").has_feature("ack")
    assert Message(MessageType.REGISTRATION, "", features="zip,ack").has_feature("ack")
    assert not Message(MessageType.REGISTRATION, "", features="acks").has_feature("ack")
    assert not Message(MessageType.REGISTRATION, "").has_feature("ack")


# -- properties ----------------------------------------------------------------------------

messages = st.builds(
    Message,
    type=st.sampled_from(list(MessageType)),
    payload=st.text(max_size=200),
    token=st.none() | st.text(max_size=40),
    features=st.none() | st.text(max_size=40),
)


@settings(derandomize=True, max_examples=200)
@given(messages)
def test_round_trip_all_types(message: Message) -> None:
    assert decode(encode(message)) == message


@settings(derandomize=True, max_examples=200)
@given(messages)
def test_encode_writes_exactly_what_json_dumps_would(message: Message) -> None:
    fields = {"type": message.type.value, "payload": message.payload}
    if message.token is not None:
        fields["token"] = message.token
    if message.features is not None:
        fields["features"] = message.features
    expected = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert encode(message) == expected


def test_a_remembered_small_datagram_decodes_the_same_every_time() -> None:
    wire = b'{"type":"HEART-BEAT","payload":"..."}'
    assert decode(wire) is decode(wire)  # parsed once, shared (a Message is immutable)
    assert decode(wire) == Message(MessageType.HEART_BEAT, "...")


def test_a_small_bad_datagram_raises_every_time_it_comes() -> None:
    for _ in range(3):
        with pytest.raises(MalformedMessage):
            decode(b'{"type": 1}')


@settings(derandomize=True, max_examples=200)
@given(
    st.sampled_from(list(MessageType)),
    st.text(alphabet=st.sampled_from('"\\\n\r\t\x00\u2028é✓😀/{}:,'), max_size=60)
    | st.text(max_size=100),
)
def test_round_trip_tricky_payloads(message_type: MessageType, payload: str) -> None:
    message = Message(message_type, payload)
    wire = encode(message)
    wire.decode("utf-8")
    assert decode(wire) == message


@settings(derandomize=True, max_examples=200)
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_returns_message_or_remote_error(data: bytes) -> None:
    try:
        result = decode(data)
    except RemoteProtocolError:
        return
    assert decode(encode(result)) == result  # whatever was accepted means one message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
key_spellings = st.sampled_from(
    ["type", "Type", "TYPE", "payload", "Payload", "token", "features", "FEATURES", "other"]
)


@settings(derandomize=True, max_examples=200)
@given(
    st.dictionaries(
        key_spellings,
        json_values | st.sampled_from([t.value for t in MessageType]),
        max_size=5,
    )
)
def test_decode_json_objects_returns_message_or_remote_error(obj: dict[str, object]) -> None:
    data = json.dumps(obj).encode()
    try:
        result = decode(data)
    except RemoteProtocolError:
        return
    assert decode(encode(result)) == result  # whatever was accepted means one message
    assert result.payload == obj.get("payload", result.payload)


@settings(derandomize=True, max_examples=200)
@given(st.binary(max_size=300) | messages.map(encode))
def test_describe_never_raises(data: bytes) -> None:
    msg_type, payload = describe(data)
    assert isinstance(msg_type, str)
    assert msg_type
    assert isinstance(payload, str)


# -- describe ------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", list(MessageType))
def test_describe_names_the_type(message_type: MessageType) -> None:
    msg_type, payload = describe(encode(Message(message_type, "abc")))
    assert msg_type == message_type.value
    assert payload == "abc"


def test_describe_strips_trailing_newline_and_shortens() -> None:
    assert describe(encode(Message(MessageType.TEXT, "hi\n"))) == ("TEXT", "hi")
    msg_type, payload = describe(encode(Message(MessageType.TEXT, "x" * 100)), limit=10)
    assert msg_type == "TEXT"
    assert payload == "x" * 9 + "…"
    assert len(payload) == 10


def test_describe_unknown_type_names_it() -> None:
    assert describe(b'{"type":"FUTURE","payload":"x"}') == ("FUTURE", "")


def test_describe_malformed_and_oversized() -> None:
    assert describe(b"not json") == ("MALFORMED", "8 bytes")
    big = b"a" * (MAX_DATAGRAM_BYTES + 1)
    assert describe(big) == ("OVERSIZED", f"{MAX_DATAGRAM_BYTES + 1} bytes")


# -- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("198.51.100.7:62001", ("198.51.100.7", 62001)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("10.0.0.2:65535", ("10.0.0.2", 65535)),
    ],
)
def test_parse_and_format_address(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address
    assert format_address(address) == text


@settings(derandomize=True, max_examples=200)
@given(st.ip_addresses(v=4), st.integers(min_value=1, max_value=65535))
def test_address_round_trip(ip: object, port: int) -> None:
    address = (str(ip), port)
    assert parse_address(format_address(address)) == address


def test_parse_bracketed_ipv6() -> None:
    assert parse_address("[::1]:8088") == ("::1", 8088)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3.4",
        "host:80",
        "1.2.3.4:0",
        "1.2.3.4:70000",
        "1.2.3.4:65536",
        "1.2.3.4:x",
        "1.2.3.4:",
        ":80",
        "1.2.3.4:-1",
        "1.2.3.4:+80",
        "1.2.3.4: 80",
        "1.2.3:80",
        "256.1.1.1:80",
        "1.2.3.4:8 0",
        "1.2.3.4:²",
        # Brackets belong to IPv6 alone, and IPv6 needs them (else ::1:80 is ambiguous).
        "[1.2.3.4]:80",
        "1.2.3.4]:80",
        "[1.2.3.4:80",
        "::1:80",
        "[::1:80",
    ],
)
def test_parse_address_rejects_junk(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_address(text)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "HELLO"},
        {"type": MessageType.HELLO, "payload": None},
        {"type": MessageType.HELLO, "payload": 1},
        {"type": MessageType.HELLO, "token": 7},
        {"type": MessageType.REGISTRATION, "payload": "", "features": ["ack"]},
        {"type": MessageType.REGISTRATION, "payload": "x", "secret": b"s"},
    ],
)
def test_a_message_with_a_field_of_the_wrong_type_is_our_own_bug(fields: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        Message(**fields)


def test_an_rfc5780_port_is_ascii_digits_in_range_and_the_lowest_wins() -> None:
    from punchlab.messages import rfc5780_port

    assert rfc5780_port(frozenset({"ack", "rfc5780=3478"})) == 3478
    assert rfc5780_port(frozenset({"rfc5780=²", "rfc5780=٣٤٧٨", "rfc5780=0"})) is None
    assert rfc5780_port(frozenset({"rfc5780=99999", "rfc5780=70000"})) is None
    assert rfc5780_port(frozenset({"rfc5780=4000", "rfc5780=3478"})) == 3478
