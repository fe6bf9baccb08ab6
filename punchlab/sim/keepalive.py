"""A chat on a schedule through NATs that forget: which lines arrive, and why not.

Chapter 11 (timeouts and keepalives) and its exercise ask the same question
of the simulator: two connected peers, a NAT timeout, a heart-beat setting,
lines of chat at chosen times; which lines reach the partner, which are
dropped and where, when each NAT's permission for the partner was open, and
what the heart-beats cost. :func:`timed_chat` runs it and answers with a
:class:`ChatTimeline`, its times counted from the moment both sides connected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from punchlab.messages import format_address
from punchlab.peer import Disconnected, PeerConfig
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer
from punchlab.sim.scenario import punch
from punchlab.trace import EventKind, Trace

__all__ = ["ChatLine", "ChatTimeline", "timed_chat"]

#: The sides of the chat, as :func:`punch` names them.
SIDES = ("A", "B")

#: A line as it was sent: when (since connecting), who, what, its packet (None: not sent).
_Sent = tuple[float, str, str, int | None]


@dataclass(frozen=True)
class ChatLine:
    """One line of the schedule and what became of it."""

    at: float
    sender: str
    text: str
    delivered: bool
    #: Why it did not arrive: a drop's reason and where ("permission expired
    #: at NAT B"), or that the sender no longer counted itself connected.
    why: str = ""

    def outcome(self) -> str:
        return "delivered" if self.delivered else f"lost: {self.why}"


@dataclass(frozen=True)
class ChatTimeline:
    """What :func:`timed_chat` saw; every time in seconds since both sides connected."""

    lines: tuple[ChatLine, ...]
    #: HEART-BEATs each side sent to its partner (not those to the server).
    peer_beats: dict[str, tuple[float, ...]]
    server_beats: dict[str, tuple[float, ...]]
    #: When each side's NAT let the partner in: from each datagram it sent out
    #: to the partner, for one NAT timeout (merged where they overlap).
    open_spans: dict[str, tuple[tuple[float, float], ...]]
    #: When a side declared its partner gone (its liveness timeout), if it did.
    gone_at: dict[str, float | None]
    #: Datagrams a NAT refused after connecting: (time, NAT, message type, reason).
    nat_drops: tuple[tuple[float, str, str, str], ...]
    nat_timeout: float
    duration: float
    trace: Trace = field(repr=False)
    #: The network at the end of the run (its NAT tables, its clock).
    network: Network = field(repr=False)

    def beats_sent(self) -> int:
        """HEART-BEATs both peers sent, to each other and to the server."""
        return sum(len(t) for t in (*self.peer_beats.values(), *self.server_beats.values()))

    def text(self) -> str:
        """One row per chat line and per partner declared gone, in time order."""
        rows = [(ln.at, f"{ln.sender}: {ln.text!r}  {ln.outcome()}") for ln in self.lines]
        rows += [
            (when, f"{side} declared its partner gone")
            for side, when in self.gone_at.items()
            if when is not None
        ]
        return "\n".join(f"{when:6.3f} s  {row}" for when, row in sorted(rows))


def timed_chat(
    schedule: Sequence[tuple[float, str, str]],
    *,
    duration: float,
    nat: str = "port-restricted-cone",
    nat_timeout: float = 30.0,
    config: PeerConfig | None = None,
    loss: float = 0.0,
    seed: int = 0,
) -> ChatTimeline:
    """Connect A and B behind two ``nat`` boxes, then send ``schedule``'s lines.

    ``schedule`` holds ``(seconds after connecting, "A" or "B", text)``; the
    run lasts ``duration`` seconds after connecting. Loss applies to the
    internet's links, as in :func:`punch`. A line whose sender is no longer
    connected (its liveness timeout declared the partner gone) is not sent.
    Lines go as plain TEXT (``reliable=None``), one datagram each, so a line's
    fate is that datagram's: chapter 14 adds the acknowledgements.
    """
    plain = replace(config or PeerConfig(), reliable=None)
    result = punch(nat, nat, seed=seed, loss=loss, nat_timeout=nat_timeout, config=plain, texts=0)
    net = result.network
    peers = dict(zip(SIDES, net.peers, strict=True))
    if not all(peer.connected for peer in peers.values()):
        raise RuntimeError(f"the peers did not connect: {result.summary()}")
    start = net.now
    gone: dict[str, float | None] = dict.fromkeys(SIDES)
    for side, peer in peers.items():
        peer.add_listener(_on_gone(gone, side, net, start))
    outcomes: list[_Sent] = []
    for at, sender, text in sorted(schedule):
        net.scheduler.at(start + at, _sender(net, peers[sender], at, text, outcomes))
    net.run(start + duration)
    lines = tuple(_line(net.trace, peers, *entry) for entry in outcomes)
    return ChatTimeline(
        lines=lines,
        peer_beats={s: _beats(net.trace, s, peers, start, to_peer=True) for s in SIDES},
        server_beats={s: _beats(net.trace, s, peers, start, to_peer=False) for s in SIDES},
        open_spans={s: _open_spans(net.trace, s, peers, start, nat_timeout) for s in SIDES},
        gone_at=gone,
        nat_drops=tuple(
            (e.time - start, e.actor, e.msg_type, e.reason)
            for e in net.trace
            if e.kind is EventKind.DROPPED and e.actor.startswith("NAT") and e.time >= start
        ),
        nat_timeout=nat_timeout,
        duration=duration,
        trace=net.trace,
        network=net,
    )


def _on_gone(
    gone: dict[str, float | None], side: str, net: Network, start: float
) -> Callable[[object], None]:
    def listener(event: object) -> None:
        if isinstance(event, Disconnected) and gone[side] is None:
            gone[side] = net.now - start

    return listener


def _sender(
    net: Network, peer: SimPeer, at: float, text: str, out: list[_Sent]
) -> Callable[[], None]:
    """The callback that sends one line at its time, noting its datagram's packet number."""

    def send() -> None:
        if not peer.connected:
            out.append((at, peer.name, text, None))
            return
        before = len(net.trace)
        peer.send_text(text)
        packets = [
            net.trace[i].packet
            for i in range(before, len(net.trace))
            if net.trace[i].kind is EventKind.SENT and net.trace[i].msg_type == "TEXT"
        ]
        out.append((at, peer.name, text, packets[0] if packets else None))

    return send


def _line(trace: Trace, peers: dict[str, SimPeer], at: float, sender: str, text: str,
          packet: int | None) -> ChatLine:  # fmt: skip
    """What became of one line: in the partner's texts, or the trace's drop and its reason."""
    if packet is None:
        return ChatLine(at, sender, text, False, f"{sender} had declared its partner gone")
    partner = peers[SIDES[1 - SIDES.index(sender)]]
    events = [e for e in trace if e.packet == packet]
    # The line's own datagram (plain TEXT: one per line), not its text, which may repeat.
    if any(e.kind is EventKind.DELIVERED and e.actor == partner.name for e in events):
        return ChatLine(at, sender, text, True)
    drops = [e for e in events if e.kind is EventKind.DROPPED]
    if not drops:
        return ChatLine(at, sender, text, False, "not delivered (still on its way?)")
    return ChatLine(at, sender, text, False, f"{drops[0].reason} at {drops[0].actor}")


def _partner_public(peers: dict[str, SimPeer], side: str) -> str:
    address = peers[side].peer_address
    return "" if address is None else format_address(address)


def _beats(
    trace: Trace, side: str, peers: dict[str, SimPeer], start: float, *, to_peer: bool
) -> tuple[float, ...]:
    partner = _partner_public(peers, side)
    return tuple(
        e.time - start
        for e in trace
        if e.kind is EventKind.SENT
        and e.actor == side
        and e.msg_type == "HEART-BEAT"
        and e.time >= start
        and (e.dst == partner) == to_peer
    )


def _open_spans(
    trace: Trace, side: str, peers: dict[str, SimPeer], start: float, timeout: float
) -> tuple[tuple[float, float], ...]:
    """When side's NAT admitted the partner: each outbound datagram to it opens
    (or refreshes) the permission for one timeout; overlapping spans merge.

    Read from the trace for a NAT that filters by endpoint (the chapter's
    port-restricted cones): a full cone admits anyone while its mapping lives,
    which these spans do not show.
    """
    partner, nat = _partner_public(peers, side), f"NAT {side}"
    spans: list[list[float]] = []
    for e in trace:
        if e.kind is not EventKind.TRANSLATED or e.actor != nat or not e.new_src:
            continue
        if e.dst != partner:
            continue
        opened, closes = e.time - start, e.time - start + timeout
        if spans and opened <= spans[-1][1]:
            spans[-1][1] = closes
        else:
            spans.append([opened, closes])
    return tuple((max(a, 0.0), b) for a, b in spans if b > 0.0)
