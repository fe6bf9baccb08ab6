"""STUN messages as bytes and back (RFC 8489, RFC 5780, and RFC 3489's classic form).

No IO: :func:`parse` turns a datagram into a :class:`StunMessage` or raises
:class:`MalformedStun`; :func:`encode` does the reverse. A message from an
RFC 3489 client has no magic cookie (its 16-byte transaction ID fills those
bytes), so it is parsed too, with ``cookie=False``; its answer must then use
MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS, which have no XOR.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

from punchlab.messages import Address

__all__ = [
    "HEADER_BYTES",
    "MAGIC_COOKIE",
    "Attr",
    "Cls",
    "MalformedStun",
    "StunMessage",
    "change_request",
    "decode_address",
    "describe_stun",
    "encode",
    "encode_address",
    "error_code",
    "looks_like_stun",
    "parse",
    "read_change_request",
    "read_error_code",
    "read_unknown_attributes",
    "unknown_attributes",
]

HEADER_BYTES = 20
MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")
_FINGERPRINT_XOR = 0x5354554E
BINDING = 0x001

#: CHANGE-REQUEST flags (RFC 5780 section 7.2).
CHANGE_IP = 0x04
CHANGE_PORT = 0x02


class Cls(enum.IntEnum):
    """The class bits of a message type (RFC 8489 section 5)."""

    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS = 0b10
    ERROR = 0b11


class Attr(enum.IntEnum):
    """The attributes punchlab reads or writes."""

    MAPPED_ADDRESS = 0x0001
    CHANGE_REQUEST = 0x0003
    SOURCE_ADDRESS = 0x0004  # RFC 3489
    CHANGED_ADDRESS = 0x0005  # RFC 3489
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    XOR_MAPPED_ADDRESS = 0x0020
    PADDING = 0x0026  # RFC 5780: refused (it only makes answers bigger)
    RESPONSE_PORT = 0x0027  # RFC 5780: refused (it aims answers elsewhere)
    SOFTWARE = 0x8022
    FINGERPRINT = 0x8028
    RESPONSE_ORIGIN = 0x802B
    OTHER_ADDRESS = 0x802C


class MalformedStun(ValueError):
    """Bytes that claim to be STUN but are not a well-formed message."""


@dataclass(frozen=True)
class StunMessage:
    """One STUN message: Binding is the only method punchlab speaks."""

    cls: Cls
    transaction_id: bytes
    #: ``(type, value)`` in order; a type may repeat only where the RFC allows.
    attributes: tuple[tuple[int, bytes], ...] = ()
    #: False for an RFC 3489 message (no magic cookie; a 16-byte transaction ID).
    cookie: bool = True
    method: int = BINDING
    #: Whether the parsed message ended with a valid FINGERPRINT.
    fingerprinted: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        wanted = 12 if self.cookie else 16
        if len(self.transaction_id) != wanted:
            raise ValueError(f"a transaction ID is {wanted} bytes here")

    def get(self, attribute: int) -> bytes | None:
        """The first value of this attribute, or None."""
        return next((value for kind, value in self.attributes if kind == attribute), None)

    def address(self, attribute: int) -> Address | None:
        """An address attribute, decoded (XOR undone where it applies), or None."""
        value = self.get(attribute)
        if value is None:
            return None
        return decode_address(value, xor=attribute == Attr.XOR_MAPPED_ADDRESS, message=self)

    def mapped(self) -> Address | None:
        """The public address an answer reports: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS."""
        return self.address(Attr.XOR_MAPPED_ADDRESS) or self.address(Attr.MAPPED_ADDRESS)

    @property
    def cookie_and_id(self) -> bytes:
        """The 16 bytes after the length: cookie and ID, or RFC 3489's long ID."""
        return (_COOKIE_BYTES if self.cookie else b"") + self.transaction_id


def looks_like_stun(data: bytes) -> bool:
    """Whether a datagram is STUN rather than the JSON protocol.

    JSON starts with ``{`` (0x7B); a STUN message's first two bits are zero
    and its length a multiple of four (RFC 8489 section 5, RFC 3489 has the
    same header shape).
    """
    return len(data) >= HEADER_BYTES and data[0] & 0xC0 == 0 and data[3] & 0x03 == 0


def _message_type(method: int, cls: Cls) -> int:
    m = method & 0xFFF
    return (
        (m & 0x000F)
        | ((m & 0x0070) << 1)
        | ((m & 0x0F80) << 2)
        | ((cls & 1) << 4)
        | ((cls & 2) << 7)
    )


def _split_type(message_type: int) -> tuple[int, Cls]:
    cls = Cls(((message_type >> 4) & 1) | ((message_type >> 7) & 2))
    method = (
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80)
    )
    return method, cls


def parse(data: bytes) -> StunMessage:
    """A STUN message from a datagram; :class:`MalformedStun` says why not."""
    if not looks_like_stun(data):
        raise MalformedStun("not a STUN header")
    message_type, length = struct.unpack_from("!HH", data)
    if HEADER_BYTES + length != len(data):
        raise MalformedStun(f"length field says {length} bytes, the datagram has {len(data) - 20}")
    cookie = data[4:8] == _COOKIE_BYTES
    transaction_id = data[8:20] if cookie else data[4:20]
    method, cls = _split_type(message_type)
    attributes, fingerprinted = _parse_attributes(data, cookie)
    return StunMessage(cls, transaction_id, tuple(attributes), cookie, method, fingerprinted)


def _parse_attributes(data: bytes, cookie: bool) -> tuple[list[tuple[int, bytes]], bool]:
    attributes: list[tuple[int, bytes]] = []
    offset, fingerprinted = HEADER_BYTES, False
    while offset < len(data):
        if fingerprinted:
            raise MalformedStun("an attribute after FINGERPRINT")
        if offset + 4 > len(data):
            raise MalformedStun("a truncated attribute header")
        kind, size = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + size
        if end > len(data):
            raise MalformedStun(f"attribute 0x{kind:04x} runs past the end")
        value = data[offset + 4 : end]
        if kind == Attr.FINGERPRINT:
            _check_fingerprint(data[:offset], value)
            fingerprinted = True
        else:
            attributes.append((kind, value))
        offset = end + (-size % 4 if cookie else 0)
    if offset != len(data):
        raise MalformedStun("padding runs past the end")
    return attributes, fingerprinted


def _check_fingerprint(before: bytes, value: bytes) -> None:
    if len(value) != 4:
        raise MalformedStun("FINGERPRINT is not 4 bytes")
    (got,) = struct.unpack("!I", value)
    if got != zlib.crc32(before) ^ _FINGERPRINT_XOR:
        raise MalformedStun("FINGERPRINT does not match")


def encode(message: StunMessage, *, fingerprint: bool = False) -> bytes:
    """The message as bytes; ``fingerprint`` appends FINGERPRINT (RFC 8489 section 14.7)."""
    body = b"".join(
        struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)
        for kind, value in message.attributes
    )
    kind = _message_type(message.method, message.cls)
    if not fingerprint:
        return struct.pack("!HH", kind, len(body)) + message.cookie_and_id + body
    head = struct.pack("!HH", kind, len(body) + 8) + message.cookie_and_id
    crc = zlib.crc32(head + body) ^ _FINGERPRINT_XOR
    return head + body + struct.pack("!HHI", Attr.FINGERPRINT, 4, crc)


def encode_address(
    address: Address, *, xor: bool = False, message: StunMessage | None = None
) -> bytes:
    """An address attribute's value (MAPPED-ADDRESS layout; XOR-MAPPED-ADDRESS with ``xor``)."""
    ip = ipaddress.ip_address(address[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    family = 0x01 if ip.version == 4 else 0x02
    port, raw = address[1], ip.packed
    if xor:
        assert message is not None, "XOR needs the message's transaction ID"
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, message.cookie_and_id, strict=False))
    return struct.pack("!BBH", 0, family, port) + raw


def decode_address(
    value: bytes, *, xor: bool = False, message: StunMessage | None = None
) -> Address:
    """The inverse of :func:`encode_address`; :class:`MalformedStun` for a bad value."""
    if len(value) < 4:
        raise MalformedStun("an address attribute shorter than 4 bytes")
    _, family, port = struct.unpack_from("!BBH", value)
    raw = value[4:]
    if (family, len(raw)) not in ((0x01, 4), (0x02, 16)):
        raise MalformedStun(f"address family {family} with {len(raw)} address bytes")
    if xor:
        assert message is not None, "XOR needs the message's transaction ID"
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, message.cookie_and_id, strict=False))
    return (str(ipaddress.ip_address(raw)), port)


def change_request(change_ip: bool, change_port: bool) -> bytes:
    """A CHANGE-REQUEST value (RFC 5780 section 7.2)."""
    return struct.pack("!I", (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0))


def read_change_request(value: bytes) -> tuple[bool, bool]:
    """(change IP, change port) from a CHANGE-REQUEST value."""
    if len(value) != 4:
        raise MalformedStun("CHANGE-REQUEST is not 4 bytes")
    (flags,) = struct.unpack("!I", value)
    return bool(flags & CHANGE_IP), bool(flags & CHANGE_PORT)


def error_code(code: int, reason: str) -> bytes:
    """An ERROR-CODE value (RFC 8489 section 14.8)."""
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()[:763]


def read_error_code(value: bytes) -> tuple[int, str]:
    """(code, reason) from an ERROR-CODE value; :class:`MalformedStun` when too short."""
    if len(value) < 4:
        raise MalformedStun("ERROR-CODE shorter than 4 bytes")
    _, hundreds, rest = struct.unpack_from("!HBB", value)
    return (hundreds & 0x07) * 100 + rest, value[4:].decode("utf-8", "replace")


def unknown_attributes(kinds: list[int]) -> bytes:
    """An UNKNOWN-ATTRIBUTES value: the comprehension-required types not understood."""
    return b"".join(struct.pack("!H", kind) for kind in kinds)


def read_unknown_attributes(value: bytes) -> list[int]:
    """The attribute types an UNKNOWN-ATTRIBUTES value lists (an odd last byte is ignored)."""
    return [kind for (kind,) in struct.iter_unpack("!H", value[: len(value) // 2 * 2])]


def describe_stun(data: bytes) -> tuple[str, str]:
    """``("STUN", what it is)`` for traces, never raising: the class, and for a
    success the public address it reports, for an error its code."""
    try:
        message = parse(data)
    except MalformedStun as exc:
        return "STUN", f"malformed: {exc}"
    words = {
        Cls.REQUEST: "Binding request",
        Cls.INDICATION: "Binding indication",
        Cls.SUCCESS: "Binding success",
        Cls.ERROR: "Binding error",
    }
    text = words[message.cls] if message.method == BINDING else f"method 0x{message.method:03x}"
    try:
        if message.cls is Cls.SUCCESS:
            mapped = message.mapped()
            if mapped is not None:
                text += f" {mapped[0]}:{mapped[1]}"
        elif message.cls is Cls.ERROR and (value := message.get(Attr.ERROR_CODE)):
            text += f" {read_error_code(value)[0]}"
        elif (value := message.get(Attr.CHANGE_REQUEST)) is not None:
            change_ip, change_port = read_change_request(value)
            asked = [name for name, on in (("IP", change_ip), ("port", change_port)) if on]
            if asked:
                text += f" (change {' and '.join(asked)})"
    except MalformedStun as exc:
        text += f" (bad attribute: {exc})"
    return "STUN", text
