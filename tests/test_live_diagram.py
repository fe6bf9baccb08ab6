"""The live diagram draws the peers it follows, over a recent window that scrolls with time."""

from __future__ import annotations

import asyncio

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes

import punchlab.diagram
from punchlab.sim import Network
from punchlab.sim.session import AsyncSimPeer, SimSession
from punchlab.widgets import LiveDiagram


@pytest.fixture(autouse=True)
def close_figures() -> None:
    yield
    plt.close("all")


async def four_peers() -> tuple[Network, dict[str, AsyncSimPeer]]:
    """Notebook 5 after Run All: two pairs introduced on one simulated network."""
    net = Network(seed=0)
    net.add_server()
    session = SimSession(net)
    peers = {
        name: session.peer(net.add_peer(name, behind=net.add_nat(f"NAT {name[0]}", kind)))
        for name, kind in (
            ("Alice", "port-restricted-cone"),
            ("Bob", "port-restricted-cone"),
            ("Carol", "full-cone"),
            ("Dave", "restricted-cone"),
        )
    }
    for initiator, responder in (("Alice", "Bob"), ("Carol", "Dave")):
        await asyncio.gather(peers[initiator].register(), peers[responder].register())
        responder_id = peers[responder].id
        assert responder_id is not None
        await peers[initiator].connect(responder_id, timeout=5)
    return net, peers


def lifelines(ax: Axes) -> list[str]:
    return [label.get_text() for label in ax.get_xticklabels()]


async def drawn_by(diagram: LiveDiagram, monkeypatch: pytest.MonkeyPatch) -> Axes:
    """Refresh, and return the Axes the widget drew its image from."""
    drawn: list[Axes] = []
    original = punchlab.diagram.sequence_diagram

    def spy(*args: object, **kwargs: object) -> Axes:
        ax = original(*args, **kwargs)  # type: ignore[arg-type]
        drawn.append(ax)
        return ax

    monkeypatch.setattr(punchlab.diagram, "sequence_diagram", spy)
    diagram.refresh()
    assert bytes(diagram.image.value).startswith(b"\x89PNG")
    [ax] = drawn
    return ax


async def test_the_live_diagram_draws_only_the_peers_it_follows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net, peers = await four_peers()
    diagram = LiveDiagram(net.trace, collapse=True).follow(peers["Alice"], peers["Bob"])
    ax = await drawn_by(diagram, monkeypatch)
    assert lifelines(ax) == ["Alice", "NAT A", "server", "NAT B", "Bob"]


async def test_the_live_diagram_scrolls_as_time_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    net, peers = await four_peers()
    diagram = LiveDiagram(net.trace, window=10.0).follow(peers["Alice"], peers["Bob"])
    first = diagram.diagram_options()["time_range"]
    net.run_for(60.0)  # heart-beats every 3 s
    start, end = diagram.diagram_options()["time_range"]
    assert end - start == pytest.approx(10.0)
    assert start > first[1], "the window moved past everything it showed before"
    ax = await drawn_by(diagram, monkeypatch)
    labels = {t.get_text().split(" x")[0] for t in ax.texts if t.get_gid() == "label"}
    assert labels == {"HEART-BEAT"}, "only the recent beats, not the punch of a minute ago"


async def test_a_window_of_none_shows_everything_and_explicit_options_win() -> None:
    net, peers = await four_peers()
    everything = LiveDiagram(net.trace, window=None).follow(peers["Alice"])
    assert "time_range" not in everything.diagram_options()
    chosen = LiveDiagram(net.trace, actors=["Alice", "server"]).follow(peers["Alice"])
    options = chosen.diagram_options()
    assert options["actors"] == ["Alice", "server"] and "peers" not in options
