"""Sequence (ladder) diagrams of a trace, and the peer's state machine, in matplotlib.

One vertical lifeline per host, time running down. A datagram is an arrow
from the moment it left its sender to the moment it arrived, so its slope
shows latency; it bends at each NAT that rewrote it, and a datagram that was
dropped ends in a red cross where it died, with the reason.
"""

from __future__ import annotations

import itertools
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from punchlab.peer import TRANSITIONS, PeerState, Trigger
from punchlab.trace import EventKind, Trace, TraceEvent

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "TYPE_COLOURS",
    "Arrow",
    "datagram_arrows",
    "lifeline_order",
    "save_sequence_diagram",
    "sequence_diagram",
    "state_diagram",
]

#: One colour per message type, the same in every diagram and notebook.
TYPE_COLOURS: dict[str, str] = {
    "REGISTRATION": "#1f77b4",
    "HTTP": "#8c564b",
    "INITIATE_CHAT": "#9467bd",
    "INITIATE_CHAT_ACK": "#c5b0d5",
    "HELLO": "#ff7f0e",
    "SUCCESS": "#2ca02c",
    "TEXT": "#111111",
    "HEART-BEAT": "#8f8f8f",
}
OTHER_COLOUR = "#bcbd22"
DROP_COLOUR = "#d62728"


@dataclass
class Point:
    time: float
    actor: str
    note: str = ""


@dataclass
class Arrow:
    """One datagram's journey: where it was seen, and how it ended."""

    msg_type: str
    payload: str
    points: list[Point]
    outcome: EventKind  # DELIVERED or DROPPED
    reason: str = ""
    #: For a loss on a link, the lifeline the datagram was heading for.
    toward: str | None = None
    repeats: int = 1
    first_event: int = field(default=0, repr=False)

    @property
    def sender(self) -> str:
        return self.points[0].actor

    def signature(self) -> tuple[object, ...]:
        return (self.msg_type, tuple(p.actor for p in self.points), self.outcome, self.reason)


# -- from trace events to arrows -------------------------------------------------------------


def _owners(trace: Trace) -> dict[str, str]:
    """Which actor an IP address belongs to, learnt from what the trace saw."""
    owners: dict[str, str] = {}
    for event in trace:
        if event.kind is EventKind.SENT:
            owners.setdefault(event.src.rsplit(":", 1)[0], event.actor)
        elif event.kind is EventKind.DELIVERED:
            owners.setdefault(event.dst.rsplit(":", 1)[0], event.actor)
        elif event.kind is EventKind.TRANSLATED:
            outside = event.new_src or event.dst
            owners.setdefault(outside.rsplit(":", 1)[0], event.actor)
    return owners


def _heading(event: TraceEvent, last: Point, owners: dict[str, str]) -> str | None:
    """Where a datagram lost on a link was going: its LAN's NAT, or the owner of its destination."""
    if event.actor.endswith(" LAN"):
        gateway = event.actor[: -len(" LAN")]
        if gateway != last.actor:
            return gateway
    return owners.get(event.dst.rsplit(":", 1)[0])


def datagram_arrows(trace: Trace) -> list[Arrow]:
    """Turn a trace into arrows, one per copy of each datagram that arrived or died.

    Simulator traces link the events of a datagram by ``packet``. Real traces
    cannot, so a delivery is matched to the earliest unmatched send of the
    same type and payload (preferring the same addresses).
    """
    owners = _owners(trace)
    with_packets = [e for e in trace if e.packet is not None]
    arrows = _arrows_by_packet(with_packets, owners)
    arrows += _arrows_by_matching([e for e in trace if e.packet is None], owners)
    arrows.sort(key=lambda a: (a.points[0].time, a.first_event))
    return arrows


def _arrows_by_packet(events: list[TraceEvent], owners: dict[str, str]) -> list[Arrow]:
    by_packet: dict[int, list[tuple[int, TraceEvent]]] = defaultdict(list)
    for index, event in enumerate(events):
        assert event.packet is not None
        by_packet[event.packet].append((index, event))
    arrows = []
    for group in by_packet.values():
        branches: list[list[Point]] = []
        open_branches: list[list[Point]] = []
        first_index, first = group[0]
        for _, event in group:
            if event.kind is EventKind.SENT:
                branch = [Point(event.time, event.actor)]
                branches.append(branch)
                open_branches.append(branch)
                continue
            found = _branch_for(event.actor, open_branches, branches)
            if found is None:
                continue
            branch = found
            if event.kind is EventKind.TRANSLATED:
                note = (
                    f"{event.src} -> {event.new_src}"
                    if event.new_src
                    else f"{event.dst} -> {event.new_dst}"
                )
                branch.append(Point(event.time, event.actor, note))
                continue
            if event.kind is EventKind.DELIVERED:
                branch.append(Point(event.time, event.actor))
                arrows.append(_arrow(first, branch, EventKind.DELIVERED, "", None, first_index))
            elif event.kind is EventKind.DROPPED:
                if event.actor in owners.values() and event.actor != branch[-1].actor:
                    branch.append(Point(event.time, event.actor))
                    toward = None
                else:
                    toward = _heading(event, branch[-1], owners)
                    branch.append(Point(event.time, branch[-1].actor))
                arrows.append(
                    _arrow(first, branch, EventKind.DROPPED, event.reason, toward, first_index)
                )
            if branch in open_branches:
                open_branches.remove(branch)
    return arrows


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


def _arrow(
    first: TraceEvent,
    points: list[Point],
    outcome: EventKind,
    reason: str,
    toward: str | None,
    index: int,
) -> Arrow:
    return Arrow(first.msg_type, first.payload, list(points), outcome, reason, toward, 1, index)


def _arrows_by_matching(events: list[TraceEvent], owners: dict[str, str]) -> list[Arrow]:
    sends = [(i, e) for i, e in enumerate(events) if e.kind is EventKind.SENT]
    used: set[int] = set()
    arrows = []
    for event in events:
        if event.kind is not EventKind.DELIVERED:
            continue
        candidates = [
            (i, s)
            for i, s in sends
            if i not in used
            and s.msg_type == event.msg_type
            and s.payload == event.payload
            and s.actor != event.actor
            and s.time <= event.time + 1e-3
        ]
        if not candidates:
            continue
        exact = [c for c in candidates if (c[1].src, c[1].dst) == (event.src, event.dst)]
        index, sent = (exact or candidates)[0]
        used.add(index)
        points = [Point(sent.time, sent.actor), Point(max(event.time, sent.time), event.actor)]
        arrows.append(_arrow(sent, points, EventKind.DELIVERED, "", None, index))
    return arrows


# -- lifelines ----------------------------------------------------------------------------------


def lifeline_order(trace: Trace, arrows: Sequence[Arrow] | None = None) -> list[str]:
    """Peer A, its NATs, the server(s), the other NATs, peer B: the textbook order.

    Peers are split in two halves around the servers, each with its NATs
    between it and the middle, so every arrow to the server crosses its own
    NAT and nothing else.
    """
    arrows = datagram_arrows(trace) if arrows is None else arrows
    actors: list[str] = []
    for arrow in arrows:
        for point in arrow.points:
            if point.actor not in actors:
                actors.append(point.actor)
    nats = [a for a in actors if any(p.note and p.actor == a for ar in arrows for p in ar.points)]
    servers = [
        e.actor
        for e in trace
        if e.kind is EventKind.SENT
        and (e.msg_type == "INITIATE_CHAT" or (e.msg_type == "REGISTRATION" and e.payload))
    ]
    servers = list(dict.fromkeys(servers))
    # Sorted by name: "A" left of "B" whichever registered first.
    peers = sorted(a for a in actors if a not in nats and a not in servers)
    nats_of: dict[str, list[str]] = {}
    for peer in peers:
        path = next(
            ([p.actor for p in ar.points if p.actor in nats] for ar in arrows if ar.sender == peer),
            [],
        )
        nats_of[peer] = list(dict.fromkeys(n for n in path))
    half = (len(peers) + 1) // 2
    order: list[str] = []
    for peer in peers[:half]:
        order += [peer, *nats_of[peer]]
    order += servers
    for peer in reversed(peers[half:]):
        order += [*reversed(nats_of[peer]), peer]
    order = list(dict.fromkeys(order))
    return order + [a for a in actors if a not in order]


# -- drawing ------------------------------------------------------------------------------------


def _collapse(arrows: list[Arrow]) -> list[Arrow]:
    """Fold a train of identical datagrams from one sender into its first, counting repeats.

    A train is broken only by a *different* datagram of the same type from
    the same sender (say, a HELLO that got through after many that did not),
    not by the HEART-BEATs interleaved with it.
    """
    kept: list[Arrow] = []
    last: dict[tuple[str, str, tuple[str, ...]], Arrow] = {}
    for arrow in arrows:
        key = (arrow.sender, arrow.msg_type, tuple(p.actor for p in arrow.points))
        previous = last.get(key)
        if previous is not None and previous.signature() == arrow.signature():
            previous.repeats += 1
            continue
        kept.append(arrow)
        last[key] = arrow
    return kept


def sequence_diagram(
    trace: Trace,
    ax: Axes | None = None,
    *,
    actors: Sequence[str] | None = None,
    types: Iterable[str] | None = None,
    time_range: tuple[float, float] | None = None,
    collapse: bool = False,
    addresses: bool = False,
    reasons: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw ``trace`` as a ladder diagram and return the Axes.

    ``actors`` chooses and orders the lifelines (default: :func:`lifeline_order`);
    ``types`` keeps only those message types; ``time_range`` is ``(start, end)``
    in seconds from the trace's first event (the y axis counts from there too);
    ``collapse`` folds repeated HEART-BEATs and retries; ``addresses`` writes the
    rewrite at each NAT; ``reasons`` labels drops.
    The figure (when this function makes one) grows with the number of arrows.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    arrows = datagram_arrows(trace)
    order = list(actors) if actors is not None else lifeline_order(trace, arrows)
    # Times are shown (and windows chosen) from the trace's first event, so a
    # real run's epoch timestamps read as "ms since the start" too.
    origin = trace[0].time if len(trace) else 0.0
    if time_range is not None:
        low, high = origin + time_range[0], origin + time_range[1]
        arrows = [a for a in arrows if low <= a.points[0].time <= high]
    if types is not None:
        wanted = set(types)
        arrows = [a for a in arrows if a.msg_type in wanted]
    clipped = (_clip(a, order) for a in arrows)
    arrows = [a for a in clipped if a is not None]
    if collapse:
        arrows = _collapse(arrows)

    if ax is None:
        height = min(60.0, max(4.0, 1.5 + 0.28 * len(arrows)))
        _, ax = plt.subplots(figsize=(max(6.0, 1.7 * len(order)), height), layout="constrained")
    x = {actor: index for index, actor in enumerate(order)}

    def ms(t: float) -> float:
        return (t - origin) * 1000.0

    times = [ms(p.time) for a in arrows for p in a.points] or [0.0, 1.0]
    start, end = min(times), max(times)
    span = max(end - start, 1.0)
    top, bottom = start - span * 0.02, end + span * 0.02
    for actor, column in x.items():
        ax.plot(
            [column, column],
            [top, bottom],
            color="#cccccc",
            lw=1.2,
            zorder=0,
            gid=f"lifeline:{actor}",
        )
    used_types: dict[str, str] = {}
    notes_shown: set[tuple[str, str]] = set()
    label_spots: list[tuple[float, float]] = []
    for arrow in arrows:
        colour = TYPE_COLOURS.get(arrow.msg_type, OTHER_COLOUR)
        used_types.setdefault(arrow.msg_type, colour)
        style = "--" if arrow.msg_type == "HTTP" else "-"
        points = [(float(x[p.actor]), ms(p.time)) for p in arrow.points]
        dropped = arrow.outcome is EventKind.DROPPED
        lost_on_the_way = len(points) > 1 and points[-1][0] == points[-2][0]
        if dropped and lost_on_the_way and arrow.toward in x:
            # Lost on a link: stop halfway towards where it was going.
            assert arrow.toward is not None
            start_x, target_x = points[-2][0], x[arrow.toward]
            middle = (start_x + target_x) / 2
            if middle == int(middle) and middle != start_x:
                # Not on a lifeline in between: that would read as "dropped there".
                middle -= 0.3 if target_x > start_x else -0.3
            points[-1] = (middle, points[-1][1])
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            final = (x1, y1) == points[-1]
            patch = FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>" if final and not dropped else "-",
                mutation_scale=10,
                color=colour,
                lw=1.3,
                linestyle=style,
                zorder=3,
                shrinkA=0,
                shrinkB=0,
                gid=f"datagram:{arrow.outcome.value}" if final else "hop",
            )
            ax.add_patch(patch)
        for point, (px, py) in zip(arrow.points, points, strict=False):
            if addresses and point.note and (point.actor, point.note) not in notes_shown:
                notes_shown.add((point.actor, point.note))
                ax.text(
                    px + 0.05,
                    py,
                    point.note,
                    fontsize=6,
                    color="#555555",
                    va="bottom",
                    gid="address",
                )
        label = arrow.msg_type + (f" x{arrow.repeats}" if arrow.repeats > 1 else "")
        (lx0, ly0), (lx1, ly1) = _label_segment(points)
        # A third of the way from the sender's side, so two arrows crossing
        # in the middle (HELLOs from both ends) keep their labels apart; other
        # spots along the arrow when that one is taken (SUCCESS and HELLO sent
        # together share one path).
        spots = [(lx0 + (lx1 - lx0) * f, ly0 + (ly1 - ly0) * f) for f in (0.35, 0.65, 0.15, 0.85)]
        label_x, label_y = next(
            (
                spot
                for spot in spots
                if all(
                    abs(spot[0] - ux) > 0.45 or abs(spot[1] - uy) > span * 0.02
                    for ux, uy in label_spots
                )
            ),
            spots[0],
        )
        label_spots.append((label_x, label_y))
        ax.text(
            label_x,
            label_y,
            label,
            fontsize=7,
            color=colour,
            ha="center",
            va="center",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            gid="label",
        )
        if dropped:
            ex, ey = points[-1]
            ax.plot([ex], [ey], marker="x", color=DROP_COLOUR, ms=9, mew=2.2, zorder=5, gid="drop")
            if reasons and arrow.reason:
                ax.text(
                    ex + 0.08,
                    ey,
                    arrow.reason,
                    fontsize=6.5,
                    color=DROP_COLOUR,
                    va="center",
                    zorder=5,
                    gid="reason",
                )

    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(order)), order)
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", length=0, labelsize=9)
    ax.set_ylabel("time (ms)")
    for spine in ("right", "bottom", "top"):
        ax.spines[spine].set_visible(False)
    handles = [Line2D([0], [0], color=c, lw=2, label=t) for t, c in used_types.items()]
    if any(a.outcome is EventKind.DROPPED for a in arrows):
        handles.append(
            Line2D([0], [0], color=DROP_COLOUR, marker="x", lw=0, mew=2, label="dropped")
        )
    if handles:
        ax.legend(
            handles=handles, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, frameon=False
        )
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 70)), pad=24, fontsize=10)
    return ax


def save_sequence_diagram(trace: Trace, path: str | Path, **options: Any) -> Path:
    """Draw ``trace`` into a PNG (or any format matplotlib knows) and close the figure."""
    import matplotlib.pyplot as plt

    ax = sequence_diagram(trace, **options)
    figure = ax.get_figure(root=True)
    assert figure is not None
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.resolve()


def _label_segment(
    points: list[tuple[float, float]],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The longest horizontal hop, where a label has the most room."""
    if len(points) == 1:
        return points[0], points[0]
    pairs = list(itertools.pairwise(points))
    return max(pairs, key=lambda pair: abs(pair[1][0] - pair[0][0]))


def _clip(arrow: Arrow, order: Sequence[str]) -> Arrow | None:
    """Keep only the points on chosen lifelines; None if too little is left to draw."""
    shown = set(order)
    points = [p for p in arrow.points if p.actor in shown]
    if len(points) < 2 and not (arrow.outcome is EventKind.DROPPED and points):
        return None
    if len(points) == len(arrow.points):
        return arrow
    toward = arrow.toward if arrow.toward in shown else None
    return Arrow(
        arrow.msg_type,
        arrow.payload,
        points,
        arrow.outcome,
        arrow.reason,
        toward,
        arrow.repeats,
        arrow.first_event,
    )


# -- the state machine --------------------------------------------------------------------------


def _state_positions(
    transitions: dict[tuple[PeerState, Trigger], PeerState],
) -> dict[PeerState, tuple[float, float]]:
    """Columns by distance from IDLE (ignoring close), rows in order of discovery."""
    depth = {PeerState.IDLE: 0}
    frontier = [PeerState.IDLE]
    while frontier:
        following = []
        for state in frontier:
            for (source, trigger), target in transitions.items():
                if source is state and trigger is not Trigger.CLOSE and target not in depth:
                    depth[target] = depth[state] + 1
                    following.append(target)
        frontier = following
    rows: dict[int, int] = defaultdict(int)
    positions = {}
    for state, column in depth.items():
        positions[state] = (float(column), -1.4 * rows[column])
        rows[column] += 1
    return positions


def state_diagram(
    ax: Axes | None = None,
    *,
    transitions: dict[tuple[PeerState, Trigger], PeerState] = TRANSITIONS,
    highlight: PeerState | None = None,
) -> Axes:
    """Draw the peer's state machine straight from the core's transition table."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    positions = _state_positions(transitions)
    columns = max(x for x, _ in positions.values()) + 1
    closable = sorted(
        {s for (s, t) in transitions if t is Trigger.CLOSE}, key=list(PeerState).index
    )
    closed = next((target for (s, t), target in transitions.items() if t is Trigger.CLOSE), None)
    bottom = min(y for _, y in positions.values()) - 1.6
    if closed is not None:
        positions[closed] = ((columns - 1) / 2, bottom)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 * columns, 2.2 + 1.1 * -bottom), layout="constrained")
    for state, (sx, sy) in positions.items():
        ax.text(
            sx,
            sy,
            state.value,
            ha="center",
            va="center",
            fontsize=10,
            zorder=3,
            bbox={
                "boxstyle": "round,pad=0.5",
                "fc": "#ffe8a3" if state is highlight else "#eef3fb",
                "ec": "#2b5797",
                "lw": 2.0 if state is highlight else 1.0,
            },
            gid=f"state:{state.value}",
        )
    pairs: dict[tuple[PeerState, PeerState], list[str]] = defaultdict(list)
    for (source, trigger), target in transitions.items():
        if trigger is not Trigger.CLOSE:
            pairs[(source, target)].append(trigger.value)
    for (source, target), triggers in pairs.items():
        (x0, y0), (x1, y1) = positions[source], positions[target]
        backwards = x1 <= x0
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=14,
                color="#2b5797",
                lw=1.2,
                shrinkA=28,
                shrinkB=28,
                connectionstyle=f"arc3,rad={0.35 if backwards else 0.0}",
                zorder=2,
                gid=f"transition:{source.value}->{target.value}",
            )
        )
        offset = 0.35 if backwards else 0.18
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2 + offset,
            "\n".join(triggers),
            fontsize=7.5,
            ha="center",
            va="bottom",
            color="#333333",
        )
    if closed is not None:
        ax.text(
            positions[closed][0],
            positions[closed][1] + 0.55,
            f"close ({len(closable)} states: any but {closed.value})",
            fontsize=7.5,
            ha="center",
            color="#333333",
        )
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.9)
    ax.set_axis_off()
    return ax
