"""Heart-beats against per-flow NAT timeouts (issue 17 part 1, chapter 11), on the simulator."""

from __future__ import annotations

import pytest

from punchlab.peer import PeerConfig
from punchlab.sim.keepalive import timed_chat

pytestmark = pytest.mark.timeout(60)

#: One line early, one after longer silence than the NAT's 30 s timeout.
SILENCE = [(5.0, "A", "early"), (50.0, "A", "after the silence")]
#: Peer heart-beats off, server heart-beats on, a liveness timeout that does not interfere.
SERVER_BEATS_ONLY = PeerConfig(peer_heartbeat=False, peer_timeout=600.0)


def test_server_beats_keep_the_mapping_but_not_a_silent_partners_permission() -> None:
    timeline = timed_chat(SILENCE, duration=60.0, config=SERVER_BEATS_ONLY)
    early, late = timeline.lines
    assert early.delivered
    assert not late.delivered and late.why == "permission expired at NAT B"
    assert timeline.peer_beats == {"A": (), "B": ()}
    assert len(timeline.server_beats["B"]) >= 15  # every 3 s: B's mapping never expired
    assert "mapping expired" not in {e.reason for e in timeline.trace}
    net = timeline.network
    (mapping,) = net.nat("NAT B").mappings(net.now)  # alive, refreshed by the server beats
    assert mapping.expires - net.now > 25.0
    # NAT B's permission for A was last refreshed by B's last datagram to A
    # (while punching, just before both were connected) and closed a timeout later.
    ((_, closed),) = timeline.open_spans["B"]
    assert 30.0 <= closed < 30.1


@pytest.mark.parametrize("interval", [3.0, 20.0, 29.0])
def test_peer_beats_more_often_than_the_timeout_keep_the_line(interval: float) -> None:
    config = PeerConfig(heartbeat_interval=interval, peer_timeout=600.0)
    timeline = timed_chat(SILENCE, duration=60.0, config=config)
    assert all(line.delivered for line in timeline.lines), timeline.text()
    assert len(timeline.peer_beats["B"]) == int(60.0 // interval)


def test_a_full_cone_kept_alive_by_the_server_stays_open_to_the_partner() -> None:
    timeline = timed_chat(SILENCE, duration=60.0, nat="full-cone", config=SERVER_BEATS_ONLY)
    assert all(line.delivered for line in timeline.lines), timeline.text()


def test_address_dependent_filter_also_forgets_the_partner() -> None:
    timeline = timed_chat(SILENCE, duration=60.0, nat="restricted-cone", config=SERVER_BEATS_ONLY)
    assert timeline.lines[1].why == "permission expired at NAT B"


def test_the_liveness_timeout_fires_just_after_the_far_hole_closed() -> None:
    """Peer beats off, peer_timeout 30 s = the NAT timeout: exactly what happens.

    B last sent to A while punching; NAT B passed that datagram out at t
    (since connecting) and so closes A's permission at t + 30 s (30.021 s).
    A heard it 21 ms later (20 ms internet, 1 ms A's LAN) and so declares B
    gone at 30.042 s: for those 21 ms a line from A is sent and
    dropped at NAT B; after that A no longer sends at all. B declares A gone
    30 s after the last line of A that reached it.
    """
    schedule = [(20.0, "A", "fine"), (30.03, "A", "in the gap"), (30.05, "A", "too late")]
    timeline = timed_chat(schedule, duration=60.0, config=PeerConfig(peer_heartbeat=False))
    fine, gap, late = timeline.lines
    ((_, closed),) = timeline.open_spans["B"]
    gone_a, gone_b = timeline.gone_at["A"], timeline.gone_at["B"]
    assert gone_a is not None and gone_b is not None
    assert closed < 30.03 < gone_a < 30.05
    assert gone_a - closed == pytest.approx(0.021)
    assert fine.delivered
    assert gap.why == "permission expired at NAT B"
    assert late.why == "A had declared its partner gone"
    # B last heard "fine" (A's LAN, internet, B's LAN: 22 ms); the gap line never reached it.
    assert gone_b == pytest.approx(20.0 + 0.022 + 30.0)


def test_without_any_heartbeat_the_whole_mapping_expires() -> None:
    config = PeerConfig(heartbeat_interval=None, peer_timeout=600.0)
    timeline = timed_chat(SILENCE, duration=60.0, config=config)
    assert timeline.beats_sent() == 0
    assert timeline.lines[1].why == "mapping expired at NAT B"


def test_the_same_seed_gives_the_same_timeline_under_loss() -> None:
    def run() -> str:
        return timed_chat(SILENCE, duration=60.0, loss=0.3, seed=4).text()

    assert run() == run()


def test_the_drop_is_named_in_the_trace_table_and_on_the_sequence_diagram() -> None:
    import matplotlib.pyplot as plt

    from punchlab.diagram import sequence_diagram

    timeline = timed_chat(SILENCE, duration=60.0, config=SERVER_BEATS_ONLY)
    texts = timeline.trace.filter(types=["TEXT"])
    assert "permission expired" in texts.table()
    ax = sequence_diagram(texts)
    try:
        assert any("permission expired" in text.get_text() for text in ax.texts)
    finally:
        plt.close(ax.figure)
