"""The traversal ladder in the simulator, each rung with the packet that matters dropped.

DESIGN.md section 7: direct, then (from what both sides' RFC 5780 discovery
found) port prediction or birthday probing, the relay last; every result
names its route. Each test makes one chosen thing go wrong with the
network's ``route_packet`` hook instead of hunting for a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from punchlab.messages import MessageType, decode
from punchlab.peer import Connected, PeerConfig, PeerState
from punchlab.sim import Network, punch
from punchlab.sim.nat import PortAllocation, nat_config
from punchlab.sim.network import Drop, Hop
from punchlab.sim.nodes import SimPeer
from punchlab.trace import EventKind
from punchlab.traversal import Allocation, NatReport, Route, Rung, next_rung

SEQUENTIAL = nat_config("symmetric", allocation=PortAllocation.SEQUENTIAL)


def ladder_pair(
    kind_a: object, kind_b: object, hook: Callable[[Hop], Drop | None] | None = None, seed: int = 0
) -> tuple[Network, SimPeer, SimPeer]:
    """Both registered and done with discovery; A has asked for B; nothing has run yet."""
    net = Network(seed)
    net.add_server(rfc5780=True)
    a = net.add_peer("A", behind=net.add_nat("NAT A", kind_a), discover=True)  # type: ignore[arg-type]
    b = net.add_peer("B", behind=net.add_nat("NAT B", kind_b), discover=True)  # type: ignore[arg-type]
    a.register()
    b.register()
    ready = lambda: all(p.discovery is not None and p.discovery.done for p in (a, b))  # noqa: E731
    assert net.run_until(ready, 10)
    net.route_packet = hook
    assert b.id is not None
    a.connect(b.id)
    return net, a, b


def relayed_inner(hop: Hop) -> str | None:
    """The type of the message a RELAY datagram carries (None: not a RELAY)."""
    try:
        outer = decode(hop.data)
    except Exception:
        return None
    if outer.type is not MessageType.RELAY or not outer.payload:
        return None
    return decode(outer.payload.encode()).type.value


def drop_relayed(inner: str, count: int = 1) -> Callable[[Hop], Drop | None]:
    """Drop the first ``count`` RELAY datagrams carrying ``inner``, on the internet."""
    left = [count]

    def hook(hop: Hop) -> Drop | None:
        if left[0] and hop.link == "internet" and relayed_inner(hop) == inner:
            left[0] -= 1
            return Drop(f"relayed {inner} dropped on purpose")
        return None

    return hook


def both_connected(net: Network, a: SimPeer, b: SimPeer, within: float = 12.0) -> bool:
    return net.run_until(lambda: a.connected and b.connected, within)


def route_of(peer: SimPeer) -> Route | None:
    return next((e.route for e in peer.events if isinstance(e, Connected)), None)


# -- choosing the rung ---------------------------------------------------------------------------

EASY = NatReport("endpoint-independent", Allocation.SAME)
HARD_RANDOM = NatReport("address-and-port-dependent", Allocation.RANDOM)
HARD_COUNTING = NatReport("address-and-port-dependent", Allocation.SEQUENTIAL, 40002, 1)


@pytest.mark.parametrize(
    ("mine", "partner", "rung"),
    [
        (HARD_RANDOM, EASY, Rung.BIRTHDAY_OPEN),
        (EASY, HARD_RANDOM, Rung.BIRTHDAY_PROBE),
        (HARD_COUNTING, EASY, Rung.PREDICT_OPEN),
        (EASY, HARD_COUNTING, Rung.PREDICT_AIM),
        (HARD_RANDOM, HARD_COUNTING, Rung.RELAY),
        (EASY, EASY, Rung.RELAY),
        (None, EASY, Rung.RELAY),
        (EASY, NatReport(), Rung.RELAY),
    ],
)
def test_both_sides_choose_complementary_rungs(
    mine: NatReport | None, partner: NatReport | None, rung: Rung
) -> None:
    assert next_rung(mine, partner) is rung


def test_a_nat_report_from_the_network_is_read_strictly() -> None:
    report = NatReport.parse(
        "mapping=address-and-port-dependent;allocation=sequential;port=7;step=1"
    )
    assert report.predictable and report.predicted_ports(3) == [8, 9, 10]
    assert NatReport.parse(HARD_COUNTING.encode()) == HARD_COUNTING
    for junk in ("", "mapping=full-cone", "port=99999;step=1", "x" * 10_000, "mapping=;;;==="):
        assert not NatReport.parse(junk).predictable
    assert NatReport.parse("mapping=endpoint-independent;step=1").step is None  # no port: no step
    assert NatReport.parse("port=65535;step=64").predicted_ports(2) == []  # past the last port


# -- each rung, and the packet that matters ---------------------------------------------


def test_port_prediction_connects_a_counting_nat() -> None:
    net, a, b = ladder_pair("port-restricted-cone", SEQUENTIAL)
    assert both_connected(net, a, b)
    assert route_of(a) is Route.PREDICTED and route_of(b) is Route.PREDICTED
    assert a.core.rung is Rung.PREDICT_AIM and b.core.rung is Rung.PREDICT_OPEN


def test_port_prediction_survives_a_lost_report_by_saying_it_again() -> None:
    net, a, b = ladder_pair("port-restricted-cone", SEQUENTIAL, drop_relayed("NAT", count=2))
    assert both_connected(net, a, b)
    assert route_of(a) is Route.PREDICTED
    dropped = net.trace.filter(kinds=[EventKind.DROPPED], types=["RELAY"])
    assert len(list(dropped)) == 2


def test_birthday_probing_connects_a_random_nat_and_counts_its_probes() -> None:
    net, a, b = ladder_pair("port-restricted-cone", "symmetric")
    assert both_connected(net, a, b)
    assert route_of(a) is Route.BIRTHDAY and route_of(b) is Route.BIRTHDAY
    assert 0 < a.core.probes <= PeerConfig().probe_limit and b.core.probes == 0
    # The hard side keeps only the sockets a probe found; the other 255-odd are closed.
    assert 1 <= len(b.core.sockets) < PeerConfig().birthday_sockets
    # The trace folds the probes into one entry with a count, not a thousand.
    sent_hellos = net.trace.filter(actors=["A"], kinds=[EventKind.SENT], types=["HELLO"])
    [sent] = [event for event in sent_hellos if event.payload == "probe"]
    assert sent.count == a.core.probes and sent.dst.endswith(":*")
    a.send_text("found you")
    b.send_text("and you")
    assert net.run_until(lambda: a.texts == ["and you"] and b.texts == ["found you"], 2)


def test_probing_waits_for_the_ports_and_without_them_the_relay_takes_over() -> None:
    net, a, b = ladder_pair("port-restricted-cone", "symmetric", drop_relayed("PORTS-OPEN", 10))
    assert both_connected(net, a, b)
    assert a.core.probes == 0  # never told the ports were open, so never probed
    assert route_of(a) is Route.RELAYED and route_of(b) is Route.RELAYED


def test_probes_go_only_to_the_introduced_peer_and_carry_its_token() -> None:
    net, a, b = ladder_pair("port-restricted-cone", "symmetric")
    assert both_connected(net, a, b)
    assert b.core.introduced_address is not None
    ip = a.core.introduced_address[0] if a.core.introduced_address else None
    for event in net.trace.filter(actors=["A"], kinds=[EventKind.SENT], types=["HELLO"]):
        assert event.dst.rpartition(":")[0] == ip
    probe = b"".join(
        e.data or b""
        for e in net.trace.filter(actors=["A"], kinds=[EventKind.SENT])
        if e.payload == "probe"
    )
    assert a.core.token is not None and a.core.token.encode() in probe


def test_two_hard_nats_talk_through_the_relay_even_when_a_relayed_success_is_lost() -> None:
    net, a, b = ladder_pair("symmetric", "symmetric", drop_relayed("SUCCESS"))
    assert both_connected(net, a, b)
    assert route_of(a) is Route.RELAYED and route_of(b) is Route.RELAYED
    a.send_text("via the server")
    assert net.run_until(lambda: b.texts == ["via the server"], 2)
    assert net.servers[0].core.relay.relayed > 0


def test_a_relayed_chat_moves_to_the_direct_path_once_it_opens() -> None:
    blocked = [True]

    def hook(hop: Hop) -> Drop | None:  # every direct HELLO lost, until we say otherwise
        if blocked[0] and hop.link == "internet" and hop.msg_type == "HELLO":
            return Drop("HELLO dropped on purpose")
        return None

    net, a, b = ladder_pair("port-restricted-cone", "port-restricted-cone", hook)
    assert both_connected(net, a, b)
    assert a.core.route is Route.RELAYED
    blocked[0] = False
    retry = PeerConfig().direct_retry_interval
    assert net.run_until(lambda: a.core.route is not Route.RELAYED, 2 * retry + 1)
    assert net.run_until(lambda: b.core.route is not Route.RELAYED, 2 * retry + 1)
    before = net.servers[0].core.relay.relayed
    a.send_text("direct now")
    assert net.run_until(lambda: b.texts[-1:] == ["direct now"], 2)
    assert net.servers[0].core.relay.relayed == before  # not through the server


def test_a_go_peer_connects_exactly_as_before() -> None:
    """A partner that announced nothing (the Go client) gets no ladder, no RELAY, no report."""
    original = punch("port-restricted-cone", "port-restricted-cone", seed_compatible=True)
    assert original.connected and original.route is Route.DIRECT
    assert not list(original.trace.filter(types=["RELAY"]))


def test_without_the_ladder_the_hard_pairs_fail_as_they_always_did() -> None:
    result = punch(
        "port-restricted-cone", "symmetric", discover=True, config=PeerConfig(ladder=False)
    )
    assert not result.connected and result.route is None
    assert {result.state_a, result.state_b} == {PeerState.FAILED}


def test_many_birthday_punches_all_connect_even_when_two_probes_hit_at_once() -> None:
    failures = [
        seed
        for seed in range(60)
        if not punch("port-restricted-cone", "symmetric", seed=seed, discover=True).connected
    ]
    assert failures == []


# -- chapter 10's widgets and questions -------------------------------------------------------


def test_the_birthday_explorer_measures_again_when_a_slider_moves() -> None:
    from punchlab.exercises_ladder import birthday_explorer

    panel = birthday_explorer()
    ports, probes, answer = panel.children  # type: ignore[attr-defined]
    assert "256 ports open, 174 probes" in answer.value and "formula 50%" in answer.value
    probes.value = 1024
    assert "1024 probes" in answer.value and "formula 98%" in answer.value
    ports.value = 4096
    probes.value = 2048
    assert "formula 100%" in answer.value


def test_the_chapter_questions_are_answered_by_the_simulator() -> None:
    from punchlab.exercises_ladder import birthday_question, route_question

    route = route_question(lambda: "symmetric", lambda: "symmetric")
    assert route.check("relayed").right and not route.check("birthday").right
    odds = birthday_question(lambda: 256, lambda: 1024)
    assert odds.check(98).right and not odds.check(50).right


def test_a_long_line_crosses_the_relay_in_pieces_the_server_accepts() -> None:
    net, a, b = ladder_pair("symmetric", "symmetric")
    assert both_connected(net, a, b) and a.core.route is Route.RELAYED
    line = "é" * 3000  # 6,000 bytes: more than one relayed datagram may carry
    a.send_text(line)
    assert net.run_until(lambda: "".join(b.texts) == line, 5)
    assert len(b.texts) > 1
    assert net.servers[0].core.rejected["relay limited"] == 0
