"""The wire format shared with the original Go implementation.

Each UDP datagram carries one UTF-8 JSON object ``{"type": ..., "payload": ...}``.
We write lowercase keys and read keys in any letter case, as Go's
``encoding/json`` does, and we ignore keys we do not know so that extensions
(such as the per-introduction ``token``) travel without breaking either side.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote  # JSON string literal, non-ASCII kept
from typing import Any

from punchlab.errors import LocalProtocolError, PunchlabError, RemoteProtocolError

__all__ = [
    "FEATURE_ACK",
    "FEATURE_LARGE",
    "FEATURE_RELAY",
    "FEATURE_RELIABLE",
    "FEATURE_RFC5780",
    "FEATURE_SECRET",
    "FEATURE_TOKEN",
    "GO_DATAGRAM_BYTES",
    "MAX_DATAGRAM_BYTES",
    "MAX_SEQ",
    "ORIGINAL_TYPES",
    "PEER_FEATURES",
    "Address",
    "DatagramIgnored",
    "LocalProtocolError",
    "MalformedMessage",
    "Message",
    "MessageType",
    "OversizedMessage",
    "PunchlabError",
    "RemoteProtocolError",
    "UnknownMessageType",
    "decode",
    "describe",
    "encode",
    "format_address",
    "json_field",
    "parse_address",
    "parse_features",
    "rfc5780_port",
]

#: Largest datagram we accept or send. The Go client read into a 1024-byte
#: buffer and silently truncated; we read up to 64 KiB and reject anything
#: larger than this limit with a clear error instead.
MAX_DATAGRAM_BYTES = 8192

Address = tuple[str, int]


class MalformedMessage(RemoteProtocolError):
    """Not UTF-8, not JSON, not an object, or a field missing or of the wrong type."""


class OversizedMessage(RemoteProtocolError):
    """Larger than :data:`MAX_DATAGRAM_BYTES`."""

    reason = "oversized"


class UnknownMessageType(RemoteProtocolError):
    """Well formed, but of a type this version does not know (ignored, recorded)."""

    reason = "unknown type"

    def __init__(self, message_type: str) -> None:
        # A stranger chooses this string (up to a datagram's size): keep what
        # traces and logs need to recognise it, not kilobytes of it.
        shown = message_type if len(message_type) <= 40 else message_type[:39] + "…"
        super().__init__(f"unknown message type {shown!r}")
        self.message_type = shown


class MessageType(enum.StrEnum):
    """The six message types of the original protocol, and punchlab's extension.

    ``INITIATE_CHAT_ACK`` is new: a punchlab peer confirms an introduction so
    that a punchlab server can retransmit a lost ``INITIATE_CHAT``. The Go
    server ignores it, and a punchlab server only expects it from peers that
    announced the ``ack`` feature when registering.
    """

    REGISTRATION = "REGISTRATION"
    INITIATE_CHAT = "INITIATE_CHAT"
    HELLO = "HELLO"
    SUCCESS = "SUCCESS"
    TEXT = "TEXT"
    HEART_BEAT = "HEART-BEAT"
    INITIATE_CHAT_ACK = "INITIATE_CHAT_ACK"
    #: Through the rendezvous server to the introduced partner (section 7 of
    #: DESIGN.md): the payload is a whole message for the partner, the token
    #: names the introduction. An empty payload only earns the sender credit.
    RELAY = "RELAY"
    #: Only inside RELAY: what the sender knows of its NAT (see punchlab.traversal).
    NAT = "NAT"
    #: Only inside RELAY: the hard side of a birthday punch has opened its ports.
    PORTS_OPEN = "PORTS-OPEN"
    #: Between two peers that announced ``reliable``: which numbered TEXTs arrived
    #: (payload ``"CUM"`` or ``"CUM;S1,S2,..."``, see punchlab.reliable).
    TEXT_ACK = "TEXT-ACK"


#: The types the Go implementation knows.
ORIGINAL_TYPES = frozenset(MessageType) - {
    MessageType.INITIATE_CHAT_ACK,
    MessageType.RELAY,
    MessageType.NAT,
    MessageType.PORTS_OPEN,
    MessageType.TEXT_ACK,
}

#: The capability channel (DESIGN.md section 1): a peer lists what it can do
#: in the ``features`` key of REGISTRATION, the server lists its own in the
#: answer, and hands each side its partner's list with the introduction.
#: Whoever announced nothing is treated as the original Go program.
#:
#: ``ack``: acknowledges INITIATE_CHAT (so a punchlab server retransmits it).
FEATURE_ACK = "ack"
#: ``token``: sends the introduction's token on every datagram to its partner
#: and accepts none without it, once both sides announced it.
FEATURE_TOKEN = "token"
#: ``large``: reads datagrams up to :data:`MAX_DATAGRAM_BYTES`; a partner that
#: did not say so gets datagrams of at most :data:`GO_DATAGRAM_BYTES`.
FEATURE_LARGE = "large"
#: ``secret`` (a server's): hands out a registration secret and asks for it
#: from whoever claims to be the initiator of an introduction.
FEATURE_SECRET = "secret"
#: ``rfc5780=PORT`` (a server's): an RFC 5780 server listens on PORT of the same
#: host (two addresses, two ports), so a peer can find out its NAT's behaviour.
FEATURE_RFC5780 = "rfc5780"
#: ``relay``: a server's, it forwards RELAY between two peers it introduced; a
#: peer's, it reads RELAY and takes part in the traversal ladder (punchlab.traversal).
FEATURE_RELAY = "relay"

#: ``reliable``: numbers its TEXTs (the ``seq`` key), acknowledges a partner's
#: numbered TEXTs with TEXT-ACK, retransmits its own until acknowledged, and
#: delivers in order and once (punchlab.reliable). Not to be confused with ``ack``.
FEATURE_RELIABLE = "reliable"

#: The features a punchlab peer can announce; a server keeps no other names
#: (an announcement is a claim from the network, and its size is bounded).
PEER_FEATURES = frozenset(
    {FEATURE_ACK, FEATURE_TOKEN, FEATURE_LARGE, FEATURE_RELAY, FEATURE_RELIABLE}
)

#: The largest sequence number a numbered TEXT may carry (a JSON integer every
#: decoder reads exactly; a chat does not send two thousand million lines).
MAX_SEQ = 2**31 - 1

#: The Go client reads into a 1024-byte buffer: a longer datagram is cut off
#: and its JSON no longer parses, so the line is lost without a word.
GO_DATAGRAM_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DatagramIgnored:
    """A datagram a core dropped, and why (it changed nothing): the server's and the peer's.

    Drivers trace it with the datagram that caused it; the CLI, the log and
    the widgets show ``reason``.
    """

    address: Address
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Message:
    """One datagram's content.

    ``token``, ``features`` and ``secret`` are punchlab's extensions, written
    only when set, in keys the Go implementation ignores: the per-introduction
    token that lets two punchlab peers recognise each other from an unexpected
    port, the comma-separated features of the sender (or, in an introduction,
    of the partner), and the registration secret a punchlab server hands a
    punchlab peer so that only that peer can ask for introductions. ``seq``
    numbers a TEXT between two peers that announced ``reliable`` (a JSON
    integer from 1 to :data:`MAX_SEQ`).
    """

    type: MessageType
    payload: str = "..."
    token: str | None = None
    features: str | None = None
    secret: str | None = None
    #: The sender's local addresses (punchlab.candidates), in REGISTRATION; in an
    #: introduction, the partner's.
    local: str | None = None
    #: On a HELLO between punchlab peers: a tag of the sender, so that a peer
    #: knows its own HELLO when a hairpinning NAT turns it back to it.
    sender: str | None = None
    seq: int | None = None

    def __post_init__(self) -> None:
        """A message is built from checked fields only: a wrong type is our own bug."""
        if not isinstance(self.type, MessageType):
            raise LocalProtocolError(f"message type must be a MessageType, not {self.type!r}")
        if not isinstance(self.payload, str):
            raise LocalProtocolError(f"payload must be a string, not {self.payload!r}")
        for name in ("token", "features", "secret", "local", "sender"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise LocalProtocolError(f"{name} must be a string or None, not {value!r}")
        if self.seq is not None and not _valid_seq(self.seq):
            raise LocalProtocolError(f"seq must be an integer from 1 to {MAX_SEQ}: {self.seq!r}")

    def has_feature(self, name: str) -> bool:
        return name in parse_features(self.features)


def _valid_seq(value: object) -> bool:
    """A sequence number: an int (JSON's true is not one), from 1 to :data:`MAX_SEQ`."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SEQ


def rfc5780_port(features: frozenset[str]) -> int | None:
    """The port of the RFC 5780 server a server announced (``rfc5780=PORT``), if a valid one.

    The announcement comes from the network: only ASCII digits count (``str.isdigit``
    also takes superscripts and other scripts' digits), and of several the lowest wins.
    """
    ports = []
    for feature in features:
        name, _, value = feature.partition("=")
        if name == FEATURE_RFC5780 and re.fullmatch(r"[0-9]{1,5}", value):
            ports.append(int(value))
    valid = [port for port in ports if 0 < port < 65536]
    return min(valid) if valid else None


def parse_features(text: str | None) -> frozenset[str]:
    """The names in a ``features`` value (``None``, an announcement of nothing, is empty)."""
    if not text:
        return frozenset()
    return frozenset(name for name in text.split(",") if name)


def encode(message: Message) -> bytes:
    """Serialise a message the way the Go implementation expects it."""
    # Quoting each string and joining is what json.dumps(ensure_ascii=False,
    # separators=(",", ":")) produces, without building an encoder per call.
    text = '{"type":' + _quote(message.type.value) + ',"payload":' + _quote(message.payload)
    if message.token is not None:
        text += ',"token":' + _quote(message.token)
    if message.features is not None:
        text += ',"features":' + _quote(message.features)
    if message.secret is not None:
        text += ',"secret":' + _quote(message.secret)
    if message.local is not None:
        text += ',"local":' + _quote(message.local)
    if message.sender is not None:
        text += ',"sender":' + _quote(message.sender)
    if message.seq is not None:
        text += ',"seq":' + str(message.seq)
    data = (text + "}").encode("utf-8")
    if len(data) > MAX_DATAGRAM_BYTES:
        raise LocalProtocolError(
            f"message of {len(data)} bytes exceeds the {MAX_DATAGRAM_BYTES}-byte limit"
        )
    return data


def _reject_constant(name: str) -> Any:
    raise MalformedMessage(f"{name} is not valid JSON")


# Built once: json.loads with options builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def json_field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]``, or the first key equal to it but for letter case; None if neither.

    Go's ``encoding/json`` matches keys this way (an exact match first), so the
    Go programs accept ``"Type"`` or ``"PEERINITIATOR"``, and so do we: one rule
    for datagrams and HTTP bodies alike.
    """
    if name in obj:
        return obj[name]
    lower = name.lower()
    for key, value in obj.items():
        if key.lower() == lower:
            return value
    return None


#: Datagrams up to this size are remembered once parsed: every peer's
#: REGISTRATION and HEART-BEAT are the same bytes, and a server sees thousands.
_DECODE_CACHE_BYTES = 128


def decode(data: bytes) -> Message:
    """Parse one datagram, raising a :class:`RemoteProtocolError` on anything wrong."""
    if len(data) <= _DECODE_CACHE_BYTES:
        return _decode_cached(data)
    return _decode(data)


@functools.lru_cache(maxsize=1024)
def _decode_cached(data: bytes) -> Message:
    return _decode(data)  # a Message is immutable, so sharing one is safe


def _decode(data: bytes) -> Message:
    if len(data) > MAX_DATAGRAM_BYTES:
        raise OversizedMessage(
            f"datagram of {len(data)} bytes exceeds the {MAX_DATAGRAM_BYTES}-byte limit"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"datagram is not UTF-8: {exc.reason}") from None
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"datagram is not JSON: {exc.msg}") from None
    except ValueError as exc:  # e.g. an integer longer than Python will convert
        raise MalformedMessage(f"datagram is not acceptable JSON: {exc}") from None
    except RecursionError:
        raise MalformedMessage("datagram is nested too deeply") from None
    if not isinstance(obj, dict):
        raise MalformedMessage(f"datagram is a JSON {type(obj).__name__}, not an object")
    type_name = json_field(obj, "type")
    payload = json_field(obj, "payload")
    token = json_field(obj, "token")
    features = json_field(obj, "features")
    secret = json_field(obj, "secret")
    local = json_field(obj, "local")
    sender = json_field(obj, "sender")
    seq = json_field(obj, "seq")
    if not isinstance(type_name, str):
        raise MalformedMessage("field 'type' is missing or not a string")
    if not isinstance(payload, str):
        raise MalformedMessage("field 'payload' is missing or not a string")
    if token is not None and not isinstance(token, str):
        raise MalformedMessage("field 'token' is not a string")
    if features is not None and not isinstance(features, str):
        raise MalformedMessage("field 'features' is not a string")
    if secret is not None and not isinstance(secret, str):
        raise MalformedMessage("field 'secret' is not a string")
    if local is not None and not isinstance(local, str):
        raise MalformedMessage("field 'local' is not a string")
    if sender is not None and not isinstance(sender, str):
        raise MalformedMessage("field 'sender' is not a string")
    if seq is not None and not _valid_seq(seq):
        raise MalformedMessage(f"field 'seq' is not an integer from 1 to {MAX_SEQ}")
    try:
        message_type = MessageType(type_name)
    except ValueError:
        raise UnknownMessageType(type_name) from None
    return Message(
        message_type,
        _replace_lone_surrogates(payload),
        None if token is None else _replace_lone_surrogates(token),
        None if features is None else _replace_lone_surrogates(features),
        None if secret is None else _replace_lone_surrogates(secret),
        None if local is None else _replace_lone_surrogates(local),
        None if sender is None else _replace_lone_surrogates(sender),
        seq,
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(text: str) -> str:
    """A JSON escape like ``\\ud800`` decodes to a character UTF-8 cannot hold; Go
    replaces it with U+FFFD, and so do we, so every decoded message re-encodes."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def describe(data: bytes, limit: int = 40) -> tuple[str, str]:
    """Return ``(type, short payload)`` for traces, never raising (cached for small datagrams)."""
    if len(data) <= 512:
        return _describe_cached(data, limit)
    return _describe(data, limit)


@functools.lru_cache(maxsize=4096)
def _describe_cached(data: bytes, limit: int) -> tuple[str, str]:
    return _describe(data, limit)


def _describe(data: bytes, limit: int = 40) -> tuple[str, str]:
    """Return ``(type, short payload)`` for traces, never raising.

    Undecodable datagrams are described by the reason they fail, so a trace
    still shows that something arrived.
    """
    if data[:1] != b"{":
        from punchlab.stun.codec import describe_stun, looks_like_stun

        if looks_like_stun(data):
            return describe_stun(data)
    try:
        message = decode(data)
    except UnknownMessageType as exc:
        return exc.message_type, ""
    except RemoteProtocolError as exc:
        return exc.reason.upper(), f"{len(data)} bytes"
    payload = message.payload.rstrip("\n")
    if len(payload) > limit:
        payload = payload[: limit - 1] + "…"
    return message.type.value, payload


@functools.lru_cache(maxsize=65536)
def format_address(address: Address) -> str:
    """``("198.51.100.7", 62001)`` -> ``"198.51.100.7:62001"``, the Go form."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> Address:
    """Parse the ``ip:port`` form the server sends, raising :class:`MalformedMessage`."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not (port_text.isascii() and port_text.isdigit()):
        raise MalformedMessage(f"{text!r} is not an ip:port address")
    port = int(port_text)
    if not 0 < port < 65536:
        raise MalformedMessage(f"port {port} out of range in {text!r}")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise MalformedMessage(f"{host!r} is not an IP address in {text!r}") from None
    # The Go form: IPv6 in brackets (else "::1:80" is ambiguous), IPv4 without.
    if bracketed != (ip.version == 6):
        raise MalformedMessage(f"{text!r} is not an ip:port address ([v6]:port, v4:port)")
    return host, port
