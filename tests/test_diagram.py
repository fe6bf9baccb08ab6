"""The diagrams show what the trace says: counted arrows, crosses, labels, lifelines, images."""

from __future__ import annotations

import asyncio

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from punchlab.aio import Peer, RendezvousServer
from punchlab.diagram import datagram_arrows, lifeline_order, sequence_diagram, state_diagram
from punchlab.peer import TRANSITIONS, PeerState, Trigger
from punchlab.sim import punch
from punchlab.trace import EventKind, Trace


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
    assert sorted(gids(ax, "state:")) == sorted(f"state:{s.value}" for s in PeerState)
    expected = {
        f"transition:{source.value}->{target.value}"
        for (source, trigger), target in TRANSITIONS.items()
        if trigger is not Trigger.CLOSE
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


# -- image regression: baselines in tests/baseline, compared with pytest-mpl ---------------------

IMAGE = {"tolerance": 2, "savefig_kwargs": {"dpi": 60}}


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_successful_punch_through_two_port_restricted_nats() -> Figure:
    trace = punch("port-restricted-cone", "port-restricted-cone", texts=1).trace
    figure = sequence_diagram(trace, collapse=True, addresses=True).get_figure()
    assert isinstance(figure, Figure)
    return figure


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_failed_punch_with_a_symmetric_nat() -> Figure:
    trace = punch("port-restricted-cone", "symmetric").trace
    figure = sequence_diagram(trace, time_range=(0.0, 1.0), collapse=True).get_figure()
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
    figure = state_diagram(highlight=PeerState.PUNCHING).get_figure()
    assert isinstance(figure, Figure)
    return figure
