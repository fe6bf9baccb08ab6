"""A chat over a lossy internet, measured: how many lines arrive, how late, at what cost.

Chapter 14 and ``bench/reliable_chat.py`` ask the same question of the
simulator: two connected peers, A sends ``lines`` lines at a steady pace, and
we count what B's reader got (in order? once?), the datagrams the chat cost,
and how long each line took from A's keyboard to B's screen. With
``reliable=False`` neither peer announces ``reliable`` and TEXT is the Go
program's plain datagram; with it, lines are numbered, acknowledged and sent
again (punchlab.reliable).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

from punchlab.messages import MessageType
from punchlab.peer import PeerConfig, TextDelivered, TextFailed, TextReceived
from punchlab.sim.links import LinkConfig
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer
from punchlab.trace import EventKind, Trace

__all__ = ["ChatRun", "chat"]

#: Give the punch this long: at 30% loss a few HELLOs go missing.
CONNECT_BUDGET = 30.0


@dataclass(frozen=True)
class ChatRun:
    """What one measured chat did (``received``: B's lines in the order B's reader saw them)."""

    seed: int
    reliable: bool
    sent: tuple[str, ...]
    received: tuple[str, ...]
    #: Seconds from A sending line i to B's reader seeing it (lines never seen: absent).
    latencies: tuple[float, ...]
    #: Datagrams the chat put on the wire: TEXT (first copies and resends) and TEXT-ACK.
    text_datagrams: int
    ack_datagrams: int
    #: Lines A's peer reported delivered / failed (acknowledged chat only).
    delivered: int
    failed: int
    trace: Trace = field(repr=False, compare=False)
    #: The simulated network, still running: a test may go on with it.
    network: Network = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def arrived(self) -> int:
        """Distinct lines B's reader got."""
        return len(set(self.received))

    @property
    def exactly_once_in_order(self) -> bool:
        return self.received == self.sent

    @property
    def datagrams(self) -> int:
        return self.text_datagrams + self.ack_datagrams

    @property
    def median_latency(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    def summary(self) -> str:
        kind = "with acks" if self.reliable else "without acks"
        return (
            f"{kind}: {self.arrived}/{len(self.sent)} lines arrived"
            f"{' in order, once' if self.exactly_once_in_order else ''}; "
            f"{self.text_datagrams} TEXT + {self.ack_datagrams} TEXT-ACK datagrams; "
            f"median latency {self.median_latency * 1000:.0f} ms"
        )


def chat(
    lines: int = 100,
    *,
    seed: int = 0,
    loss: float = 0.3,
    duplicate: float = 0.0,
    reorder: float = 0.0,
    latency: float = 0.02,
    interval: float = 0.05,
    reliable: bool = True,
    both_ways: bool = False,
    settle: float = 60.0,
    nats: tuple[str, str] = ("full-cone", "full-cone"),
    text: str = "line {}",
) -> ChatRun:
    """Two peers behind full-cone NATs connect over a clean internet, then the internet
    turns lossy and A sends ``lines`` lines, one every ``interval`` s.

    The punch itself is not the experiment (chapter 4 is): it happens before the
    loss starts, so every seed measures the chat alone. ``settle`` bounds how long
    the run waits for the last acknowledgement after the last line. ``nats`` are
    the two NATs' presets (two symmetric NATs chat through the server's relay);
    ``text`` is each line, ``{}`` its number.
    """
    clean = LinkConfig(latency)
    net = Network(seed, internet=clean)
    net.add_server()
    config = PeerConfig() if reliable else PeerConfig(reliable=None)
    a = net.add_peer("A", behind=net.add_nat("NAT A", nats[0]), config=config)
    b = net.add_peer("B", behind=net.add_nat("NAT B", nats[1]), config=config)
    a.register()
    b.register()
    net.run_until(lambda: a.id is not None and b.id is not None, CONNECT_BUDGET)
    assert b.id is not None, "registration failed on a clean link"
    a.connect(b.id)
    net.run_until(lambda: a.connected and b.connected, CONNECT_BUDGET)
    assert a.connected and b.connected, "the punch failed on a clean link"
    net.internet.link = replace(clean, loss=loss, duplicate=duplicate, reorder=reorder)
    start = len(net.trace)
    sent = tuple(text.format(number) for number in range(1, lines + 1))
    return _measure(net, a, b, sent, seed, reliable, interval, both_ways, settle, start)


def _measure(
    net: Network,
    a: SimPeer,
    b: SimPeer,
    sent: tuple[str, ...],
    seed: int,
    reliable: bool,
    interval: float,
    both_ways: bool,
    settle: float,
    start: int,
) -> ChatRun:
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    outcomes: list[object] = []
    before = len(b.texts)
    a.add_listener(lambda event: outcomes.append(event))
    b.add_listener(lambda event: _note_arrival(event, net, seen_at))
    for text in sent:
        sent_at[text] = net.now
        a.send_text(text)
        if both_ways:
            b.send_text(f"back {text}")
        net.run_for(interval)
    if reliable:
        net.run_until(lambda: a.core.unacknowledged == 0, settle)
    else:  # nothing will come again: wait out the last line's flight
        net.run_for(1.0)
    received = tuple(b.texts[before:])
    text_count, ack_count = _count(net.trace, start, ("A", "B"))
    return ChatRun(
        seed=seed,
        reliable=reliable,
        sent=sent,
        received=received,
        latencies=tuple(seen_at[t] - sent_at[t] for t in sent if t in seen_at),
        text_datagrams=text_count,
        ack_datagrams=ack_count,
        delivered=sum(isinstance(event, TextDelivered) for event in outcomes),
        failed=sum(isinstance(event, TextFailed) for event in outcomes),
        trace=net.trace,
        network=net,
    )


def _note_arrival(event: object, net: Network, seen_at: dict[str, float]) -> None:
    if isinstance(event, TextReceived):
        seen_at.setdefault(event.text, net.now)


def _count(trace: Trace, start: int, actors: tuple[str, ...]) -> tuple[int, int]:
    """TEXT and TEXT-ACK datagrams the peers sent since event ``start``."""
    texts = acks = 0
    for event in list(trace)[start:]:
        if event.kind is not EventKind.SENT or event.actor not in actors:
            continue
        if event.msg_type == MessageType.TEXT.value:
            texts += 1
        elif event.msg_type == MessageType.TEXT_ACK.value:
            acks += 1
    return texts, acks
