"""Which lifelines a sequence diagram has, and in what order.

The textbook ladder reads A, NAT A, server, NAT B, B: every arrow to the
server crosses its sender's own NAT and nothing else, and a punch crosses the
middle. With several pairs the pairs nest around the server(s), the first
pair outermost, so each pair still reads in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from punchlab.diagram_arrows import Arrow, datagram_arrows
from punchlab.trace import EventKind, Trace

__all__ = ["Cast", "cast_of", "lifeline_order"]


@dataclass
class Cast:
    """Who is who in a trace: servers, NATs (and whose), peers, and who talks to whom."""

    servers: list[str] = field(default_factory=list)
    nats: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    nats_of: dict[str, list[str]] = field(default_factory=dict)
    #: (initiator, responder) in order of first appearance, introduced pairs first.
    pairs: list[tuple[str, str]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    def peer_behind(self, actor: str) -> str | None:
        """The peer an actor stands for: itself, or the peer behind a NAT."""
        if actor in self.peers:
            return actor
        return next((p for p, nats in self.nats_of.items() if actor in nats), None)


def _servers(trace: Trace) -> list[str]:
    """Whoever answers a registration or introduces peers."""
    found = (
        e.actor
        for e in trace
        if e.kind is EventKind.SENT
        and (e.msg_type == "INITIATE_CHAT" or (e.msg_type == "REGISTRATION" and e.payload))
    )
    return list(dict.fromkeys(found))


def _own_nats(arrows: Sequence[Arrow], peer: str, nats: set[str]) -> list[str]:
    """The NATs that rewrote the source of what ``peer`` sent: its own, inner first."""
    found = [
        p.actor
        for arrow in arrows
        if arrow.sender == peer
        for p in arrow.points
        if p.actor in nats and p.rewrote == "src"
    ]
    return list(dict.fromkeys(found))


def _receiver(arrow: Arrow) -> str:
    """Who a datagram was for: where it arrived, or where it was heading when lost."""
    if arrow.outcome is not EventKind.DELIVERED and arrow.toward:
        return arrow.toward
    return arrow.points[-1].actor


def _introduced(trace: Trace, arrows: Sequence[Arrow], cast: Cast) -> list[tuple[str, str]]:
    """(initiator, responder) for each INITIATE_CHAT: its payload is the initiator's address."""
    pairs = []
    for arrow in arrows:
        if arrow.msg_type != "INITIATE_CHAT":
            continue
        responder = cast.peer_behind(_receiver(arrow))
        initiator = _initiator(arrow.payload, trace, cast)
        if responder and initiator and responder != initiator:
            pairs.append((initiator, responder))
    return pairs


def _initiator(public: str, trace: Trace, cast: Cast) -> str | None:
    """The peer whose public address is ``public``: it sent from it, or its NAT mapped to it,
    or the server's answer to that address reached it."""
    for event in trace:
        if event.kind is EventKind.TRANSLATED and event.new_src == public:
            return cast.peer_behind(event.actor)
        if event.kind is EventKind.SENT and event.src == public:
            return cast.peer_behind(event.actor)
    replies = [e for e in trace if e.msg_type == "REGISTRATION" and e.payload]
    sent_to = {e.payload for e in replies if e.kind is EventKind.SENT and e.dst == public}
    for event in replies:
        if event.kind is EventKind.DELIVERED and event.payload in sent_to:
            return cast.peer_behind(event.actor)
    return None


def _talking(arrows: Sequence[Arrow], cast: Cast) -> list[tuple[str, str]]:
    """Pairs that sent each other anything, named in alphabetical order (A left of B)."""
    pairs = []
    for arrow in arrows:
        a, b = cast.peer_behind(arrow.sender), cast.peer_behind(_receiver(arrow))
        if a and b and a != b and arrow.sender in cast.peers:
            pairs.append((min(a, b), max(a, b)))
    return pairs


def cast_of(trace: Trace, arrows: Sequence[Arrow] | None = None) -> Cast:
    """Sort a trace's actors into servers, NATs and peers, and find who was introduced."""
    arrows = datagram_arrows(trace) if arrows is None else arrows
    actors = list(dict.fromkeys(p.actor for arrow in arrows for p in arrow.points))
    actors += [a.toward for a in arrows if a.toward and a.toward not in actors]
    cast = Cast(servers=[s for s in _servers(trace) if s in actors])
    rewriters = {p.actor for arrow in arrows for p in arrow.points if p.rewrote}
    cast.nats = [a for a in actors if a in rewriters]
    cast.peers = [a for a in actors if a not in cast.nats and a not in cast.servers]
    nat_set = set(cast.nats)
    cast.nats_of = {peer: _own_nats(arrows, peer, nat_set) for peer in cast.peers}
    pairs = _introduced(trace, arrows, cast) + _talking(arrows, cast)
    cast.pairs = list(dict.fromkeys(pairs))
    placed = {n for nats in cast.nats_of.values() for n in nats}
    cast.others = [a for a in cast.nats if a not in placed]
    return cast


def _sides(peers: Sequence[str], pairs: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Left and right peers, each listed from the outside in; partners on opposite sides."""
    left: list[str] = []
    right: list[str] = []
    chosen = set(peers)
    for a, b in pairs:
        if a not in chosen or b not in chosen:
            continue
        placed_a, placed_b = a in left + right, b in left + right
        if not placed_a and not placed_b:
            left.append(a)
            right.append(b)
        elif placed_a and not placed_b:
            (right if a in left else left).append(b)
        elif placed_b and not placed_a:
            (left if b in right else right).append(a)
    alone = sorted(p for p in peers if p not in left and p not in right)
    half = (len(alone) + 1) // 2
    return left + alone[:half], right + alone[half:]


def lifeline_order(
    trace: Trace, arrows: Sequence[Arrow] | None = None, *, peers: Sequence[str] | None = None
) -> list[str]:
    """A, NAT A, the server(s), NAT B, B for every introduced pair, for any number of peers.

    Introduced pairs (the initiator on the left) and peers that sent each
    other datagrams nest around the servers, the first pair outermost; peers
    with no partner split in two halves, by name. ``peers`` keeps only those
    peers, their NATs and the servers (a live diagram of two chosen peers).
    """
    cast = cast_of(trace, arrows)
    chosen = [p for p in cast.peers if peers is None or p in peers]
    left, right = _sides(chosen, cast.pairs)
    order: list[str] = []
    for peer in left:
        order += [peer, *cast.nats_of.get(peer, [])]
    order += cast.servers
    for peer in reversed(right):
        order += [*reversed(cast.nats_of.get(peer, [])), peer]
    order = list(dict.fromkeys(order))
    if peers is not None:
        return order
    return order + [a for a in [*cast.others, *cast.peers] if a not in order]
