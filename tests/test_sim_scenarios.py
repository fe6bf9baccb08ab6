"""The simulator's claims: the success matrix, determinism, loss, keep-alive, scale."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from punchlab.peer import PeerConfig, PeerState
from punchlab.sim import PRESET_NAMES, Network, punch, scale, success_matrix
from punchlab.sim.nat import PortAllocation, nat_config
from punchlab.trace import EventKind
from punchlab.traversal import Route

# DESIGN.md section 3, rows = A's NAT, columns = B's NAT, in PRESET_NAMES order:
# none, full-cone, restricted-cone, port-restricted-cone, symmetric. What the
# punch alone connects (the traversal ladder off).
PUNCHLAB_MATRIX = [
    [True, True, True, True, True],
    [True, True, True, True, True],
    [True, True, True, True, True],
    [True, True, True, True, False],
    [True, True, True, False, False],
]
# The original algorithm: the same, but the whole symmetric row and column fail.
ORIGINAL_MATRIX = [[*row[:4], False] for row in PUNCHLAB_MATRIX[:4]] + [[False] * 5]

SHOULD_CONNECT = [
    (a, b)
    for i, a in enumerate(PRESET_NAMES)
    for j, b in enumerate(PRESET_NAMES)
    if PUNCHLAB_MATRIX[i][j]
]


DIRECT_ONLY = PeerConfig(ladder=False)


def test_punchlab_success_matrix_matches_the_design() -> None:
    matrix = success_matrix(config=DIRECT_ONLY)
    assert matrix.kinds == PRESET_NAMES
    assert matrix.as_table() == PUNCHLAB_MATRIX, "\n" + matrix.text()


#: The route of each pair the punch alone cannot connect, with the ladder (DESIGN.md 7).
LADDER_ROUTES = {
    ("port-restricted-cone", "symmetric"): Route.BIRTHDAY,
    ("symmetric", "port-restricted-cone"): Route.BIRTHDAY,
    ("symmetric", "symmetric"): Route.RELAYED,
}


def test_with_the_ladder_every_pair_connects_and_says_how() -> None:
    matrix = success_matrix(discover=True)
    assert all(all(row) for row in matrix.as_table()), "\n" + matrix.text()
    for (a, b), cell in matrix.cells.items():
        i, j = PRESET_NAMES.index(a), PRESET_NAMES.index(b)
        if PUNCHLAB_MATRIX[i][j]:
            assert cell.route in (Route.DIRECT, Route.PEER_REFLEXIVE), (a, b, cell.route)
        else:
            assert cell.route is LADDER_ROUTES[(a, b)], (a, b, cell.route)
    birthday = matrix.cells[("port-restricted-cone", "symmetric")]
    assert 0 < birthday.probes <= PeerConfig().probe_limit


def test_without_discovery_the_ladder_can_only_relay() -> None:
    result = punch("port-restricted-cone", "symmetric")
    assert result.connected and result.route is Route.RELAYED


def test_a_sequential_nat_is_punched_by_port_prediction() -> None:
    sequential = nat_config("symmetric", allocation=PortAllocation.SEQUENTIAL)
    result = punch("port-restricted-cone", sequential, discover=True)
    assert result.connected and result.route is Route.PREDICTED
    b = result.network.peers[1]
    assert b.core.nat is not None and b.core.nat.allocation == "sequential"


def test_original_success_matrix_matches_the_design() -> None:
    matrix = success_matrix(seed_compatible=True)
    assert matrix.as_table() == ORIGINAL_MATRIX, "\n" + matrix.text()


def test_original_against_symmetric_connects_one_side_only() -> None:
    result = punch("full-cone", "symmetric", seed_compatible=True)
    assert not result.connected
    # the symmetric side may see SUCCESS; the other side never does
    assert result.state_b is PeerState.CONNECTED
    assert result.state_a is PeerState.FAILED


def test_matrix_reports_progress_for_every_cell() -> None:
    seen: list[tuple[int, int]] = []
    success_matrix(
        ("none", "symmetric"), progress=lambda done, total, _: seen.append((done, total))
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_failing_pair_shows_why_in_the_trace() -> None:
    result = punch("port-restricted-cone", "symmetric", config=DIRECT_ONLY)
    assert not result.connected and result.time_to_connect is None
    drops = result.trace.filter(kinds=[EventKind.DROPPED], types=["HELLO"])
    assert len(drops) > 0
    assert {e.reason for e in drops} == {"filtered by NAT"}
    assert {e.actor for e in drops} == {"NAT A", "NAT B"}


def test_symmetric_against_restricted_cone_is_rescued_by_the_peer_reflexive_address() -> None:
    result = punch("symmetric", "restricted-cone")
    assert result.connected
    # B adopted the port A's symmetric NAT opened towards it, not the one the server saw.
    b = result.network.peers[1]
    introduced = b.core.introduced_address
    assert b.peer_address is not None and introduced is not None
    assert b.peer_address[0] == introduced[0] and b.peer_address[1] != introduced[1]


def test_time_to_connect_is_a_couple_of_round_trips() -> None:
    result = punch("port-restricted-cone", "port-restricted-cone", latency=0.02)
    rtt_between_nats = 2 * 0.02
    assert result.connected and result.time_to_connect is not None
    # HTTP request and answer (one RTT to the server) plus the punch itself.
    assert result.time_to_connect < 3 * rtt_between_nats + 0.02
    original = punch("port-restricted-cone", "port-restricted-cone", seed_compatible=True)
    assert original.time_to_connect is not None and original.time_to_connect > 3.0


def test_texts_flow_both_ways_once_connected() -> None:
    result = punch("full-cone", "port-restricted-cone", texts=4)
    assert (result.texts_a_to_b, result.texts_b_to_a) == (4, 4)
    assert result.network.peers[1].texts[0] == "hello from A #1"


# -- determinism --------------------------------------------------------------------------


def test_the_same_seed_gives_a_byte_identical_trace() -> None:
    first = punch("symmetric", "restricted-cone", seed=7, loss=0.2, jitter=0.01, duplicate=0.1)
    second = punch("symmetric", "restricted-cone", seed=7, loss=0.2, jitter=0.01, duplicate=0.1)
    assert first.trace.to_jsonl() == second.trace.to_jsonl()


def test_different_seeds_differ_when_loss_is_on() -> None:
    traces = {punch("full-cone", "full-cone", seed=s, loss=0.3).trace.to_jsonl() for s in range(4)}
    assert len(traces) == 4


SCRIPT = """
import hashlib
from punchlab.sim import punch
r = punch("symmetric", "full-cone", seed=3, loss=0.3, reorder=0.2, duplicate=0.1)
print(hashlib.sha256(r.trace.to_jsonl().encode()).hexdigest())
"""


def test_a_replay_in_another_process_is_identical_despite_hash_randomisation() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    here = punch("symmetric", "full-cone", seed=3, loss=0.3, reorder=0.2, duplicate=0.1)
    digests.add(hashlib.sha256(here.trace.to_jsonl().encode()).hexdigest())
    assert len(digests) == 1


# -- a hostile network --------------------------------------------------------------------


@pytest.mark.slow
def test_every_pair_that_should_connect_does_so_under_loss_duplication_and_reordering() -> None:
    failures = []
    for seed in range(50):
        for a, b in SHOULD_CONNECT:
            result = punch(a, b, seed=seed, loss=0.3, duplicate=0.1, reorder=0.1, texts=10)
            ok = result.connected and result.time_to_connect is not None
            if not ok or result.time_to_connect > 10.0:  # type: ignore[operator]
                failures.append(f"seed {seed}: {result.summary()}")
    assert failures == []


def test_loss_shows_in_the_trace_as_lost_on_link() -> None:
    result = punch("full-cone", "full-cone", seed=1, loss=0.3)
    lost = result.trace.filter(kinds=[EventKind.DROPPED])
    assert lost.count(EventKind.DROPPED) > 0
    assert {e.reason for e in lost} == {"lost on link"} and {e.actor for e in lost} == {"internet"}


# -- keep-alive against mapping expiry ----------------------------------------------------


def quiet_chat(heartbeat: float | None) -> tuple[list[str], object]:
    """Connect through two 30 s NATs, stay silent ten minutes, then send one line."""
    config = PeerConfig(heartbeat_interval=heartbeat, peer_timeout=3600.0)
    result = punch("port-restricted-cone", "port-restricted-cone", nat_timeout=30.0, config=config)
    assert result.connected
    net = result.network
    a, b = net.peers
    net.run_for(600.0)
    assert a.connected and b.connected  # peers still believe it
    a.send_text("still there?")
    net.run_for(1.0)
    return b.texts, result.trace


def test_heartbeats_keep_a_chat_alive_through_ten_silent_minutes() -> None:
    texts, trace = quiet_chat(heartbeat=3.0)
    assert texts[-1] == "still there?"
    assert "mapping expired" not in {e.reason for e in trace}  # type: ignore[attr-defined]


def test_without_heartbeats_the_mapping_expires_and_the_trace_says_so() -> None:
    texts, trace = quiet_chat(heartbeat=None)
    assert "still there?" not in texts
    last = trace.filter(types=["TEXT"])[-1]  # type: ignore[attr-defined]
    assert last.kind is EventKind.DROPPED and last.reason == "mapping expired"


# -- building by hand, and scale ----------------------------------------------------------


def test_an_unknown_peer_id_fails_clearly_in_the_simulation() -> None:
    net = Network(seed=0)
    net.add_server()
    a = net.add_peer("A", behind=net.add_nat("NAT A", "full-cone"))
    a.register()
    assert net.run_until(lambda: a.id is not None, 5)
    a.connect("no-such-peer")
    net.run_for(1.0)
    assert a.state is PeerState.REGISTERED
    assert any("404" in error and "no-such-peer" in error for error in a.errors)


def test_several_peers_share_one_server() -> None:
    net = Network(seed=2)
    net.add_server()
    peers = [net.add_peer(f"P{i}", behind=net.add_nat(f"NAT {i}", "full-cone")) for i in range(4)]
    for peer in peers:
        peer.register()
    assert net.run_until(lambda: all(p.id for p in peers), 5)
    peers[0].connect(peers[1].id or "")
    peers[2].connect(peers[3].id or "")
    assert net.run_until(lambda: all(p.connected for p in peers), 5)
    assert peers[1].peer_address == (net.nat("NAT 0").outside_ip, 5000)


@pytest.mark.slow
def test_a_thousand_pairs_connect() -> None:
    result = scale(1000)
    assert (result.pairs, result.connected_pairs) == (1000, 1000)
    assert result.events > 10_000 and result.trace_events > result.events


@pytest.mark.parametrize("kind", ["bogus", ""])
def test_an_unknown_nat_kind_is_refused_with_the_choices(kind: str) -> None:
    with pytest.raises(ValueError, match="port-restricted-cone"):
        punch(kind, "none")


def test_two_peers_asking_for_each_other_at_once_still_connect() -> None:
    net = Network(seed=0)
    net.add_server()
    a = net.add_peer("A", behind=net.add_nat("NAT A", "full-cone"))
    b = net.add_peer("B", behind=net.add_nat("NAT B", "port-restricted-cone"))
    a.register()
    b.register()
    assert net.run_until(lambda: a.id is not None and b.id is not None, 5)
    a.connect(b.id or "")
    b.connect(a.id or "")
    assert net.run_until(lambda: a.connected and b.connected, 10), (a.state, b.state)


def test_a_connected_peer_stays_registered_for_a_later_introduction() -> None:
    result = punch("full-cone", "full-cone")
    net = result.network
    net.run_for(60.0)  # twice the registration lifetime
    assert {p.id for p in net.peers} <= {r.peer_id for r in net.servers[0].registrations}


def test_the_nine_behaviours_are_named_by_rfc_4787_and_allocate_as_documented() -> None:
    from punchlab.sim import BEHAVIOURS, Behaviour, PortAllocation
    from punchlab.sim.nat import nat_config

    assert len(BEHAVIOURS) == 9
    assert {(c.mapping, c.filtering) for c in BEHAVIOURS.values()} == {
        (m, f) for m in Behaviour for f in Behaviour
    }
    for name, config in BEHAVIOURS.items():
        assert nat_config(name) is config
        eim = config.mapping is Behaviour.ENDPOINT_INDEPENDENT
        assert config.allocation is (PortAllocation.PRESERVE if eim else PortAllocation.RANDOM)
    with pytest.raises(ValueError, match="EIM/APDF"):
        nat_config("EIM/XYZ")


def test_the_nine_by_nine_matrix_agrees_with_the_classic_presets_and_the_rules() -> None:
    """Every classic name gives the same cells as its behaviour name; EIM pairs always connect."""
    from punchlab.sim import BEHAVIOURS

    grid = success_matrix(list(BEHAVIOURS.values()), config=DIRECT_ONLY)
    classic = success_matrix(PRESET_NAMES[1:], config=DIRECT_ONLY)
    alias = {"full-cone": "EIM/EIF", "restricted-cone": "EIM/ADF"}
    alias |= {"port-restricted-cone": "EIM/APDF", "symmetric": "APDM/APDF"}
    for (a, b), cell in classic.cells.items():
        assert grid.connected(alias[a], alias[b]) == cell.connected, (a, b)
    eim = [k for k in grid.kinds if k.startswith("EIM")]
    assert all(grid.connected(a, b) for a in eim for b in eim)
    assert not any(grid.connected("EIM/APDF", b) for b in grid.kinds if b not in eim)
    original = success_matrix(list(BEHAVIOURS.values()), seed_compatible=True)
    assert {cell for cell, r in original.cells.items() if r.connected} == {
        (a, b) for a in eim for b in eim
    }


def test_the_nine_by_nine_matrix_connects_every_cell_with_the_ladder() -> None:
    from punchlab.sim import BEHAVIOURS

    grid = success_matrix(list(BEHAVIOURS.values()), discover=True)
    assert all(all(row) for row in grid.as_table()), "\n" + grid.text()
    for (a, b), cell in grid.cells.items():
        hard_a, hard_b = not a.startswith("EIM"), not b.startswith("EIM")
        if cell.route in (Route.BIRTHDAY, Route.PREDICTED):
            assert hard_a != hard_b, (a, b)  # one easy side, one hard side
        if (
            hard_a
            and hard_b
            and grid.cells[(a, b)].route not in (Route.DIRECT, Route.PEER_REFLEXIVE)
        ):
            assert cell.route is Route.RELAYED, (a, b)


@pytest.mark.slow
def test_the_ladder_connects_under_loss() -> None:
    failures = []
    for seed in range(10):
        for a, b in LADDER_ROUTES:
            result = punch(a, b, seed=seed, loss=0.1, duplicate=0.05, reorder=0.05, discover=True)
            if not result.connected:
                failures.append(f"seed {seed}: {result.summary()}")
    assert failures == []
