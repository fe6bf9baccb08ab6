"""A chat's timeline against a NAT's timer: chapter 11's figure.

One row per run (heart-beats on, heart-beats off, ...) on one shared time
axis. Each row shades the spans in which the far NAT lets the sender in (its
permission for the sender, refreshed by every datagram the receiver sends
out), marks the receiver's heart-beats (to the sender and to the server) on
their own lanes, and marks each chat line delivered or dropped, with words,
so the figure reads without colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from punchlab.diagram import DROP_COLOUR, FONT, GREEN, GREY, INK, PURPLE, SKY
from punchlab.sim.keepalive import ChatLine, ChatTimeline

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["chat_timeline_diagram"]

#: Lanes of a row, bottom to top.
LINES, PEER_BEATS, SERVER_BEATS = 0.0, 1.0, 2.0
#: About how much of the time axis a line's words take (at the default width).
LABEL_SPAN = 0.2


def chat_timeline_diagram(
    rows: Sequence[tuple[str, ChatTimeline]],
    *,
    sender: str = "A",
    names: dict[str, str] | None = None,
    width: float = 9.0,
) -> Figure:
    """One row per ``(title, timeline)``: ``sender``'s lines, the receiver's beats, the hole.

    ``names`` maps the sides ("A", "B") to the names the text uses. Returns
    the figure (its axes share the time axis).
    """
    import matplotlib.pyplot as plt

    names = names or {"A": "Alice", "B": "Bob"}
    receiver = "B" if sender == "A" else "A"
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(width, 1.9 * len(rows) + 0.9), sharex=True, layout="constrained"
    )
    axes = list(axes) if len(rows) > 1 else [axes]
    for ax, (title, timeline) in zip(axes, rows, strict=True):
        _row(ax, title, timeline, sender, receiver, names)
    axes[-1].set_xlabel("seconds since both peers connected", fontsize=FONT + 1)
    legend: dict[str, Artist] = {}
    for ax in axes:  # one entry per meaning, from whichever row shows it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="outside lower center",
        ncol=3,
        fontsize=FONT,
        frameon=False,
    )
    return fig


def _row(
    ax: Axes,
    title: str,
    timeline: ChatTimeline,
    sender: str,
    receiver: str,
    names: dict[str, str],
) -> None:
    you, them = names[sender], names[receiver]
    nat = f"NAT {receiver}"
    for index, (start, end) in enumerate(timeline.open_spans[receiver]):
        label = f"{nat} lets {you} in" if index == 0 else None
        ax.axvspan(start, min(end, timeline.duration), color=SKY, alpha=0.3, lw=0, label=label)
    peer = timeline.peer_beats[receiver]
    server = timeline.server_beats[receiver]
    ax.plot(peer, [PEER_BEATS] * len(peer), "|", ms=9, mew=1.5, color=GREY,
            label=f"{them}'s heart-beat to {you}")  # fmt: skip
    ax.plot(server, [SERVER_BEATS] * len(server), "|", ms=9, mew=1.5, color=PURPLE,
            label=f"{them}'s heart-beat to the server")  # fmt: skip
    if not peer:
        ax.text(1.0, PEER_BEATS, "none", va="center", fontsize=FONT, color=INK)
    _closings(ax, timeline, receiver, nat, you)
    for line in timeline.lines:
        if line.sender == sender:
            _mark(ax, line, nat, timeline.duration)
    ax.set_xlim(0, timeline.duration)
    ax.set_ylim(-0.7, 2.6)
    ax.set_yticks(
        [LINES, PEER_BEATS, SERVER_BEATS], [f"{you}'s lines", f"{them} → {you}", f"{them} → server"]
    )
    ax.tick_params(labelsize=FONT)
    ax.set_title(title, loc="left", fontsize=FONT + 1)


def _closings(ax: Axes, timeline: ChatTimeline, receiver: str, nat: str, you: str) -> None:
    """Say in words where the hole closes inside the run (on the empty beat lane)."""
    for _, end in timeline.open_spans[receiver]:
        if end < timeline.duration:
            ax.axvline(end, color=INK, lw=0.8, ls=":")
            after = f"{timeline.nat_timeout:g} s after its last datagram to {you}"
            words = f"{nat} forgets {you}: {after}"
            ax.text(end + 0.8, PEER_BEATS - 0.45, words, fontsize=FONT, color=INK, va="center")


def _mark(ax: Axes, line: ChatLine, nat: str, duration: float) -> None:
    """A line as a mark and words (delivered, or dropped and why), left of it at the very end."""
    if line.delivered:
        ax.plot([line.at], [LINES], "o", ms=7, color=GREEN, label="line delivered")
        words = f"{line.text!r}\ndelivered"
    else:
        ax.plot([line.at], [LINES], "X", ms=8, color=DROP_COLOUR, label="line dropped")
        reason = line.why.removesuffix(f" at {nat}")
        words = f"{line.text!r} dropped\nat {nat}: {reason}"
    late = line.at + LABEL_SPAN * duration > duration  # the words would run off the axes
    x, align = (line.at - 1.2, "right") if late else (line.at + 1.2, "left")
    ax.text(x, LINES, words, va="center", ha=align, fontsize=FONT, color=INK)
