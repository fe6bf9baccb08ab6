"""From trace events to arrows: what a sequence diagram draws, before any geometry.

An :class:`Arrow` is one copy of one datagram: the points where it was seen
(its send, each NAT that rewrote it, its delivery) and how it ended. The
simulator links a datagram's events by ``packet``; real traces cannot, so a
delivery is matched to a send of the same type and payload (see
:func:`match_deliveries`). A real NAT drops silently, so a send that nobody
received becomes an arrow with outcome ``SENT`` ("only its send was seen"),
drawn as an arrow that stops with a '?'.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from punchlab.trace import EventKind, Trace, TraceEvent

__all__ = [
    "Arrow",
    "Point",
    "collapse_repeats",
    "datagram_arrows",
    "match_deliveries",
    "select_arrows",
]

#: Addresses a socket bound to every interface reports as its own: they name no host.
WILDCARD_IPS = frozenset({"0.0.0.0", "::", "[::]"})


@dataclass
class Point:
    """Where and when a datagram was seen; ``rewrote`` is "src" or "dst" at a NAT."""

    time: float
    actor: str
    note: str = ""
    rewrote: str = ""


@dataclass
class Arrow:
    """One datagram's journey: where it was seen, and how it ended.

    ``outcome`` is DELIVERED, DROPPED, or SENT for a send that no trace saw
    again (a real NAT drops without a word); then ``toward`` names the
    intended receiver.
    """

    msg_type: str
    payload: str
    points: list[Point]
    outcome: EventKind
    reason: str = ""
    #: For a loss on a link or an unseen send, the lifeline the datagram was heading for.
    toward: str | None = None
    repeats: int = 1
    first_event: int = field(default=0, repr=False)
    #: A folded burst's last send (the time axis must not cut its stretch as idle).
    busy_until: float | None = None

    @property
    def sender(self) -> str:
        return self.points[0].actor

    @property
    def start(self) -> float:
        return self.points[0].time

    @property
    def end(self) -> float:
        return self.points[-1].time

    def signature(self) -> tuple[object, ...]:
        """What makes two datagrams look the same in a diagram (for folding repeats)."""
        path = tuple(p.actor for p in self.points)
        burst = self.payload if self.busy_until is not None else ""  # probes apart from HELLOs
        return (self.msg_type, path, self.outcome, self.reason, self.toward, burst)


def _ip(address: str) -> str:
    return address.rsplit(":", 1)[0]


# -- linked by packet id (the simulator) ----------------------------------------------------


def _owners(trace: Trace) -> dict[str, str]:
    """Which actor an IP address belongs to, learnt from what the trace saw."""
    owners: dict[str, str] = {}
    for event in trace:
        if event.kind is EventKind.SENT:
            owners.setdefault(_ip(event.src), event.actor)
        elif event.kind is EventKind.DELIVERED:
            owners.setdefault(_ip(event.dst), event.actor)
        elif event.kind is EventKind.TRANSLATED:
            owners.setdefault(_ip(event.new_src or event.dst), event.actor)
            # A firewall owns no address of its own in the trace (it passes the
            # host's on unchanged), yet what it drops ends at its lifeline, not midway.
            owners.setdefault(f"gateway {event.actor}", event.actor)
    return owners


def _heading(event: TraceEvent, last: Point, owners: dict[str, str]) -> str | None:
    """Where a datagram lost on a link was going: its LAN's NAT, or the owner of its destination."""
    if event.actor.endswith(" LAN"):
        gateway = event.actor[: -len(" LAN")]
        if gateway != last.actor:
            return gateway
    return owners.get(_ip(event.dst))


def _branch_for(
    actor: str, open_branches: list[list[Point]], branches: list[list[Point]]
) -> list[Point] | None:
    """The copy of a datagram this event belongs to (a duplicate forks a new copy)."""
    for branch in open_branches:
        if branch[-1].actor != actor:
            return branch
    if not branches:
        return None
    template = branches[-1]
    prefix = []
    for point in template:
        if point.actor == actor:
            break
        prefix.append(point)
    copy = list(prefix or template[:1])
    branches.append(copy)
    open_branches.append(copy)
    return copy


def _translated(event: TraceEvent) -> Point:
    if event.new_src:
        return Point(event.time, event.actor, f"{event.src} -> {event.new_src}", "src")
    return Point(event.time, event.actor, f"{event.dst} -> {event.new_dst}", "dst")


def _ended(
    event: TraceEvent, branch: list[Point], owners: dict[str, str]
) -> tuple[EventKind, str, str | None]:
    """Extend ``branch`` with where a delivery or drop happened; return outcome, reason, toward."""
    if event.kind is EventKind.DELIVERED:
        branch.append(Point(event.time, event.actor))
        return EventKind.DELIVERED, "", None
    if event.actor in owners.values() and event.actor != branch[-1].actor:
        branch.append(Point(event.time, event.actor))  # dropped by a host (a NAT's filter)
        return EventKind.DROPPED, event.reason, None
    toward = _heading(event, branch[-1], owners)  # lost on a link
    branch.append(Point(event.time, branch[-1].actor))
    return EventKind.DROPPED, event.reason, toward


def _arrows_of_packet(group: list[tuple[int, TraceEvent]], owners: dict[str, str]) -> list[Arrow]:
    branches: list[list[Point]] = []
    open_branches: list[list[Point]] = []
    first_index, first = group[0]
    arrows = []
    for _, event in group:
        if event.kind is EventKind.SENT:
            branch = [Point(event.time, event.actor)]
            branches.append(branch)
            open_branches.append(branch)
            continue
        if event.kind is EventKind.IGNORED:
            continue
        found = _branch_for(event.actor, open_branches, branches)
        if found is None:
            continue
        if event.kind is EventKind.TRANSLATED:
            found.append(_translated(event))
            continue
        outcome, reason, toward = _ended(event, found, owners)
        arrow = Arrow(first.msg_type, first.payload, list(found), outcome, reason, toward)
        arrow.repeats = first.count  # a burst of probes the trace folded into one entry
        arrow.busy_until = first.last
        arrow.first_event = first_index
        arrows.append(arrow)
        if found in open_branches:
            open_branches.remove(found)
    return arrows


def _arrows_by_packet(events: list[tuple[int, TraceEvent]], owners: dict[str, str]) -> list[Arrow]:
    by_packet: dict[int, list[tuple[int, TraceEvent]]] = defaultdict(list)
    for index, event in events:
        assert event.packet is not None
        by_packet[event.packet].append((index, event))
    return [arrow for group in by_packet.values() for arrow in _arrows_of_packet(group, owners)]


# -- matched by content (real traces) -------------------------------------------------------


def _port(address: str) -> str:
    return address.rsplit(":", 1)[-1]


def _same_socket(a: str, b: str) -> bool:
    """Whether two views of an address can be one socket (one side may see a wildcard IP)."""
    return a == b or (_port(a) == _port(b) and (_ip(a) in WILDCARD_IPS or _ip(b) in WILDCARD_IPS))


_Key = tuple[str, ...]


class _Queues:
    """Unmatched sends, grouped by ``key`` and then by ``lane`` (sender and addresses).

    Within a lane sends are in time order and all alike for ``accept``, so
    the earliest acceptable send of a key is at the head of one of its lanes.
    """

    def __init__(
        self,
        events: Sequence[TraceEvent],
        key: Callable[[TraceEvent], _Key],
        lane: Callable[[TraceEvent], _Key],
    ) -> None:
        self.events, self.key = events, key
        self.lanes: dict[_Key, dict[_Key, deque[int]]] = defaultdict(dict)
        for index, event in enumerate(events):
            if event.kind is EventKind.SENT:
                self.lanes[key(event)].setdefault(lane(event), deque()).append(index)

    def earliest(
        self,
        delivery: TraceEvent,
        accept: Callable[[TraceEvent, TraceEvent], bool],
        used: set[int],
    ) -> int | None:
        """The earliest unused send from another actor, at or before ``delivery``, accepted."""
        best: int | None = None
        for queue in self.lanes[self.key(delivery)].values():
            while queue and queue[0] in used:
                queue.popleft()
            if not queue:
                continue
            head = self.events[queue[0]]
            if (
                head.actor == delivery.actor
                or head.time > delivery.time
                or not accept(head, delivery)
            ):
                continue
            if best is None or (head.time, queue[0]) < (self.events[best].time, best):
                best = queue[0]
        return best


def match_deliveries(events: Sequence[TraceEvent]) -> dict[int, int]:
    """Pair each delivery with the send it came from: ``{delivery index: send index}``.

    Real traces carry no packet id, so a delivery is matched to the
    **earliest unmatched send of the same type and payload, from another
    actor, stamped at or before the delivery**: first in, first out, which is
    what a path does when it loses nothing; and a datagram cannot arrive
    before it left, so an arrow never slopes up (no tolerance for skewed
    clocks: a delivery stamped before every candidate stays unmatched).
    Deliveries are taken in time order. Sends whose addresses agree with the
    delivery's (no NAT between them, or one side bound to a wildcard
    address) are tried first; then the others, except sends to an address
    already known to reach someone else.
    When an earlier copy of a retried datagram was lost, the delivery is
    credited to that copy (its arrow shows the longer wait).
    """
    agreeing = _Queues(
        events,
        key=lambda e: (e.msg_type, e.payload, _port(e.src), _port(e.dst)),
        lane=lambda e: (e.actor, e.src, e.dst),
    )
    others = _Queues(events, key=lambda e: (e.msg_type, e.payload), lane=lambda e: (e.actor, e.dst))
    reaches = _own_sockets(events)
    used: set[int] = set()
    matches: dict[int, int] = {}
    for index, delivery in enumerate(events):
        if delivery.kind is not EventKind.DELIVERED:
            continue
        chosen = agreeing.earliest(delivery, _addresses_agree, used)
        if chosen is None:
            chosen = others.earliest(
                delivery, lambda s, d: reaches.get(s.dst, d.actor) == d.actor, used
            )
        if chosen is not None:
            used.add(chosen)
            matches[index] = chosen
            reaches.setdefault(events[chosen].dst, delivery.actor)
    return matches


def _addresses_agree(send: TraceEvent, delivery: TraceEvent) -> bool:
    return _same_socket(send.src, delivery.src) and _same_socket(send.dst, delivery.dst)


def _own_sockets(events: Sequence[TraceEvent]) -> dict[str, str]:
    """Each actor's own (non-wildcard) addresses, as its events name them."""
    owned: dict[str, str] = {}
    for event in events:
        own = event.src if event.kind is EventKind.SENT else event.dst
        if event.kind in (EventKind.SENT, EventKind.DELIVERED) and _ip(own) not in WILDCARD_IPS:
            owned.setdefault(own, event.actor)
    return owned


def _address_book(events: Sequence[TraceEvent], matches: dict[int, int]) -> dict[str, str]:
    """Who an address (as a sender wrote it) reaches: learnt from deliveries and own sockets.

    Full ``ip:port`` first; a bare IP only where one actor alone was seen behind it
    (on loopback every host shares 127.0.0.1).
    """
    book: dict[str, str] = {}
    for delivered, sent in matches.items():
        book.setdefault(events[sent].dst, events[delivered].actor)
    for address, actor in _own_sockets(events).items():
        book.setdefault(address, actor)
    by_ip: dict[str, set[str]] = defaultdict(set)
    for address, actor in book.items():
        by_ip[_ip(address)].add(actor)
    for ip, actors in by_ip.items():
        if len(actors) == 1:
            book.setdefault(ip, next(iter(actors)))
    return book


def _arrows_by_matching(events: list[tuple[int, TraceEvent]]) -> list[Arrow]:
    plain = [event for _, event in events]
    matches = match_deliveries(plain)
    arrows = []
    for delivered, sent in matches.items():
        send, delivery = plain[sent], plain[delivered]
        points = [Point(send.time, send.actor), Point(delivery.time, delivery.actor)]
        arrow = Arrow(send.msg_type, send.payload, points, EventKind.DELIVERED, repeats=send.count)
        arrow.first_event = events[sent][0]
        arrows.append(arrow)
    arrows += _unseen_sends(events, matches)
    return arrows


def _unseen_sends(events: list[tuple[int, TraceEvent]], matches: dict[int, int]) -> list[Arrow]:
    """Sends nobody received, where the intended receiver's own trace is in the merge.

    Without the receiver's trace nothing says the datagram did not arrive.
    """
    plain = [event for _, event in events]
    book = _address_book(plain, matches)
    recorders = {event.actor for event in plain}
    matched = set(matches.values())
    arrows = []
    for position, (index, send) in enumerate(events):
        if send.kind is not EventKind.SENT or position in matched:
            continue
        receiver = book.get(send.dst) or book.get(_ip(send.dst))
        if receiver is None or receiver == send.actor or receiver not in recorders:
            continue
        points = [Point(send.time, send.actor)]
        arrow = Arrow(
            send.msg_type, send.payload, points, EventKind.SENT, toward=receiver, repeats=send.count
        )
        arrow.first_event = index
        arrows.append(arrow)
    return arrows


def datagram_arrows(trace: Trace) -> list[Arrow]:
    """Turn a trace into arrows, one per copy of each datagram that arrived, died or vanished.

    Simulator traces link the events of a datagram by ``packet``; real ones
    are matched by content (:func:`match_deliveries`), and their sends that
    no one received become arrows with outcome ``SENT``.
    """
    indexed = list(enumerate(trace))
    owners = _owners(trace)
    arrows = _arrows_by_packet([(i, e) for i, e in indexed if e.packet is not None], owners)
    arrows += _arrows_by_matching([(i, e) for i, e in indexed if e.packet is None])
    arrows.sort(key=lambda a: (a.start, a.first_event))
    return arrows


# -- choosing what to draw ------------------------------------------------------------------


def collapse_repeats(arrows: Iterable[Arrow]) -> list[Arrow]:
    """Fold a train of identical datagrams from one sender into its first, counting repeats.

    A train is broken only by a *different* datagram of the same type from
    the same sender (say, a HELLO that got through after many that did not),
    not by the HEART-BEATs interleaved with it.
    """
    kept: list[Arrow] = []
    last: dict[tuple[object, ...], Arrow] = {}
    for arrow in arrows:
        key = (arrow.sender, arrow.msg_type, tuple(p.actor for p in arrow.points), arrow.toward)
        previous = last.get(key)
        if previous is not None and previous.signature() == arrow.signature():
            previous.repeats += arrow.repeats
            continue
        arrow = replace(arrow, points=list(arrow.points))
        kept.append(arrow)
        last[key] = arrow
    return kept


def clip_arrow(arrow: Arrow, shown: set[str]) -> Arrow | None:
    """Keep only the points on shown lifelines; None if too little is left to draw."""
    points = [p for p in arrow.points if p.actor in shown]
    toward = arrow.toward if arrow.toward in shown else None
    if arrow.outcome is EventKind.SENT:
        return arrow if points and toward is not None else None
    if len(points) < 2 and not (arrow.outcome is EventKind.DROPPED and points):
        return None
    if len(points) == len(arrow.points):
        return arrow
    return replace(arrow, points=points, toward=toward)


def select_arrows(
    arrows: Iterable[Arrow],
    lifelines: Sequence[str],
    *,
    window: tuple[float, float] | None = None,
    types: Iterable[str] | None = None,
    collapse: bool = False,
) -> list[Arrow]:
    """The arrows a diagram shows: started inside ``window`` (absolute times), of ``types``,
    clipped to ``lifelines``, and with repeats folded when ``collapse``."""
    wanted = None if types is None else set(types)
    shown = set(lifelines)
    selected = []
    for arrow in arrows:
        if window is not None and not window[0] <= arrow.start <= window[1]:
            continue
        if wanted is not None and arrow.msg_type not in wanted:
            continue
        clipped = clip_arrow(arrow, shown)
        if clipped is not None:
            selected.append(clipped)
    return collapse_repeats(selected) if collapse else selected
