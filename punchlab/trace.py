"""What crossed the network, recorded the same way by every driver.

A trace is a flat, time-ordered list of events: a datagram sent, delivered,
dropped (with the reason), translated by a NAT, or ignored by the protocol
core. It saves to JSON Lines so that runs on several machines or processes can
be merged afterwards and drawn as one sequence diagram.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from punchlab.display import printable, text_table
from punchlab.messages import Address, describe, format_address

__all__ = ["EventKind", "Trace", "TraceEvent"]


class EventKind(enum.StrEnum):
    """What happened to a datagram at the point where it was observed."""

    SENT = "sent"
    DELIVERED = "delivered"
    DROPPED = "dropped"
    TRANSLATED = "translated"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One observation of one datagram.

    ``src`` and ``dst`` are the addresses as seen where the event happened; a
    ``translated`` event also carries the rewritten ones in ``new_src`` and
    ``new_dst``. ``packet`` links the events of one datagram when the driver
    can know it (the simulator does; real sockets cannot).
    """

    time: float
    kind: EventKind
    actor: str
    src: str
    dst: str
    msg_type: str
    payload: str = ""
    reason: str = ""
    new_src: str = ""
    new_dst: str = ""
    packet: int | None = None
    #: How many datagrams this entry stands for: birthday probes and the hard
    #: side's opening HELLOs are folded into one entry each (see :data:`FOLDED`),
    #: so that a thousand probes do not push everything else out of the trace.
    count: int = 1
    #: For a folded entry: when the burst's last datagram was seen.
    last: float | None = None
    #: The datagram's bytes, kept only by a trace made with ``keep_data`` (for a
    #: pcap file); never written to JSON Lines, which hold the description.
    data: bytes | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON; empty optional fields are left out to keep lines short."""
        out: dict[str, object] = {}
        for field in dataclasses.fields(self):
            if field.name == "data":
                continue
            value = getattr(self, field.name)
            if value in ("", None) and field.name not in ("src", "dst", "msg_type"):
                continue
            if field.name == "count" and value == 1:
                continue
            out[field.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TraceEvent:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a line that is not an event.

        A trace file may come from another machine: a time must be a finite
        number and an actor a string (``str(None)`` would invent an actor).
        """
        time, actor = data.get("time"), data.get("actor")
        if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
            raise ValueError(f"not a trace event: time {time!r} is not a finite number")
        if not isinstance(actor, str) or not actor:
            raise ValueError(f"not a trace event: actor {actor!r} is not a name")
        try:
            return cls(
                time=float(time),
                kind=EventKind(str(data["kind"])),
                actor=actor,
                src=str(data.get("src", "")),
                dst=str(data.get("dst", "")),
                msg_type=str(data.get("msg_type", "")),
                payload=str(data.get("payload", "")),
                reason=str(data.get("reason", "")),
                new_src=str(data.get("new_src", "")),
                new_dst=str(data.get("new_dst", "")),
                packet=None if data.get("packet") is None else int(data["packet"]),  # type: ignore[call-overload]
                count=_count(data.get("count", 1)),
                last=_time_or_none(data.get("last")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a trace event: {data!r} ({exc})") from None


def _time_or_none(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a trace event: last {value!r} is not a finite time")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"not a trace event: count {value!r} is not a positive integer")
    return value


#: HELLO payloads of the traversal ladder's many-datagram rungs (punchlab.ladder):
#: a trace keeps one entry per burst of them, with a count.
FOLDED = frozenset({"probe", "open"})
#: How these look in a datagram's bytes (checked before describing a noted one).
_FOLDED_BYTES = tuple(f'"payload":"{payload}"'.encode() for payload in FOLDED)
#: A folded entry's port that varies from datagram to datagram.
ANY_PORT = "*"


def _fold_key(event: TraceEvent) -> tuple[object, ...] | None:
    """Which burst ``event`` belongs to (None: it is not folded). A delivery is never
    folded: the probe that got through is the one worth seeing."""
    if event.payload not in FOLDED or event.kind is EventKind.DELIVERED:
        return None
    hosts = tuple(address.rpartition(":")[0] for address in (event.src, event.dst))
    return (event.kind, event.actor, event.msg_type, event.payload, event.reason, hosts)


def _widen(old: str, new: str) -> str:
    """``ip:port`` for the burst, the port a ``*`` once two of them differ."""
    if old == new or not old:
        return old
    return f"{old.rpartition(':')[0]}:{ANY_PORT}"


_Noted = tuple[EventKind, float, str, Address, Address, bytes] | TraceEvent

#: A noted datagram larger than this is described at once, so that a trace of
#: big datagrams holds short descriptions, not up to 64 KiB of bytes each.
NOTE_RAW_BYTES = 128


#: A trace made with ``keep_data`` keeps the bytes of datagrams up to this size; a
#: bigger one (anyone can send 64 KiB of junk) is kept as its description only.
KEEP_BYTES = 2048


#: The widest a table cell from the network may be (a type or a payload).
TABLE_CELL = 60


def _addr(address: Address | str) -> str:
    return address if isinstance(address, str) else format_address(address)


def _described(
    kind: EventKind,
    time: float,
    actor: str,
    src: Address | str,
    dst: Address | str,
    data: bytes,
    reason: str = "",
    new_src: Address | str = "",
    new_dst: Address | str = "",
    packet: int | None = None,
    keep: bool = False,
) -> TraceEvent:
    """The event for one datagram, its type and payload read from the raw bytes (kept too
    with ``keep``)."""
    msg_type, payload = describe(data)
    return TraceEvent(
        time=time,
        kind=kind,
        actor=actor,
        src=_addr(src),
        dst=_addr(dst),
        msg_type=msg_type,
        payload=payload,
        reason=reason,
        new_src=_addr(new_src),
        new_dst=_addr(new_dst),
        packet=packet,
        data=data if keep and len(data) <= KEEP_BYTES else None,
    )


class Trace:
    """An append-only list of :class:`TraceEvent`, with the helpers people need to read it."""

    def __init__(
        self,
        events: Iterable[TraceEvent] = (),
        *,
        max_events: int | None = None,
        keep_data: bool = False,
    ) -> None:
        """``keep_data`` keeps each datagram's bytes too (``Trace.save_pcap`` writes them)."""
        self._events: list[TraceEvent] = list(events)
        self.keep_data = keep_data
        # Datagrams noted by :meth:`datagram_later`, newer than every entry of
        # ``_events``: described only when someone reads the trace.
        self._noted: list[_Noted] = []
        #: Keep only the newest events (a server that runs for days must not
        #: grow without end); None keeps everything.
        self.max_events = max_events
        #: Where each burst of folded datagrams is, by its key (see _fold_key).
        self._bursts: dict[tuple[object, ...], int] = {}

    @property
    def events(self) -> list[TraceEvent]:
        """Every event in time order (datagrams noted for later are described now)."""
        if self._noted:
            self._describe_noted()
        return self._events

    # -- recording -----------------------------------------------------------------

    def record(self, event: TraceEvent) -> None:
        """Append an event (drivers call this; events arrive in time order), or count it
        into its burst's entry if it is one of many probes (see :data:`FOLDED`)."""
        events = self.events
        key = _fold_key(event)
        if key is not None:
            index = self._bursts.get(key)
            if index is not None and index < len(events) and _fold_key(events[index]) == key:
                head = events[index]
                events[index] = dataclasses.replace(
                    head,
                    count=head.count + 1,
                    last=event.time,
                    src=_widen(head.src, event.src),
                    dst=_widen(head.dst, event.dst),
                    new_src=_widen(head.new_src, event.new_src),
                    new_dst=_widen(head.new_dst, event.new_dst),
                )
                return
            self._bursts[key] = len(events)
        events.append(event)
        self._trim()

    def _trim(self) -> None:
        # Trim in chunks so that appending stays cheap on average.
        if self.max_events is None:
            return
        excess = len(self._events) + len(self._noted) - self.max_events
        if excess > self.max_events // 4:
            dropped = min(excess, len(self._events))
            del self._events[:dropped]
            del self._noted[: excess - dropped]
            self._bursts.clear()  # the indexes moved; a burst goes on as a new entry

    def datagram(
        self,
        kind: EventKind,
        time: float,
        actor: str,
        src: Address | str,
        dst: Address | str,
        data: bytes,
        *,
        reason: str = "",
        packet: int | None = None,
        new_src: Address | str = "",
        new_dst: Address | str = "",
    ) -> TraceEvent:
        """Record a datagram event, describing its content from the raw bytes."""
        event = _described(
            kind, time, actor, src, dst, data, reason, new_src, new_dst, packet, self.keep_data
        )
        self.record(event)
        return event

    def datagram_later(
        self, kind: EventKind, time: float, actor: str, src: Address, dst: Address, data: bytes
    ) -> None:
        """Like :meth:`datagram`, but describe the bytes only when the trace is read.

        A busy server records every datagram and is rarely asked for its
        trace, so it keeps the raw bytes (of small datagrams; big ones are
        described at once) and skips the work of describing them.
        """
        if len(data) <= NOTE_RAW_BYTES and any(mark in data for mark in _FOLDED_BYTES):
            self.record(_described(kind, time, actor, src, dst, data, keep=self.keep_data))
            return
        noted = self._noted
        if self.keep_data:
            noted.append(_described(kind, time, actor, src, dst, data, keep=True))
        elif len(data) <= NOTE_RAW_BYTES:
            noted.append((kind, time, actor, src, dst, data))
        else:
            noted.append(_described(kind, time, actor, src, dst, data))
        limit = self.max_events
        if limit is not None and len(noted) + len(self._events) > limit + limit // 4:
            self._trim()

    def _describe_noted(self) -> None:
        noted, self._noted = self._noted, []
        self._events.extend(
            entry if isinstance(entry, TraceEvent) else _described(*entry) for entry in noted
        )

    def record_http(
        self,
        kind: EventKind,
        time: float,
        actor: str,
        src: Address | str,
        dst: Address | str,
        text: str,
        *,
        packet: int | None = None,
    ) -> TraceEvent:
        """Record an HTTP request or answer (type ``HTTP``) so diagrams show the rendezvous."""
        event = TraceEvent(time, kind, actor, _addr(src), _addr(dst), "HTTP", text, packet=packet)
        self.record(event)
        return event

    # -- reading -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._events) + len(self._noted)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def __getitem__(self, index: int) -> TraceEvent:
        return self.events[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trace) and self.events == other.events

    def __repr__(self) -> str:
        return f"<Trace of {len(self)} events>"

    def filter(
        self,
        *,
        actors: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
        kinds: Iterable[EventKind | str] | None = None,
        time_range: tuple[float, float] | None = None,
    ) -> Trace:
        """A new trace with only the events that match every given criterion."""
        actor_set = None if actors is None else set(actors)
        type_set = None if types is None else {str(t) for t in types}
        kind_set = None if kinds is None else {EventKind(k) for k in kinds}
        selected = []
        for event in self.events:
            if actor_set is not None and event.actor not in actor_set:
                continue
            if type_set is not None and event.msg_type not in type_set:
                continue
            if kind_set is not None and event.kind not in kind_set:
                continue
            if time_range is not None and not time_range[0] <= event.time <= time_range[1]:
                continue
            selected.append(event)
        return Trace(selected)

    def actors(self) -> list[str]:
        """Actor names in order of first appearance."""
        return list(dict.fromkeys(event.actor for event in self.events))

    def count(self, kind: EventKind | str, msg_type: str | None = None) -> int:
        """How many events of a kind (and optionally of a message type)."""
        kind = EventKind(kind)
        return sum(
            1
            for e in self.events
            if e.kind is kind and (msg_type is None or e.msg_type == msg_type)
        )

    # -- persistence ---------------------------------------------------------------

    def to_jsonl(self) -> str:
        """One JSON object per line, stable across runs for the same events."""
        return "".join(
            json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
            for e in self.events
        )

    @classmethod
    def from_jsonl(cls, text: str) -> Trace:
        """Parse :meth:`to_jsonl` output; a bad line raises ``ValueError`` naming its number."""
        events = []
        # Split on "\n" only: a payload may hold U+2028 and friends, which
        # str.splitlines() would also treat as line ends.
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                events.append(TraceEvent.from_dict(data))
            except ValueError as exc:
                raise ValueError(f"trace line {number}: {exc}") from None
        return cls(events)

    def save_pcap(self, path: str | Path) -> Path:
        """Write the trace as a pcapng file for Wireshark (see :mod:`punchlab.pcap`)."""
        from punchlab.pcap import save_pcap

        return save_pcap(self, path)

    def save(self, path: str | Path) -> Path:
        """Write the trace as JSON Lines and return the path."""
        path = Path(path)
        path.write_text(self.to_jsonl(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace written by :meth:`save` (or by another process)."""
        return cls.from_jsonl(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def merge(cls, *traces: Trace) -> Trace:
        """Interleave traces by time; ties keep the order of the arguments."""
        tagged = [
            (event.time, index, position, event)
            for index, trace in enumerate(traces)
            for position, event in enumerate(trace.events)
        ]
        tagged.sort(key=lambda item: item[:3])
        return cls(item[3] for item in tagged)

    # -- display -------------------------------------------------------------------

    def table(self, *, start: float | None = None, limit: int | None = None) -> str:
        """A fixed-width text table, times in milliseconds from ``start`` (default: first event)."""
        if not self.events:
            return "(empty trace)"
        events = self.events if limit is None else self.events[:limit]
        origin = self.events[0].time if start is None else start
        header = ("ms", "event", "actor", "from", "to", "type", "detail")
        rows = [header]
        for e in events:
            kind = e.kind.value
            if e.kind is EventKind.TRANSLATED:
                old, new = (e.src, e.new_src) if e.new_src else (e.dst, e.new_dst)
                detail = f"{old} -> {new}"
                if new == old:  # a firewall (IPv6) passes a datagram on as it came
                    kind, detail = "passed", "not translated"
            elif e.reason:
                detail = e.reason
            else:
                detail = e.payload
            # Types, payloads and reasons can come from a stranger: shown escaped.
            rows.append(
                (
                    f"{(e.time - origin) * 1000:.1f}",
                    kind,
                    printable(e.actor, TABLE_CELL),
                    e.src,
                    e.dst,
                    printable(e.msg_type, TABLE_CELL),
                    printable(detail, TABLE_CELL),
                )
            )
        text = text_table(rows)
        if limit is not None and len(self.events) > limit:
            text += f"\n... {len(self.events) - limit} more events"
        return text

    def __str__(self) -> str:
        return self.table()
