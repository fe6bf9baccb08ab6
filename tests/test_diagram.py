"""The diagrams show what the trace says: counted arrows, crosses, labels, lifelines, images."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from punchlab.aio import Peer, RendezvousServer
from punchlab.diagram import (
    datagram_arrows,
    lifeline_order,
    matrix_diagram,
    sequence_diagram,
    state_diagram,
)
from punchlab.diagram_arrows import match_deliveries
from punchlab.peer import PeerConfig, PeerState, Trigger
from punchlab.peer_table import LADDER_NOTE, LADDER_STATES
from punchlab.sim import Network, punch
from punchlab.trace import EventKind, Trace, TraceEvent

DATA = Path(__file__).parent / "data"
#: Recorded with ``punchlab netlab punch --nat-b symmetric``: real kernel NATs, no NAT traces.
REAL_NATS_FAIL = DATA / "netlab-port-restricted-vs-symmetric.jsonl"
#: ``punchlab netlab punch``: a 3 ms punch 435 ms after B registered.
REAL_NATS_PUNCH = DATA / "netlab-port-restricted-pair.jsonl"
#: ``punchlab serve`` and two ``punchlab peer`` processes on loopback, each writing
#: its trace; B exits after one round, A keeps sending to it.
THREE_PROCESSES = DATA / "three-processes-peer-leaves.jsonl"


@pytest.fixture(autouse=True)
def close_figures() -> None:
    yield
    plt.close("all")


def gids(ax: Axes, prefix: str) -> list[str]:
    found = [a.get_gid() for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]
    return [g for g in found if g is not None]


def labels(ax: Axes) -> set[str]:
    return {t.get_text() for t in ax.texts if t.get_gid() == "label"}


def lifelines(ax: Axes) -> list[str]:
    return [label.get_text() for label in ax.get_xticklabels()]


def test_one_arrow_per_delivered_datagram_and_a_cross_per_drop() -> None:
    trace = punch("port-restricted-cone", "symmetric").trace
    ax = sequence_diagram(trace)
    assert len(gids(ax, "datagram:delivered")) == trace.count(EventKind.DELIVERED)
    assert len(gids(ax, "drop")) == trace.count(EventKind.DROPPED) > 0
    assert len(gids(ax, "reason")) == trace.count(EventKind.DROPPED)


def test_labels_name_every_type_that_crossed() -> None:
    trace = punch("full-cone", "restricted-cone", texts=1).trace
    ax = sequence_diagram(trace)
    expected = {e.msg_type for e in trace if e.kind is EventKind.DELIVERED}
    assert labels(ax) == expected
    assert {"REGISTRATION", "INITIATE_CHAT", "HELLO", "SUCCESS", "TEXT", "HTTP"} <= expected


def test_default_lifelines_are_the_textbook_order() -> None:
    trace = punch("full-cone", "symmetric").trace
    assert lifeline_order(trace) == ["A", "NAT A", "server", "NAT B", "B"]
    assert lifelines(sequence_diagram(trace)) == ["A", "NAT A", "server", "NAT B", "B"]


def test_lifelines_follow_the_requested_order_and_selection() -> None:
    trace = punch("none", "full-cone").trace
    ax = sequence_diagram(trace, actors=["B", "server", "A"])
    assert lifelines(ax) == ["B", "server", "A"]
    assert gids(ax, "lifeline:") == ["lifeline:B", "lifeline:server", "lifeline:A"]


def test_type_filter_and_time_window() -> None:
    trace = punch("full-cone", "full-cone").trace
    hellos = sequence_diagram(trace, types=["HELLO"])
    assert labels(hellos) == {"HELLO"}
    assert len(gids(hellos, "datagram:")) == trace.count(EventKind.DELIVERED, "HELLO")
    plt.close("all")
    first_registration = [e for e in trace if e.kind is EventKind.SENT][:2]
    window = (0.0, first_registration[-1].time)
    early = sequence_diagram(trace, time_range=window)
    assert labels(early) == {"REGISTRATION"}
    assert len(gids(early, "datagram:delivered")) == 2


def test_collapse_folds_repeated_heartbeats_and_counts_them() -> None:
    result = punch("full-cone", "full-cone")
    result.network.run_for(20.0)  # heart-beats every 3 s
    full = sequence_diagram(result.trace)
    folded = sequence_diagram(result.trace, collapse=True)
    assert len(gids(folded, "datagram:")) < len(gids(full, "datagram:"))
    assert any(label.startswith("HEART-BEAT x") for label in labels(folded))


def test_figure_grows_with_the_number_of_arrows() -> None:
    short = sequence_diagram(punch("none", "none", texts=1).trace).get_figure()
    result = punch("none", "none", texts=1)
    result.network.run_for(30.0)
    long = sequence_diagram(result.trace).get_figure()
    assert isinstance(short, Figure) and isinstance(long, Figure)
    assert long.get_figheight() > short.get_figheight()


def test_a_loss_on_a_link_stops_between_lifelines() -> None:
    trace = punch("full-cone", "full-cone", seed=1, loss=0.3).trace
    ax = sequence_diagram(trace, types=["HELLO", "SUCCESS"])
    crosses = [a for a in ax.get_children() if a.get_gid() == "drop"]
    assert crosses
    for cross in crosses:
        x = cross.get_xdata()[0]  # type: ignore[attr-defined]
        assert x != int(x), "a cross on a lifeline would say that host dropped it"


def test_duplicated_datagrams_draw_one_arrow_per_copy() -> None:
    trace = punch("full-cone", "full-cone", seed=4, duplicate=0.5).trace
    arrows = datagram_arrows(trace)
    delivered = [a for a in arrows if a.outcome is EventKind.DELIVERED]
    assert len(delivered) == trace.count(EventKind.DELIVERED)
    assert len({e.packet for e in trace if e.kind is EventKind.DELIVERED}) < len(delivered)


async def test_a_real_run_and_a_merge_of_separate_traces_draw_the_same() -> None:
    traces = {name: Trace() for name in ("server", "A", "B")}
    async with (
        RendezvousServer("127.0.0.1", 0, 0, trace=traces["server"]) as server,
        Peer(server.url, host="127.0.0.1", name="A", trace=traces["A"]) as a,
        Peer(server.url, host="127.0.0.1", name="B", trace=traces["B"]) as b,
    ):
        await a.register()
        b_id = await b.register()
        await asyncio.gather(a.connect(b_id, timeout=5), b.wait_connected(timeout=5))
        await a.send_text("over real sockets")
        assert await b.receive_text(timeout=2) == "over real sockets"
    merged = Trace.merge(*(Trace.from_jsonl(t.to_jsonl()) for t in traces.values()))
    ax = sequence_diagram(merged)
    assert lifelines(ax) == ["A", "server", "B"]
    assert len(gids(ax, "datagram:delivered")) == merged.count(EventKind.DELIVERED)
    assert "TEXT" in labels(ax)


def test_state_diagram_draws_the_transition_table() -> None:
    ax = state_diagram(highlight=PeerState.CONNECTED)
    drawn = sorted(f"state:{s.value}" for s in PeerState if s not in LADDER_STATES)
    assert sorted(gids(ax, "state:")) == drawn
    # Written out, not read from the table the diagram draws: losing a
    # transition (DISCONNECTED -> punching, say) must show here.
    expected = {
        "transition:idle->registering",
        "transition:registering->registered",
        "transition:registering->failed",
        "transition:registered->punching",
        "transition:punching->connected",
        "transition:punching->failed",
        "transition:connected->disconnected",
        "transition:failed->punching",
        "transition:disconnected->punching",
    }
    assert set(gids(ax, "transition:")) == expected


def test_state_diagram_follows_a_changed_table() -> None:
    table = {
        (PeerState.IDLE, Trigger.REGISTER): PeerState.REGISTERING,
        (PeerState.REGISTERING, Trigger.REGISTRATION_ANSWERED): PeerState.REGISTERED,
    }
    ax = state_diagram(transitions=table)
    assert set(gids(ax, "transition:")) == {
        "transition:idle->registering",
        "transition:registering->registered",
    }


# -- no text covers another --------------------------------------------------------------------


def text_boxes(figure: Figure) -> list[tuple[str, object]]:
    """Every visible text of the figure, as drawn: labels, notes, ticks, legend, titles."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    texts: list[Text] = []
    for ax in figure.axes:
        texts += [*ax.texts, *ax.xaxis.get_majorticklabels(), *ax.yaxis.get_majorticklabels()]
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None:
            texts += legend.get_texts()
    return [
        (t.get_text(), t.get_window_extent(renderer))
        for t in texts
        if t.get_visible() and t.get_text().strip()
    ]


def assert_no_text_overlaps(ax: Axes) -> None:
    figure = ax.get_figure(root=True)
    assert isinstance(figure, Figure)
    boxes = text_boxes(figure)
    assert len(boxes) > 5
    clashes = [
        (ta, tb)
        for (ta, a), (tb, b) in itertools.combinations(boxes, 2)
        if min(a.x1, b.x1) - max(a.x0, b.x0) > 0 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0
    ]
    assert not clashes, f"texts drawn over each other: {clashes[:5]}"


def mallory_knocks() -> Trace:
    """Notebook 1: Alice registers through her NAT, a stranger's HELLO is filtered."""
    from punchlab.messages import Message, MessageType, encode

    net = Network(seed=0)
    net.add_server()
    nat = net.add_nat("NAT A", "port-restricted-cone")
    alice = net.add_peer("Alice", behind=nat)
    alice.register()
    net.run_for(1.0)
    mallory = net.add_peer("Mallory")
    hello = encode(Message(MessageType.HELLO))
    net.send("Mallory", mallory.address, (nat.outside_ip, 5000), hello)
    net.run_for(1.0)
    return net.trace


SIMULATED = {
    "punch with rewrites": lambda: sequence_diagram(
        punch("port-restricted-cone", "port-restricted-cone", texts=1).trace,
        collapse=True,
        addresses=True,
    ),
    "failed punch": lambda: sequence_diagram(
        punch("port-restricted-cone", "symmetric").trace, collapse=True
    ),
    "lossy punch": lambda: sequence_diagram(
        punch("full-cone", "restricted-cone", seed=1, loss=0.3, texts=1).trace
    ),
    "registration notes": lambda: sequence_diagram(mallory_knocks(), addresses=True),
    "registrations only": lambda: sequence_diagram(
        punch("none", "symmetric").trace, types=["REGISTRATION"], addresses=True
    ),
    "state machine": lambda: state_diagram(highlight=PeerState.PUNCHING),
}


@pytest.mark.parametrize("name", SIMULATED)
def test_no_text_of_a_simulated_diagram_covers_another(name: str) -> None:
    assert_no_text_overlaps(SIMULATED[name]())


@pytest.mark.parametrize("path", [REAL_NATS_PUNCH, REAL_NATS_FAIL, THREE_PROCESSES])
@pytest.mark.parametrize("collapse", [False, True])
def test_no_text_of_a_merged_multiprocess_trace_covers_another(path: Path, collapse: bool) -> None:
    assert_no_text_overlaps(sequence_diagram(Trace.load(path), collapse=collapse))


async def loopback_traces(*, shared: bool) -> list[Trace]:
    """A real punch and a line each way on 127.0.0.1: one trace, or one per process-to-be."""
    one = Trace()
    traces = {name: one if shared else Trace() for name in ("server", "A", "B")}
    async with (
        RendezvousServer("127.0.0.1", 0, 0, trace=traces["server"]) as server,
        Peer(server.url, host="127.0.0.1", name="A", trace=traces["A"]) as a,
        Peer(server.url, host="127.0.0.1", name="B", trace=traces["B"]) as b,
    ):
        await a.register(timeout=5)
        b_id = await b.register(timeout=5)
        await asyncio.gather(a.connect(b_id, timeout=5), b.wait_connected(timeout=5))
        await a.send_text("over real sockets")
        assert await b.receive_text(timeout=5) == "over real sockets"
        await b.send_text("and back")
        assert await a.receive_text(timeout=5) == "and back"
    return [one] if shared else list(traces.values())


async def test_no_text_of_a_loopback_run_covers_another() -> None:
    [trace] = await loopback_traces(shared=True)
    assert_no_text_overlaps(sequence_diagram(trace))
    plt.close("all")
    assert_no_text_overlaps(sequence_diagram(trace, collapse=True))


async def test_no_text_of_separately_saved_and_merged_traces_covers_another() -> None:
    traces = await loopback_traces(shared=False)
    merged = Trace.merge(*(Trace.from_jsonl(t.to_jsonl()) for t in traces))
    ax = sequence_diagram(merged)
    assert len(gids(ax, "datagram:delivered")) == merged.count(EventKind.DELIVERED)
    assert_no_text_overlaps(ax)


def test_every_text_is_at_least_8_points() -> None:
    """Legible at notebook width: 8 pt at 100 dpi is the smallest a student should read."""
    for make in SIMULATED.values():
        ax = make()
        figure = ax.get_figure(root=True)
        assert isinstance(figure, Figure)
        sizes = [
            t.get_fontsize() for t, _ in [(t, 0) for t in figure.findobj(Text)] if t.get_text()
        ]
        assert min(sizes) >= 8
        plt.close("all")


def test_figures_fit_a_notebook_width() -> None:
    trace = punch("full-cone", "symmetric").trace
    figure = sequence_diagram(trace).get_figure()
    assert isinstance(figure, Figure)
    assert figure.get_figwidth() <= 10


# -- idle time is cut short ----------------------------------------------------------------------


def shown_share(ax: Axes, first: float, last: float) -> float:
    """The share of the axes' height between two times (ms from the trace's start)."""
    bottom, top = ax.get_ylim()
    ticks = ax.yaxis.get_major_locator()
    axis = ticks.time_axis  # type: ignore[attr-defined]
    return (axis.to_display(last) - axis.to_display(first)) / (bottom - top)


def test_a_quick_real_punch_after_a_long_wait_fills_the_figure() -> None:
    trace = Trace.load(REAL_NATS_PUNCH)
    origin = trace[0].time
    punching = [e.time for e in trace if e.msg_type in ("HELLO", "SUCCESS", "TEXT")]
    first, last = ((t - origin) * 1000 for t in (min(punching), max(punching)))
    assert first > 100 * (last - first), "the recording is a short punch after a long wait"
    ax = sequence_diagram(trace)
    assert shown_share(ax, first, last) > 0.4
    assert gids(ax, "break") and any("ms idle" in t.get_text() for t in ax.texts)


def test_without_compression_the_time_axis_is_linear() -> None:
    trace = Trace.load(REAL_NATS_PUNCH)
    ax = sequence_diagram(trace, compress=False)
    assert not gids(ax, "break")


# -- sends nobody received -----------------------------------------------------------------------


def test_a_failed_real_punch_shows_its_hellos_with_a_question_mark() -> None:
    trace = Trace.load(REAL_NATS_FAIL)
    unseen = [a for a in datagram_arrows(trace) if a.outcome is EventKind.SENT]
    hellos = [e for e in trace if e.kind is EventKind.SENT and e.msg_type == "HELLO"]
    assert len(unseen) == len(hellos) > 10
    assert {(a.sender, a.toward) for a in unseen} == {("A", "B"), ("B", "A")}
    ax = sequence_diagram(trace)
    assert len(gids(ax, "unseen")) == len(hellos)
    assert len(gids(ax, "datagram:sent")) == len(hellos)


def test_an_unseen_send_is_drawn_only_when_the_receivers_trace_is_in_the_merge() -> None:
    without_b = Trace([e for e in Trace.load(REAL_NATS_FAIL) if e.actor != "B"])
    assert not [a for a in datagram_arrows(without_b) if a.toward == "B"]


def test_a_peer_that_left_leaves_question_marks_and_heartbeats_still_reach_the_server() -> None:
    """Three processes, peers bound to 0.0.0.0: a beat to the gone peer is not the server's."""
    trace = Trace.load(THREE_PROCESSES)
    arrows = datagram_arrows(trace)
    to_server = [a for a in arrows if a.msg_type == "HEART-BEAT" and a.points[-1].actor == "server"]
    assert len(to_server) == trace.count(EventKind.DELIVERED, "HEART-BEAT")
    for arrow in to_server:
        assert arrow.end - arrow.start < 0.005, "a beat crosses loopback in well under 5 ms"
    unseen = {(a.msg_type, a.toward) for a in arrows if a.outcome is EventKind.SENT}
    assert ("HEART-BEAT", "B") in unseen and ("TEXT", "B") in unseen


# -- matching deliveries to sends in real traces ------------------------------------------------


def event(time: float, kind: EventKind, actor: str, src: str, dst: str, msg: str) -> TraceEvent:
    return TraceEvent(time, kind, actor, src, dst, msg, "...")


def test_an_ambiguous_delivery_is_credited_to_the_earliest_unmatched_send() -> None:
    """Two identical sends, one delivery: the earliest send at or before it (FIFO)."""
    a, b = "10.0.0.1:5000", "10.0.0.2:5000"
    events = [
        event(1.000, EventKind.SENT, "A", a, b, "HELLO"),
        event(1.020, EventKind.SENT, "A", a, b, "HELLO"),
        event(1.021, EventKind.DELIVERED, "B", a, b, "HELLO"),
        event(1.040, EventKind.SENT, "A", a, b, "HELLO"),  # after the delivery: not a candidate
    ]
    assert match_deliveries(events) == {2: 0}
    [delivered, *unseen] = datagram_arrows(Trace(events))
    assert (delivered.start, delivered.end) == (1.000, 1.021)
    assert [u.outcome for u in unseen] == [EventKind.SENT, EventKind.SENT]


def test_a_send_stamped_after_the_delivery_is_never_its_source() -> None:
    """No arrow runs up the time axis (or flat, pretending zero latency)."""
    a, b = "10.0.0.1:5000", "10.0.0.2:5000"
    events = [
        event(2.0000, EventKind.DELIVERED, "B", a, b, "TEXT"),
        event(2.0005, EventKind.SENT, "A", a, b, "TEXT"),
    ]
    assert match_deliveries(events) == {}
    arrows = datagram_arrows(Trace(events))
    assert all(a.outcome is not EventKind.DELIVERED for a in arrows)
    assert all(p.time >= arrow.start for arrow in arrows for p in arrow.points)


def test_matching_prefers_the_send_whose_addresses_agree() -> None:
    """On loopback the server tells A's registration from B's by the address it came from."""
    server = "127.0.0.1:8089"
    events = [
        event(0.000, EventKind.SENT, "A", "0.0.0.0:4001", server, "REGISTRATION"),
        event(0.001, EventKind.SENT, "B", "0.0.0.0:4002", server, "REGISTRATION"),
        event(0.002, EventKind.DELIVERED, "server", "127.0.0.1:4002", server, "REGISTRATION"),
        event(0.003, EventKind.DELIVERED, "server", "127.0.0.1:4001", server, "REGISTRATION"),
    ]
    assert match_deliveries(events) == {2: 1, 3: 0}


# -- lifelines for any number of pairs ------------------------------------------------------------


def two_pairs() -> Trace:
    """Notebook 5 after Run All: Alice-Bob and Carol-Dave introduced, each behind a NAT."""
    net = Network(seed=0)
    net.add_server()
    peers = {
        name: net.add_peer(name, behind=net.add_nat(f"NAT {name[0]}", "port-restricted-cone"))
        for name in ("Alice", "Bob", "Carol", "Dave")
    }
    for peer in peers.values():
        peer.register()
    net.run_for(1.0)
    for initiator, responder in (("Alice", "Bob"), ("Carol", "Dave")):
        responder_id = peers[responder].id
        assert responder_id is not None
        peers[initiator].connect(responder_id)
        net.run_for(1.0)
    return net.trace


def in_order(order: list[str], *names: str) -> bool:
    return [order.index(n) for n in names] == sorted(order.index(n) for n in names)


def test_every_introduced_pair_reads_a_nat_a_server_nat_b_b() -> None:
    order = lifeline_order(two_pairs())
    assert len(order) == 9
    assert in_order(order, "Alice", "NAT A", "server", "NAT B", "Bob")
    assert in_order(order, "Carol", "NAT C", "server", "NAT D", "Dave")


def test_peers_chooses_whom_to_draw() -> None:
    trace = two_pairs()
    assert lifeline_order(trace, peers=["Alice", "Bob"]) == [
        "Alice",
        "NAT A",
        "server",
        "NAT B",
        "Bob",
    ]
    ax = sequence_diagram(trace, peers=["Carol", "Dave"])
    assert lifelines(ax) == ["Carol", "NAT C", "server", "NAT D", "Dave"]


def test_the_initiator_is_on_the_left_whatever_its_name() -> None:
    net = Network(seed=0)
    net.add_server()
    zoe = net.add_peer("Zoe", behind=net.add_nat("NAT Z", "full-cone"))
    adam = net.add_peer("Adam", behind=net.add_nat("NAT Y", "full-cone"))
    zoe.register()
    adam.register()
    net.run_for(1.0)
    assert adam.id is not None
    zoe.connect(adam.id)
    net.run_for(1.0)
    assert lifeline_order(net.trace) == ["Zoe", "NAT Z", "server", "NAT Y", "Adam"]


def test_real_traces_order_initiator_server_responder() -> None:
    for path in (REAL_NATS_PUNCH, REAL_NATS_FAIL, THREE_PROCESSES):
        assert lifeline_order(Trace.load(path)) == ["A", "server", "B"]


# -- image regression: baselines in tests/baseline, compared with pytest-mpl ---------------------

# The style students see (pytest-mpl would use "classic"), small enough to keep in git.
IMAGE = {"tolerance": 2, "style": "default", "savefig_kwargs": {"dpi": 60}}


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_successful_punch_through_two_port_restricted_nats() -> Figure:
    trace = punch("port-restricted-cone", "port-restricted-cone", texts=1).trace
    ax = sequence_diagram(trace, collapse=True, addresses=True)
    labels = {text.get_text() for text in ax.texts}
    assert {"HELLO", "SUCCESS", "TEXT"} <= {label.split(" ")[0] for label in labels}
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_failed_punch_with_a_symmetric_nat() -> Figure:
    trace = punch("port-restricted-cone", "symmetric", config=PeerConfig(ladder=False)).trace
    ax = sequence_diagram(trace, time_range=(0.0, 1.0), collapse=True)
    assert any("filtered by NAT" in text.get_text() for text in ax.texts)  # the drop says why
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_lossy_punch() -> Figure:
    trace = punch("full-cone", "restricted-cone", seed=1, loss=0.3, texts=1).trace
    figure = sequence_diagram(trace, time_range=(0.0, 0.6)).get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_state_machine() -> Figure:
    ax = state_diagram(highlight=PeerState.PUNCHING)
    drawn = {text.get_text() for text in ax.texts}
    assert drawn >= {state.value for state in PeerState if state not in LADDER_STATES}
    assert not drawn & {state.value for state in LADDER_STATES}  # the ladder has its own
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    return figure


def test_the_ladder_drawing_shows_the_rungs_and_says_what_it_leaves_out() -> None:
    ax = state_diagram(ladder=True)
    drawn = {text.get_text() for text in ax.texts}
    assert drawn >= {state.value for state in LADDER_STATES} | {PeerState.PUNCHING.value}
    assert LADDER_NOTE in drawn
    arrows = {patch.get_gid() for patch in ax.patches}
    assert "transition:punching->birthday probing" in arrows
    assert "transition:birthday probing->relaying" in arrows


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_real_nats_failed_punch_shows_its_hellos() -> Figure:
    figure = sequence_diagram(Trace.load(REAL_NATS_FAIL), collapse=True).get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_real_nats_punch_after_an_idle_wait() -> Figure:
    figure = sequence_diagram(Trace.load(REAL_NATS_PUNCH)).get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_two_introduced_pairs() -> Figure:
    figure = sequence_diagram(two_pairs(), collapse=True).get_figure()
    assert isinstance(figure, Figure)
    return figure


class DesignTable:
    """DESIGN.md's matrix for the original algorithm: the whole symmetric row and column fail."""

    kinds = ("none", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric")

    def connected(self, a: str, b: str) -> bool:
        return "symmetric" not in (a, b)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_success_matrix() -> Figure:
    figure = matrix_diagram(DesignTable(), title="original algorithm").get_figure()
    assert isinstance(figure, Figure)
    return figure


def test_two_drops_at_one_spot_for_one_reason_get_one_label() -> None:
    from punchlab.scenes import campus

    room = campus("port-restricted-cone", hairpinning=False, private=False)
    first = next(iter(room.net.trace.filter(types=["HELLO"], kinds=["sent"]))).time
    ax = sequence_diagram(
        room.net.trace,
        actors=["Alice", "campus NAT", "Bob"],
        types=["HELLO"],
        time_range=(first, first + 0.0021),
    )
    crosses = [a for a in ax.get_children() if a.get_gid() == "drop"]
    reasons = [t.get_text() for t in ax.texts if t.get_gid() == "reason"]
    assert len(crosses) == 2 and reasons == ["no hairpinning"]
