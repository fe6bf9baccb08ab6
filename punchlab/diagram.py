"""Sequence (ladder) diagrams of a trace, the peer's state machine and the success matrix.

One vertical lifeline per host, time running down. A datagram is an arrow
from the moment it left its sender to the moment it arrived, so its slope
shows latency; it bends at each NAT that rewrote it. A dropped datagram ends
in a cross where it died, with the reason; a sent datagram that no trace saw
again (real NATs drop silently) stops with a '?'. Idle stretches are cut
short (a marked break in the time axis) so a quick punch after a long wait
still fills the figure.

The work is split so each rule can be tested alone: what to draw
(:mod:`punchlab.diagram_arrows`), in which order (:mod:`punchlab.diagram_lifelines`),
where (:mod:`punchlab.diagram_layout`, pure geometry); this module only draws.
Labels are placed when the figure is drawn, at its final size, so none
covers another whatever the figure's size or dpi.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from matplotlib.artist import Artist
from matplotlib.ticker import Formatter, Locator, MaxNLocator

from punchlab.diagram_arrows import Arrow, datagram_arrows, select_arrows
from punchlab.diagram_layout import (
    LADDER_POSITIONS,
    ArrowGeometry,
    Box,
    LabelRequest,
    TimeAxis,
    arrow_geometry,
    place_labels,
    state_layout,
)
from punchlab.diagram_lifelines import lifeline_order
from punchlab.display import printable
from punchlab.peer import PeerState, Trigger
from punchlab.peer_table import LADDER_NOTE, ladder_transitions
from punchlab.trace import EventKind, Trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.text import Text

__all__ = [
    "TYPE_COLOURS",
    "Arrow",
    "datagram_arrows",
    "lifeline_order",
    "matrix_diagram",
    "route_matrix_diagram",
    "save_sequence_diagram",
    "sequence_diagram",
    "state_diagram",
]

# Okabe & Ito's palette (2008), told apart with every common colour-vision
# deficiency; every arrow is labelled with its type as well, so colour only helps.
BLUE, SKY, GREEN, ORANGE = "#0072B2", "#56B4E9", "#009E73", "#E69F00"
VERMILLION, PURPLE, BLACK, GREY = "#D55E00", "#CC79A7", "#000000", "#606060"

#: One colour per message type, the same in every diagram and notebook.
TYPE_COLOURS: dict[str, str] = {
    "REGISTRATION": BLUE,
    "HTTP": PURPLE,
    "INITIATE_CHAT": SKY,
    "INITIATE_CHAT_ACK": SKY,
    "HELLO": ORANGE,
    "SUCCESS": GREEN,
    "TEXT": BLACK,
    "TEXT-ACK": BLACK,
    "HEART-BEAT": GREY,
}
#: An acknowledgement is its message's colour, dash-dotted.
TYPE_STYLES: dict[str, str] = {"HTTP": "--", "INITIATE_CHAT_ACK": "-.", "TEXT-ACK": "-."}
OTHER_COLOUR = "#6B4E00"
DROP_COLOUR = VERMILLION
INK = "#1A1A1A"
#: Smallest text anywhere: legible at notebook width (8 pt at 100 dpi).
FONT = 8.0
#: The longest text from a trace (a type, a reason) written on a diagram.
LABEL_CHARS = 40
#: Figures wider than a notebook's output area are shrunk, and their text with them.
MAX_WIDTH = 9.5


# -- label placement at draw time ---------------------------------------------------------


class _LabelPlacer(Artist):
    """Moves the axes' labels apart when the figure is drawn, at its final size.

    It is drawn first (lowest zorder), measures every label it manages with
    the renderer and asks :func:`place_labels` for positions, so the layout
    holds for any figure size, dpi or arrangement of subplots.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_zorder(-100)
        self.set_in_layout(False)
        self.entries: list[tuple[Text, tuple[tuple[float, float], ...]]] = []

    def manage(self, text: Text, candidates: Iterable[tuple[float, float]]) -> Text:
        self.entries.append((text, tuple(candidates) or (text.get_position(),)))
        return text

    def draw(self, renderer: RendererBase) -> None:
        ax = self.axes
        if ax is None or not self.entries:
            return
        to_display, to_data = ax.transData, ax.transData.inverted()
        pad = 1.5 * ax.figure.dpi / 72  # points to pixels
        requests, offsets = [], []
        for text, candidates in self.entries:
            text.set_position(candidates[0])
            box = text.get_window_extent(renderer)
            anchor = to_display.transform(candidates[0])
            offset = ((box.x0 + box.x1) / 2 - anchor[0], (box.y0 + box.y1) / 2 - anchor[1])
            centres = tuple(
                (x + offset[0], y + offset[1]) for x, y in to_display.transform(candidates)
            )
            requests.append(LabelRequest(box.width + 2 * pad, box.height + 2 * pad, centres))
            offsets.append(offset)
        bounds = Box(*ax.bbox.extents)
        for (text, _), (x, y), offset in zip(
            self.entries, place_labels(requests, bounds=bounds), offsets, strict=True
        ):
            text.set_position(tuple(to_data.transform((x - offset[0], y - offset[1]))))


def _placer(ax: Axes) -> _LabelPlacer:
    found = [a for a in ax.artists if isinstance(a, _LabelPlacer)]
    if found:
        return found[0]
    placer = _LabelPlacer()
    ax.add_artist(placer)
    return placer


# -- the time axis ------------------------------------------------------------------------


def _duration(ms: float) -> str:
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


class _TimeTicks(Locator):
    """Nice ticks inside each shown stretch of time, thinned to one per label height."""

    def __init__(self, axis: TimeAxis) -> None:
        self.time_axis = axis
        self.labels: dict[float, str] = {}

    def __call__(self) -> Sequence[float]:
        ax = getattr(self.axis, "axes", None)
        if ax is None:
            return []
        (_, y0), (_, y1) = ax.transData.transform([(0, 0), (0, 1)])
        per_unit = abs(y1 - y0) or 1.0
        spacing = 1.8 * FONT * ax.figure.dpi / 72
        ticks: list[tuple[float, str]] = []
        for segment in self.time_axis.segments:
            room = (segment.end - segment.start) * per_unit
            locator = MaxNLocator(nbins=max(1, int(room // (2 * spacing))), steps=[1, 2, 2.5, 5])
            values = [
                v
                for v in locator.tick_values(segment.start, segment.end)
                if segment.start - 1e-9 <= v <= segment.end + 1e-9
            ]
            if len(values) < 2 or segment.end - segment.start < 1e-3:
                values, step = [segment.start], 0.1
            else:
                step = values[1] - values[0]
            digits = min(3, max(0, -math.floor(math.log10(step) + 1e-9)))
            ticks += [(v - segment.offset, f"{v:.{digits}f}") for v in values]
        kept: list[tuple[float, str]] = []
        for shown, label in sorted(ticks):
            if not kept or (shown - kept[-1][0]) * per_unit >= spacing:
                kept.append((shown, label))
        self.labels = dict(kept)
        return [shown for shown, _ in kept]


class _TimeLabels(Formatter):
    def __init__(self, ticks: _TimeTicks) -> None:
        self.ticks = ticks

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = self.ticks.labels.get(x)
        return label if label is not None else f"{self.ticks.time_axis.to_time(x):.4g}"


def _draw_breaks(ax: Axes, axis: TimeAxis, placer: _LabelPlacer) -> None:
    """Each cut idle stretch: a pale band, a zigzag on the time axis, and how long it was."""
    for cut in axis.breaks:
        low, high = cut.shown_start, cut.shown_end
        ax.axhspan(low, high, facecolor="#EFEFEF", edgecolor="none", zorder=1.5, gid="break")
        side = ax.get_yaxis_transform()
        ax.plot([0, 0], [low, high], color="white", lw=3, zorder=2.6, transform=side, clip_on=False)
        for level in (low, high):
            ax.plot(
                [-0.012, 0.012],
                [level + (high - low) * 0.25, level - (high - low) * 0.25],
                color="#555555",
                lw=1,
                transform=side,
                clip_on=False,
                zorder=2.7,
            )
        text = ax.text(
            -0.3,
            (low + high) / 2,
            f"{_duration(cut.idle)} idle",
            fontsize=FONT,
            color="#444444",
            ha="center",
            va="center",
            style="italic",
            zorder=4,
            gid="break-label",
        )
        placer.manage(text, [((-0.3), (low + high) / 2)])


# -- arrows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    addresses: bool
    reasons: bool
    #: Drops already labelled, by place and reason: two datagrams dropped at one
    #: spot for one reason (both sides' HELLOs at one NAT) get one label.
    labelled: set[tuple[float, float, str]] = field(default_factory=set)


def _draw_segments(ax: Axes, arrow: Arrow, geometry: ArrowGeometry, colour: str) -> None:
    from matplotlib.patches import FancyArrowPatch

    style = ":" if geometry.end == "unseen" else TYPE_STYLES.get(arrow.msg_type, "-")
    points = geometry.points
    for index, (start, end) in enumerate(itertools.pairwise(points)):
        final = index == len(points) - 2
        patch = FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>" if final and geometry.end == "head" else "-",
            mutation_scale=10,
            color=colour,
            lw=1.4,
            linestyle=style,
            zorder=3,
            shrinkA=0,
            shrinkB=0,
            gid=f"datagram:{arrow.outcome.value}" if final else "hop",
        )
        ax.add_patch(patch)


def _draw_end(
    ax: Axes, arrow: Arrow, geometry: ArrowGeometry, colour: str, options: _Options
) -> list[tuple[Text, list[tuple[float, float]]]]:
    """The cross (and reason) of a drop, the '?' of a datagram nobody saw again."""
    ex, ey = geometry.points[-1]
    if geometry.end == "unseen":
        direction = 1 if ex > geometry.points[0][0] else -1
        mark = ax.text(
            ex,
            ey,
            "?",
            fontsize=FONT + 2,
            fontweight="bold",
            color=INK,
            ha="center",
            va="center",
            zorder=5,
            gid="unseen",
            bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": colour, "lw": 1.2},
        )
        return [(mark, [(ex + 0.04 * direction, ey)])]
    if geometry.end != "cross":
        return []
    ax.plot([ex], [ey], marker="x", color=DROP_COLOUR, ms=9, mew=2.4, zorder=5, gid="drop")
    if not (options.reasons and arrow.reason):
        return []
    spot = (round(ex, 6), round(ey, 9), arrow.reason)
    if spot in options.labelled:
        return []
    options.labelled.add(spot)
    reason = ax.text(
        ex + 0.1,
        ey,
        printable(arrow.reason, LABEL_CHARS),
        fontsize=FONT,
        color="#8A3300",
        ha="left",
        va="center",
        zorder=5,
        gid="reason",
        parse_math=False,
    )
    return [(reason, [(ex + 0.1, ey), (ex - 0.1 - 0.9, ey)])]


#: How the ladder's bursts are named in a diagram (punchlab.ladder's payloads).
BURST_NAMES = {"probe": "birthday probes", "open": "opening ports"}


def _arrow_name(arrow: Arrow) -> str:
    """The label: the type, and for STUN what kind of message (a request asking for a change
    of address looks the same as any other otherwise)."""
    if arrow.msg_type == "HELLO" and arrow.payload in BURST_NAMES:
        return f"HELLO ({BURST_NAMES[arrow.payload]})"
    if arrow.msg_type == "RELAY":
        inner = re.match(r'\{"type":"([A-Z_-]{1,20})"', arrow.payload)
        return f"RELAY ({inner[1] if inner else 'credit'})"
    if arrow.msg_type != "STUN" or not arrow.payload.startswith("Binding "):
        return arrow.msg_type
    words = arrow.payload.removeprefix("Binding ").split(" ", 1)
    asked = words[1] if len(words) > 1 and words[1].startswith("(change") else ""
    return f"STUN {words[0]} {asked}".rstrip()


def _draw_burst(ax: Axes, arrow: Arrow, geometry: ArrowGeometry, until: float) -> None:
    """A folded burst (birthday probes) is one arrow at its first datagram; a bar on the
    sender's lifeline shows how long it went on."""
    x, start = geometry.points[0]
    if abs(until - start) < 1e-9:
        return
    colour = TYPE_COLOURS.get(arrow.msg_type, OTHER_COLOUR)
    ax.plot([x, x], [start, until], color=colour, lw=6, alpha=0.35, solid_capstyle="butt",
            zorder=1, gid=f"burst:{arrow.msg_type}")  # fmt: skip


def _draw_arrow(
    ax: Axes, arrow: Arrow, geometry: ArrowGeometry, options: _Options, notes: set[tuple[str, str]]
) -> list[tuple[Text, list[tuple[float, float]]]]:
    """One datagram: its segments, end mark, type label and the rewrites it underwent."""
    colour = TYPE_COLOURS.get(arrow.msg_type, OTHER_COLOUR)
    _draw_segments(ax, arrow, geometry, colour)
    texts = _draw_end(ax, arrow, geometry, colour, options)
    # A type, like a reason, may come from a stranger: escaped, bounded, never read as TeX.
    name = printable(_arrow_name(arrow), LABEL_CHARS) + (
        f" x{arrow.repeats}" if arrow.repeats > 1 else ""
    )
    label = ax.text(
        *geometry.label_spots[0],
        name,
        fontsize=FONT,
        color=INK,
        ha="center",
        va="center",
        zorder=4,
        gid="label",
        parse_math=False,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colour, "lw": 0.8},
    )
    texts.append((label, list(geometry.label_spots)))
    for point, (px, py) in zip(arrow.points, geometry.points, strict=False):
        if options.addresses and point.note and (point.actor, point.note) not in notes:
            notes.add((point.actor, point.note))
            old, new = point.note.split(" -> ")
            # A firewall passes a datagram on as it came (IPv6): say so, not "x -> x".
            rewrite = f"\u2192 {new}" if new != old else "not translated"
            note = ax.text(
                px + 0.06,
                py,
                f"{old}\n{rewrite}",
                fontsize=FONT,
                color="#444444",
                ha="left",
                va="center",
                zorder=4,
                gid="address",
                parse_math=False,
                linespacing=1.1,
            )
            texts.append((note, [(px + 0.06, py)]))
    return texts


# -- the axes -----------------------------------------------------------------------------


def _plain(text: str) -> str:
    """Text from a trace for a tick or legend label: escaped, bounded, its '$' not TeX."""
    return printable(text, LABEL_CHARS).replace("$", r"\$")


def _new_axes(lifelines: int, arrows: int, breaks: int) -> Axes:
    """A figure that fits a notebook's width and grows in height with what it shows."""
    import matplotlib.pyplot as plt

    width = min(MAX_WIDTH, max(5.5, 1.6 * lifelines + 1.0))
    height = min(60.0, max(3.5, 1.8 + 0.3 * arrows + 0.25 * breaks))
    _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def _style_axes(ax: Axes, order: Sequence[str], axis: TimeAxis, title: str | None) -> None:
    low, high = axis.shown_range
    pad = (high - low) * 0.03 or 1.0
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylim(high + pad, low - pad)
    ax.set_xticks(range(len(order)), [textwrap.fill(_plain(a), 12) for a in order])
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", length=0, labelsize=FONT + 1)
    ticks = _TimeTicks(axis)
    ax.yaxis.set_major_locator(ticks)
    ax.yaxis.set_major_formatter(_TimeLabels(ticks))
    ax.tick_params(axis="y", labelsize=FONT)
    ax.set_ylabel("time (ms)", fontsize=FONT + 1)
    for spine in ("right", "bottom", "top"):
        ax.spines[spine].set_visible(False)
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=FONT + 2, pad=8)


def _draw_lifelines(ax: Axes, order: Sequence[str]) -> None:
    low, high = ax.get_ylim()
    for column, actor in enumerate(order):
        ax.plot([column, column], [low, high], color="#C8C8C8", lw=1.2, zorder=1,
                gid=f"lifeline:{actor}")  # fmt: skip


def _legend(ax: Axes, arrows: Sequence[Arrow], columns: int) -> None:
    """What the colours, line styles and marks mean (each arrow is labelled too)."""
    from matplotlib.lines import Line2D

    handles = []
    for msg_type in dict.fromkeys(a.msg_type for a in arrows):
        colour = TYPE_COLOURS.get(msg_type, OTHER_COLOUR)
        style = TYPE_STYLES.get(msg_type, "-")
        label = _plain(msg_type)
        handles.append(Line2D([], [], color=colour, lw=2, ls=style, label=label))
    outcomes = {a.outcome for a in arrows}
    if EventKind.DROPPED in outcomes:
        handles.append(
            Line2D([], [], color=DROP_COLOUR, marker="x", lw=0, mew=2, label="dropped (why)")
        )
    if EventKind.SENT in outcomes:
        handles.append(
            Line2D([], [], color=INK, marker="$?$", lw=1, ls=":", label="sent, never seen again")
        )
    if handles:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(columns, len(handles)),
            fontsize=FONT,
            frameon=False,
        )


def _window(trace: Trace, time_range: tuple[float, float] | None) -> tuple[float, float] | None:
    if time_range is None:
        return None
    origin = trace[0].time if len(trace) else 0.0
    return origin + time_range[0], origin + time_range[1]


def sequence_diagram(
    trace: Trace,
    ax: Axes | None = None,
    *,
    actors: Sequence[str] | None = None,
    peers: Sequence[str] | None = None,
    types: Iterable[str] | None = None,
    time_range: tuple[float, float] | None = None,
    collapse: bool = False,
    addresses: bool = False,
    reasons: bool = True,
    compress: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw ``trace`` as a ladder diagram and return the Axes.

    ``actors`` chooses and orders the lifelines (default: :func:`lifeline_order`,
    of ``peers`` only if given); ``types`` keeps only those message types;
    ``time_range`` is ``(start, end)`` in seconds from the trace's first event
    (the y axis counts from there too); ``collapse`` folds repeated HEART-BEATs
    and retries; ``addresses`` writes the rewrite at each NAT; ``reasons``
    labels drops; ``compress`` cuts idle stretches short (see
    :class:`punchlab.diagram_layout.TimeAxis`).
    The figure (when this function makes one) grows with the number of arrows.
    """
    every = datagram_arrows(trace)
    order = list(actors) if actors is not None else lifeline_order(trace, every, peers=peers)
    arrows = select_arrows(
        every, order, window=_window(trace, time_range), types=types, collapse=collapse
    )
    # Shown as "ms since the trace began", so a real run's epoch timestamps read well too.
    origin = trace[0].time if len(trace) else 0.0

    def ms(t: float) -> float:
        return (t - origin) * 1000.0

    axis = TimeAxis.fit(
        ((ms(a.start), ms(max(a.end, a.busy_until or a.end))) for a in arrows), compress=compress
    )
    if ax is None:
        ax = _new_axes(len(order), len(arrows), len(axis.breaks))
    lanes = {actor: index for index, actor in enumerate(order)}
    placer = _placer(ax)
    _style_axes(ax, order, axis, title)
    _draw_lifelines(ax, order)
    _draw_breaks(ax, axis, placer)
    options, notes = _Options(addresses, reasons), set[tuple[str, str]]()
    texts = []
    for arrow in arrows:
        geometry = arrow_geometry(arrow, lanes, lambda t: axis.to_display(ms(t)))
        texts += _draw_arrow(ax, arrow, geometry, options, notes)
        if arrow.busy_until is not None:
            _draw_burst(ax, arrow, geometry, axis.to_display(ms(arrow.busy_until)))
    # Marks first (they belong at one spot), then labels in time order, notes last.
    rank = {"unseen": 0, "reason": 1, "label": 2, "address": 3}
    for text, candidates in sorted(texts, key=lambda tc: rank.get(tc[0].get_gid() or "", 2)):
        placer.manage(text, candidates)
    _legend(ax, arrows, columns=2 if len(order) <= 3 else 3 if len(order) <= 4 else 4)
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


# -- the state machine --------------------------------------------------------------------


def state_diagram(
    ax: Axes | None = None,
    *,
    transitions: Mapping[tuple[PeerState, Trigger], PeerState] | None = None,
    highlight: PeerState | None = None,
    ladder: bool = False,
) -> Axes:
    """Draw the peer's state machine straight from the core's transition table.

    Without ``transitions``: the peer's life without the traversal ladder's
    rungs, or, with ``ladder``, only the punch and the rungs it climbs.
    """
    ladder_ts = ladder_transitions(ladder=ladder)
    if transitions is None:
        transitions = ladder_ts
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    layout = state_layout(
        transitions, LADDER_POSITIONS if ladder and transitions is ladder_ts else None
    )
    xs = [x for x, _ in layout.positions.values()]
    ys = [y for _, y in layout.positions.values()]
    if ax is None:
        size = (1.45 * (max(xs) - min(xs) + 1.4), 1.2 * (max(ys) - min(ys) + 1.4))
        _, ax = plt.subplots(figsize=size, layout="constrained")
    placer = _placer(ax)
    boxes = {}
    for state, (sx, sy) in layout.positions.items():
        marked = state is highlight
        style = {"boxstyle": "round,pad=0.45", "fc": "#FFE8A3" if marked else "#EEF3FB"}
        box = {**style, "ec": BLUE, "lw": 2.2 if marked else 1.0}
        boxes[state] = ax.text(sx, sy, state.value, ha="center", va="center", fontsize=FONT + 2,
                               zorder=3, bbox=box, gid=f"state:{state.value}")  # fmt: skip
        placer.manage(boxes[state], [(sx, sy)])  # first: states stay put, labels make way
    for edge in layout.edges:
        source, target = boxes[edge.source], boxes[edge.target]
        ax.add_patch(
            FancyArrowPatch(
                layout.positions[edge.source], layout.positions[edge.target],
                patchA=source.get_bbox_patch(), patchB=target.get_bbox_patch(),
                arrowstyle="-|>", mutation_scale=14, color=BLUE, lw=1.2, shrinkA=2, shrinkB=2,
                connectionstyle=f"arc3,rad={edge.bend}", zorder=2,
                gid=f"transition:{edge.source.value}->{edge.target.value}",
            )
        )  # fmt: skip
        x, y = edge.label_at
        text = ax.text(x, y, edge.label, fontsize=FONT, ha="center", va="center", color="#333333")
        placer.manage(text, [(x, y)])
    if ladder and transitions is ladder_ts:
        low = min(ys) - 0.45
        note = ax.text(min(xs) - 0.3, low, LADDER_NOTE, fontsize=FONT, color="#333")
        placer.manage(note, [(min(xs) - 0.3, low)])
        ys.append(low - 0.1)
    if layout.closed is not None:
        cx, cy = layout.positions[layout.closed]
        note = ax.text(cx, cy + 0.4, layout.close_note, fontsize=FONT, ha="center", color="#333")
        placer.manage(note, [(cx, cy + 0.4)])
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.8)
    ax.set_axis_off()
    return ax


# -- the success matrix -------------------------------------------------------------------


class Matrix(Protocol):
    """What :func:`matrix_diagram` needs (``punchlab.sim.MatrixResult`` fits)."""

    @property
    def kinds(self) -> tuple[str, ...]: ...
    def connected(self, a: str, b: str) -> bool: ...


class RouteMatrix(Protocol):
    """What :func:`route_matrix_diagram` needs (``punchlab.sim.MatrixResult`` fits)."""

    @property
    def kinds(self) -> tuple[str, ...]: ...
    def route(self, a: str, b: str) -> Any: ...


def matrix_diagram(
    matrix: Matrix,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    rows: str = "A's NAT",
    columns: str = "B's NAT",
) -> Axes:
    """Which pairs connect: a grid whose cells *say* yes or no.

    Blue for yes and hatched orange for no, a pair that colour-blind readers
    tell apart; the words carry the meaning on their own.
    """

    def cell(a: str, b: str) -> _Cell:
        ok = matrix.connected(a, b)
        return ("yes", "#A6D2F0", None, True) if ok else ("no", "#F3C26B", "///", False)

    return _grid(matrix.kinds, cell, ax, title=title, rows=rows, columns=columns)


#: A route's cell in :func:`route_matrix_diagram`: its words, fill and hatch, lightest
#: for the cheapest route (Okabe-Ito colours, told apart by the words and hatches too).
ROUTE_CELLS: dict[str | None, tuple[str, str, str | None]] = {
    "private": ("private", "#EEF6FC", None),
    "direct": ("direct", "#D6EAF8", None),
    "peer-reflexive": ("peer-\nreflexive", "#A6D2F0", None),
    "predicted": ("predicted", "#B8E0D2", ".."),
    "birthday": ("birthday", "#F7DC9B", ".."),
    "relayed": ("relayed", "#E8B4CF", "xx"),
    None: ("no", "#F3C26B", "///"),
}


def route_matrix_diagram(
    matrix: RouteMatrix,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    rows: str = "A's NAT",
    columns: str = "B's NAT",
) -> Axes:
    """How each pair connects (DESIGN.md section 7's routes): each cell names its route."""

    def cell(a: str, b: str) -> _Cell:
        route = matrix.route(a, b)
        text, colour, hatch = ROUTE_CELLS[None if route is None else str(route)]
        return text, colour, hatch, route is not None

    return _grid(matrix.kinds, cell, ax, title=title, rows=rows, columns=columns)


#: A grid cell: its words, fill colour, hatch, and whether the words are bold.
_Cell = tuple[str, str, str | None, bool]


def _grid(
    kinds: Sequence[str],
    cell: Callable[[str, str], _Cell],
    ax: Axes | None,
    *,
    title: str | None,
    rows: str,
    columns: str,
) -> Axes:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
    box = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}
    for i, a in enumerate(kinds):
        for j, b in enumerate(kinds):
            text, colour, hatch, bold = cell(a, b)
            patch = Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colour, edgecolor="white")
            patch.set(lw=2, hatch=hatch, gid=f"cell:{a}:{b}")
            ax.add_patch(patch)
            size = FONT + 2 if len(text) < 5 else FONT
            weight = "bold" if bold else "normal"
            label = ax.text(j, i, text, ha="center", va="center", fontsize=size, bbox=box)
            label.set(color=INK, fontweight=weight, gid=f"cell-text:{a}:{b}")
    ax.set_xlim(-0.5, len(kinds) - 0.5)
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(len(kinds)), kinds, rotation=35, ha="right", fontsize=FONT + 1)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=FONT + 1)
    ax.set_xlabel(columns, fontsize=FONT + 1)
    ax.set_ylabel(rows, fontsize=FONT + 1)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=FONT + 3)
    return ax
