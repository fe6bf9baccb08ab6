"""Pure geometry for the diagrams: no matplotlib here, so each rule has its own tests.

- :func:`place_labels`: boxes (in display units) moved only vertically, the
  least needed, until no two overlap;
- :class:`TimeAxis`: time in ms to the y axis, idle stretches cut short;
- :func:`arrow_geometry`: where an arrow's segments, end mark and label go;
- :func:`state_layout`: where the state machine's states and edges go.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from punchlab.diagram_arrows import Arrow
from punchlab.peer import PeerState, Trigger
from punchlab.trace import EventKind

__all__ = [
    "ArrowGeometry",
    "Box",
    "LabelRequest",
    "StateLayout",
    "TimeAxis",
    "arrow_geometry",
    "place_labels",
    "state_layout",
]

#: Overlaps smaller than this (display units) are rounding, not overlaps.
EPSILON = 1e-6


# -- label placement ----------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle; boxes that only touch do not overlap."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, centre: tuple[float, float], width: float, height: float) -> Box:
        x, y = centre
        return cls(x - width / 2, y - height / 2, x + width / 2, y + height / 2)

    def overlaps(self, other: Box) -> bool:
        return (
            min(self.x1, other.x1) - max(self.x0, other.x0) > EPSILON
            and min(self.y1, other.y1) - max(self.y0, other.y0) > EPSILON
        )


@dataclass(frozen=True)
class LabelRequest:
    """A label to place: its size and the centres it would like, best first."""

    width: float
    height: float
    candidates: tuple[tuple[float, float], ...]


def _clamp_x(x: float, width: float, bounds: Box | None) -> float:
    """Slide a box sideways into ``bounds`` when it fits there (a label must not leave the axes)."""
    if bounds is None or width > bounds.x1 - bounds.x0:
        return x
    return min(max(x, bounds.x0 + width / 2), bounds.x1 - width / 2)


def _free(box: Box, placed: Sequence[Box]) -> bool:
    return not any(box.overlaps(other) for other in placed)


def _inside(y: float, height: float, bounds: Box | None) -> bool:
    if bounds is None:
        return True
    return bounds.y0 - EPSILON <= y - height / 2 and y + height / 2 <= bounds.y1 + EPSILON


def _nearest_free_y(
    x: float, y: float, request: LabelRequest, placed: Sequence[Box], bounds: Box | None
) -> float:
    """The free centre height closest to ``y`` in the column of the box, inside bounds if any is.

    Each placed box in the way forbids an open interval of centre heights;
    the answer is ``y`` itself or an end of the merged interval holding it.
    """
    half_w, half_h = request.width / 2, request.height / 2
    blocked = sorted(
        (b.y0 - half_h, b.y1 + half_h)
        for b in placed
        if min(b.x1, x + half_w) - max(b.x0, x - half_w) > EPSILON
    )
    merged: list[list[float]] = []
    for low, high in blocked:
        if merged and low < merged[-1][1] - EPSILON:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    options = [y] + [end for low, high in merged for end in (low, high)]
    if bounds is not None and bounds.y1 - bounds.y0 >= request.height:
        options.append(min(max(y, bounds.y0 + half_h), bounds.y1 - half_h))
    free = [
        o for o in options if not any(low + EPSILON < o < high - EPSILON for low, high in merged)
    ]
    inside = [o for o in free if _inside(o, request.height, bounds)]
    return min(inside or free, key=lambda o: (abs(o - y), o))


def place_labels(
    requests: Sequence[LabelRequest], *, obstacles: Iterable[Box] = (), bounds: Box | None = None
) -> list[tuple[float, float]]:
    """Centres for the labels, in order, such that no two boxes overlap (touching is fine).

    Greedy, in the order given (so earlier labels win their best spot): the
    first candidate that is free and inside ``bounds``, else the first
    candidate moved up or down by the least that frees it. Only vertical
    moves: on a ladder diagram a label slid along the time axis still sits
    by its arrow. Candidates are first slid sideways into ``bounds``.
    """
    placed: list[Box] = list(obstacles)
    centres = []
    for request in requests:
        options = [(_clamp_x(x, request.width, bounds), y) for x, y in request.candidates]
        if not options:
            raise ValueError("a label needs at least one candidate position")
        chosen = next(
            (
                c
                for c in options
                if _inside(c[1], request.height, bounds)
                and _free(Box.around(c, request.width, request.height), placed)
            ),
            None,
        )
        if chosen is None:
            x, y = options[0]
            chosen = (x, _nearest_free_y(x, y, request, placed, bounds))
        placed.append(Box.around(chosen, request.width, request.height))
        centres.append(chosen)
    return centres


# -- the time axis ------------------------------------------------------------------------

#: A cut idle stretch is drawn this tall, as a share of the (uncut) time shown.
BREAK_SHARE = 0.06
#: A gap is cut only if that shrinks it at least this many times.
WORTH_CUTTING = 3.0
#: The thinnest cut, as a share of the longest gap (far below a pixel).
CUT_RESOLUTION = 1e-9


@dataclass(frozen=True)
class Segment:
    """Times ``start..end`` (ms) shown at ``time - offset``."""

    start: float
    end: float
    offset: float


@dataclass(frozen=True)
class Break:
    """An idle stretch ``start..end`` (ms) cut down to ``shown_start..shown_end`` on the axis."""

    start: float
    end: float
    shown_start: float
    shown_end: float

    @property
    def idle(self) -> float:
        return self.end - self.start


def busy_spans(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merge the in-flight intervals of datagrams into stretches where something was moving."""
    spans: list[list[float]] = []
    for start, end in sorted((min(a, b), max(a, b)) for a, b in intervals):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(a, b) for a, b in spans]


def _cuts(lengths: Sequence[float], gaps: Sequence[float]) -> tuple[set[int], float]:
    """Which gaps to cut (indices) and the height each cut keeps.

    A gap longer than the busy time either side of it is a candidate. The
    height of a cut depends on the time left uncut, which grows as gaps too
    short to be worth cutting are put back, so this repeats until stable.
    """
    cuts = {i for i, gap in enumerate(gaps) if gap > max(lengths[i], lengths[i + 1])}
    while True:
        kept = sum(lengths) + sum(gap for i, gap in enumerate(gaps) if i not in cuts)
        cut = BREAK_SHARE * (kept if kept > 0 else max(gaps, default=1.0))
        # Never thinner than floats can tell apart beside the longest gap: a busy
        # stretch of 1e-309 ms would leave a cut of nothing, and the time after
        # it would show before it (found by hypothesis).
        cut = max(cut, CUT_RESOLUTION * max(gaps, default=0.0))
        worth = {i for i in cuts if gaps[i] > WORTH_CUTTING * cut}
        if worth == cuts:
            return cuts, cut
        cuts = worth


@dataclass(frozen=True)
class TimeAxis:
    """Time (ms) to the diagram's y coordinate, linear except at cut idle stretches.

    An idle gap (nothing in flight) is cut when it is longer than the busy
    stretch on either side of it, and when cutting pays: the gap is more than
    :data:`WORTH_CUTTING` times the height a cut keeps (:data:`BREAK_SHARE`
    of the time still shown). So a 3 ms punch after 400 ms of nothing fills
    the figure, while the pauses inside a punch keep their true length and
    its slopes still read as latency.
    """

    segments: tuple[Segment, ...]
    breaks: tuple[Break, ...] = ()

    @classmethod
    def fit(cls, intervals: Iterable[tuple[float, float]], *, compress: bool = True) -> TimeAxis:
        spans = busy_spans(intervals)
        if not spans:
            return cls((Segment(0.0, 1.0, 0.0),))
        lengths = [b - a for a, b in spans]
        gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        cuts, cut = _cuts(lengths, gaps) if compress else (set(), 0.0)
        segments, breaks = [], []
        offset, start = 0.0, spans[0][0]
        for i in sorted(cuts):
            idle_from, idle_to = spans[i][1], spans[i + 1][0]
            segments.append(Segment(start, idle_from, offset))
            shown = idle_from - offset
            breaks.append(Break(idle_from, idle_to, shown, shown + cut))
            offset += gaps[i] - cut
            start = idle_to
        segments.append(Segment(start, spans[-1][1], offset))
        return cls(tuple(segments), tuple(breaks))

    def to_display(self, time: float) -> float:
        """Where ``time`` (ms) sits on the axis; inside a break, proportionally."""
        for cut in self.breaks:
            if cut.start < time < cut.end:
                share = (time - cut.start) / cut.idle
                return cut.shown_start + share * (cut.shown_end - cut.shown_start)
        starts = [s.start for s in self.segments]
        segment = self.segments[max(0, bisect.bisect_right(starts, time) - 1)]
        return time - segment.offset

    def to_time(self, shown: float) -> float:
        """Inverse of :meth:`to_display`.

        A segment's own range is read first: at a break's edge a rounding error
        would otherwise land inside the break, where display units are worth
        many milliseconds.
        """
        for segment in self.segments:
            if segment.start - segment.offset <= shown <= segment.end - segment.offset:
                return shown + segment.offset
        for cut in self.breaks:
            if cut.shown_start < shown < cut.shown_end:
                share = (shown - cut.shown_start) / (cut.shown_end - cut.shown_start)
                return cut.start + share * cut.idle
        starts = [s.start - s.offset for s in self.segments]
        segment = self.segments[max(0, bisect.bisect_right(starts, shown) - 1)]
        return shown + segment.offset

    @property
    def shown_range(self) -> tuple[float, float]:
        first, last = self.segments[0], self.segments[-1]
        return first.start - first.offset, last.end - last.offset


# -- arrows -------------------------------------------------------------------------------

#: How far (in lifeline spacings) an unseen datagram's arrow reaches before its '?'.
UNSEEN_REACH = 0.6
#: Along each hop, from the sender's side: where an arrow's label would like to sit.
LABEL_SPOTS = (0.35, 0.65, 0.2, 0.8, 0.5)


@dataclass(frozen=True)
class ArrowGeometry:
    """An arrow in diagram coordinates (x: lifeline index, y: shown time)."""

    points: tuple[tuple[float, float], ...]
    #: "head" (delivered), "cross" (dropped) or "unseen" (a '?': nobody saw it again)
    end: str
    label_spots: tuple[tuple[float, float], ...]


def _lost_between(start_x: float, target_x: float) -> float:
    """Halfway to where it was going, but never on a lifeline (that would say "dropped there")."""
    middle = (start_x + target_x) / 2
    if middle == int(middle) and middle != start_x:
        middle -= 0.3 if target_x > start_x else -0.3
    return middle


def _hops_by_room(
    points: Sequence[tuple[float, float]],
) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The arrow's hops, widest first: a label has most room there (ties: the first)."""
    if len(points) == 1:
        return [(points[0], points[0])]
    hops = list(itertools.pairwise(points))
    return sorted(hops, key=lambda hop: -abs(hop[1][0] - hop[0][0]))


def arrow_geometry(
    arrow: Arrow, lanes: Mapping[str, int], y: Callable[[float], float]
) -> ArrowGeometry:
    """Segments of an arrow, with ``y`` mapping a trace time (s) to the y axis.

    A delivered datagram ends in a head at its receiver; a dropped one in a
    cross where it died (halfway along the link for a loss on a link); an
    unseen one stops a little way towards its intended receiver.
    """
    points = [(float(lanes[p.actor]), y(p.time)) for p in arrow.points]
    end = "head"
    target = lanes.get(arrow.toward) if arrow.toward is not None else None
    if arrow.outcome is EventKind.SENT and target is not None:
        x0, y0 = points[0]
        step = math.copysign(UNSEEN_REACH, target - x0)
        points, end = [(x0, y0), (x0 + step, y0)], "unseen"
    elif arrow.outcome is EventKind.DROPPED:
        end = "cross"
        lost_on_link = len(points) > 1 and points[-1][0] == points[-2][0]
        if lost_on_link and target is not None:
            middle = _lost_between(points[-2][0], float(target))
            points[-1] = (middle, points[-1][1])
    spots = tuple(
        (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f)
        for (x0, y0), (x1, y1) in _hops_by_room(points)
        for f in LABEL_SPOTS
    )
    return ArrowGeometry(tuple(points), end, spots)


# -- the state machine --------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    source: PeerState
    target: PeerState
    label: str
    #: Curvature: 0 for a straight edge, positive to bend (an edge going back).
    bend: float
    label_at: tuple[float, float]


@dataclass(frozen=True)
class StateLayout:
    positions: dict[PeerState, tuple[float, float]]
    edges: tuple[Edge, ...]
    #: The state every state may close into, and the note saying so.
    closed: PeerState | None = None
    close_note: str = ""


def _depths(transitions: Mapping[tuple[PeerState, Trigger], PeerState]) -> dict[PeerState, int]:
    """Columns by distance from IDLE, ignoring close (every state can close)."""
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
    return depth


#: The ladder's drawing: the punch on the left, the two guessing rungs above and
#: below, the relay on the right, so that no arrow crosses a state.
LADDER_POSITIONS = {
    PeerState.PUNCHING: (0.0, 0.0),
    PeerState.PREDICTING: (1.6, 0.8),
    PeerState.PROBING: (1.6, -0.8),
    PeerState.RELAYING: (3.2, 0.0),
}


#: Rows of the state machine are this far apart (columns are 1 apart).
ROW_STEP = 1.0
#: How far an edge's label sits off its edge, beside it.
LABEL_OFFSET = 0.2


def _edge(
    source: PeerState,
    target: PeerState,
    label: str,
    positions: Mapping[PeerState, tuple[float, float]],
    returns: bool,
) -> Edge:
    """An edge going right is straight, one going back bends; where each label goes.

    A bent edge's label sits outside its bow; a straight edge's on its left
    (above, for one going right), or, when an edge comes back the other way
    (``returns``), on the side away from that edge's bow.
    """
    (x0, y0), (x1, y1) = positions[source], positions[target]
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    bow_side = (dy / length, -dx / length)  # where matplotlib's arc3 bows for a positive bend
    bend = 0.35 if x1 <= x0 else 0.0
    if bend:
        side, away = bow_side, 0.5 * bend * length + 1.75 * LABEL_OFFSET
    else:
        side, away = (bow_side if returns else (-bow_side[0], -bow_side[1])), LABEL_OFFSET
    mid = ((x0 + x1) / 2, (y0 + y1) / 2)
    return Edge(source, target, label, bend, (mid[0] + side[0] * away, mid[1] + side[1] * away))


def state_layout(
    transitions: Mapping[tuple[PeerState, Trigger], PeerState],
    fixed: Mapping[PeerState, tuple[float, float]] | None = None,
) -> StateLayout:
    """States in columns by distance from IDLE, rows in order of discovery; CLOSED below.

    ``fixed`` places the states itself (the ladder's drawing, which does not start at IDLE).
    """
    rows: dict[int, int] = defaultdict(int)
    positions: dict[PeerState, tuple[float, float]] = {}
    if fixed is not None:
        positions.update(fixed)
    for state, column in ({} if fixed is not None else _depths(transitions)).items():
        positions[state] = (float(column), -ROW_STEP * rows[column])
        rows[column] += 1
    triggers: dict[tuple[PeerState, PeerState], list[str]] = defaultdict(list)
    for (source, trigger), target in transitions.items():
        if trigger is not Trigger.CLOSE:
            triggers[(source, target)].append(trigger.value)
    edges = tuple(
        _edge(s, t, "\n".join(names), positions, (t, s) in triggers)
        for (s, t), names in triggers.items()
    )
    closers = {s for (s, t) in transitions if t is Trigger.CLOSE}
    closed = next((t for (s, trig), t in transitions.items() if trig is Trigger.CLOSE), None)
    note = ""
    if closed is not None:
        columns = max(x for x, _ in positions.values()) + 1
        positions[closed] = ((columns - 1) / 2, min(y for _, y in positions.values()) - ROW_STEP)
        note = f"close ({len(closers)} states: any but {closed.value})"
    return StateLayout(positions, edges, closed, note)
