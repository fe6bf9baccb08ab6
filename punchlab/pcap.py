"""A trace as a pcapng file: open punchlab's runs in Wireshark or tshark.

Every datagram becomes a real IPv4 or IPv6 + UDP packet, once for each link
it was seen on: leaving Alice on NAT A's LAN, then on the internet with NAT
A's address, then on NAT B's LAN with Bob's. Each link is one interface of
the file, named after it, so Wireshark shows each rewrite a NAT made, packet
by packet. HTTP exchanges are not packets here: each becomes a comment on
the next packet. The bytes come from a trace made with ``keep_data`` (the
simulator's always are). A trace loaded from JSON Lines has only
descriptions: its datagrams are rebuilt as ``{"type", "payload"}`` from them,
so a payload longer than a description holds is cut short, extension keys
are missing, and a STUN message is its description in text.

Wireshark does not know punchlab's ports: :func:`decode_rules` gives the
``-d udp.port==N,json`` options (``Decode As`` in the GUI) for every port the
trace uses.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dpkt import pcapng

from punchlab.messages import Message, MessageType, encode
from punchlab.trace import EventKind, Trace, TraceEvent

__all__ = [
    "INTERNET",
    "Sighting",
    "capture_table",
    "decode_rules",
    "save_pcap",
    "sightings",
    "write_pcapng",
]

#: The link of a datagram that crossed no NAT, and of the world outside every NAT.
INTERNET = "internet"
#: pcapng's link type for raw IP packets (no Ethernet header): LINKTYPE_RAW.
LINKTYPE_RAW = 101


@dataclass(frozen=True)
class Sighting:
    """A datagram seen on one link: one packet of the capture."""

    time: float
    link: str
    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes
    comments: tuple[str, ...] = field(default=())


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _bytes_of(event: TraceEvent) -> bytes:
    """The datagram's bytes: kept ones, else rebuilt from a punchlab type and payload."""
    if event.data is not None:
        return event.data
    try:
        return encode(Message(MessageType(event.msg_type), event.payload))
    except ValueError:
        return event.payload.encode()


def _link_after(translation: TraceEvent, following: TraceEvent | None) -> str:
    """The link a datagram is on once ``translation`` (at a NAT) has rewritten it.

    Inbound (the destination rewritten, hairpinning too) it is the NAT's LAN;
    outbound it is the world outside that NAT: another NAT's LAN when that NAT
    rewrites it outbound next (a home NAT behind a carrier-grade one), else the
    internet.
    """
    if translation.new_dst:
        return f"{translation.actor} LAN"
    if following is not None and following.new_src:  # outbound or hairpinned there next
        return f"{following.actor} LAN"
    return INTERNET


def _link_before(first: TraceEvent | None, dropped: TraceEvent | None) -> str:
    """The link a datagram was sent on: the LAN of the first NAT that rewrote it outbound,
    or the LAN it was lost or dropped on before any NAT saw it."""
    if first is not None:
        return f"{first.actor} LAN" if first.new_src else INTERNET
    if dropped is not None and dropped.actor.endswith(" LAN"):
        return dropped.actor
    return INTERNET


def _one_datagram(events: list[TraceEvent]) -> list[Sighting]:
    """The sightings of one datagram of the simulator (its events share a packet id)."""
    sent = next((e for e in events if e.kind is EventKind.SENT), None)
    if sent is None:
        return []
    data = _bytes_of(sent)
    # A duplicated datagram is rewritten once per copy, alike: one path, not two.
    unique = {
        (e.actor, e.new_src, e.new_dst): e
        for e in reversed(events)
        if e.kind is EventKind.TRANSLATED
    }
    translations = sorted(unique.values(), key=lambda e: e.time)
    first = translations[0] if translations else None
    dropped = next((e for e in events if e.kind is EventKind.DROPPED), None)
    link = _link_before(first, dropped)
    seen = [Sighting(sent.time, link, _address(sent.src), _address(sent.dst), data)]
    for index, moved in enumerate(translations):
        following = translations[index + 1] if index + 1 < len(translations) else None
        src, dst = moved.new_src or moved.src, moved.new_dst or moved.dst
        link = _link_after(moved, following)
        seen.append(Sighting(moved.time, link, _address(src), _address(dst), data))
    return seen


def _without_packet_ids(events: list[TraceEvent]) -> list[Sighting]:
    """Real sockets' traces: a packet per send, and per arrival nobody's send explains."""
    seen: list[Sighting] = []
    sent_keys: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for event in events:
        key = (event.src, event.dst, event.msg_type, event.payload)
        if event.kind is EventKind.SENT:
            sent_keys[key] += 1
        elif event.kind is EventKind.DELIVERED and sent_keys[key] > 0:
            sent_keys[key] -= 1
            continue
        elif event.kind is not EventKind.DELIVERED:
            continue
        src, dst = _address(event.src), _address(event.dst)
        seen.append(Sighting(event.time, INTERNET, src, dst, _bytes_of(event)))
    return seen


def sightings(trace: Trace) -> list[Sighting]:
    """Every packet of the capture, in time order, HTTP exchanges as comments."""
    by_packet: dict[int, list[TraceEvent]] = defaultdict(list)
    loose: list[TraceEvent] = []
    http: list[TraceEvent] = []
    for event in trace:
        if event.msg_type == "HTTP":
            if event.kind is EventKind.SENT:
                http.append(event)
        elif event.packet is not None:
            by_packet[event.packet].append(event)
        else:
            loose.append(event)
    seen = [s for events in by_packet.values() for s in _one_datagram(events)]
    seen += _without_packet_ids(loose)
    seen.sort(key=lambda s: s.time)
    return _with_comments(seen, http)


def _with_comments(seen: list[Sighting], http: list[TraceEvent]) -> list[Sighting]:
    """Each HTTP request or answer as a comment on the first packet at or after it."""
    notes: dict[int, list[str]] = defaultdict(list)
    index = 0
    for event in http:
        while index < len(seen) and seen[index].time < event.time:
            index += 1
        if seen:
            at = min(index, len(seen) - 1)
            notes[at].append(f"HTTP {event.actor} {event.src} -> {event.dst}: {event.payload}")
    return [
        Sighting(s.time, s.link, s.src, s.dst, s.data, tuple(notes[i])) if i in notes else s
        for i, s in enumerate(seen)
    ]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_packet(sighting: Sighting, ident: int) -> bytes:
    """An IPv4 or IPv6 packet carrying one UDP datagram, checksums filled in."""
    src, dst = ipaddress.ip_address(sighting.src[0]), ipaddress.ip_address(sighting.dst[0])
    length = 8 + len(sighting.data)
    if src.version == 4 and dst.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    else:
        src, dst = _as_v6(src), _as_v6(dst)
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", length, socket.IPPROTO_UDP)
    udp = struct.pack("!HHHH", sighting.src[1], sighting.dst[1], length, 0) + sighting.data
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    if src.version == 4:
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + length, ident & 0xFFFF, 0, 64,
            socket.IPPROTO_UDP, 0, src.packed, dst.packed,
        )  # fmt: skip
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + udp
    header = struct.pack(
        "!IHBB16s16s", 6 << 28, length, socket.IPPROTO_UDP, 64, src.packed, dst.packed
    )
    return header + udp


def _as_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        return address
    return ipaddress.IPv6Address(f"::ffff:{address}")


def _option(code: int, value: bytes) -> pcapng.PcapngOptionLE:
    option = pcapng.PcapngOptionLE(code=code)
    option.data = value
    return option


def _comment(text: str) -> pcapng.PcapngOptionLE:
    option = pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_COMMENT)
    option.text = text
    return option


def save_pcap(trace: Trace, path: str | Path) -> Path:
    """Write ``trace`` as a pcapng file: one interface per link, one packet per sighting."""
    return write_pcapng(sightings(trace), path)


def write_pcapng(seen: list[Sighting], path: str | Path) -> Path:
    """Write sightings as a pcapng file, an interface per link (named after it)."""
    links = list(dict.fromkeys(s.link for s in seen)) or [INTERNET]
    interfaces = []
    for link in links:
        idb = pcapng.InterfaceDescriptionBlockLE(linktype=LINKTYPE_RAW, snaplen=65535)
        idb.opts = [
            _option(pcapng.PCAPNG_OPT_IF_NAME, link.encode()),
            _option(pcapng.PCAPNG_OPT_IF_TSRESOL, b"\x06"),  # microseconds
            _option(pcapng.PCAPNG_OPT_ENDOFOPT, b""),
        ]
        interfaces.append(idb)
    target = Path(path)
    with target.open("wb") as out:
        writer = pcapng.Writer(out, idb=interfaces)
        for number, sighting in enumerate(seen):
            packet = _ip_packet(sighting, number)
            block = pcapng.EnhancedPacketBlockLE(
                iface_id=links.index(sighting.link),
                caplen=len(packet),
                pkt_len=len(packet),
                pkt_data=packet,
            )
            if sighting.comments:
                block.opts = [_comment(c) for c in sighting.comments]
                block.opts.append(_option(pcapng.PCAPNG_OPT_ENDOFOPT, b""))
            writer.writepkt(block, ts=sighting.time)
    return target


def decode_rules(trace: Trace | Iterable[Sighting]) -> list[str]:
    """tshark's ``-d`` options that decode as JSON every port that carries only JSON."""
    seen = sightings(trace) if isinstance(trace, Trace) else list(trace)
    json_only: dict[int, bool] = {}
    for sighting in seen:
        is_json = sighting.data[:1] == b"{"
        for port in (sighting.src[1], sighting.dst[1]):
            json_only[port] = json_only.get(port, True) and is_json
    # A port that also carries STUN (the rendezvous port answers Binding requests) is
    # left to Wireshark's heuristics: a rule would decode one protocol as the other.
    return [f"udp.port=={port},json" for port, only in sorted(json_only.items()) if only]


def capture_table(seen: list[Sighting], *, limit: int | None = None) -> str:
    """The packets as a text table, like Wireshark's list: time, link, from, to, type."""
    from punchlab.display import printable, text_table
    from punchlab.messages import describe, format_address

    start = seen[0].time if seen else 0.0
    rows = [["ms", "link", "from", "to", "type", "detail"]]
    for sighting in seen[:limit]:
        msg_type, payload = describe(sighting.data)
        rows.append(
            [
                f"{(sighting.time - start) * 1000:.1f}",
                sighting.link,
                format_address(sighting.src),
                format_address(sighting.dst),
                printable(msg_type, 20),
                printable(payload, 30),
            ]
        )
    more = len(seen) - (limit if limit is not None else len(seen))
    return text_table(rows) + (f"\n... {more} more packets" if more > 0 else "")
