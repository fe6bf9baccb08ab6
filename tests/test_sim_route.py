"""The simulator's route_packet hook: lose, hold or change exactly the datagram that matters.

Each test makes one chosen thing go wrong instead of searching for a seed
whose random losses happen to hit it.
"""

from __future__ import annotations

import dataclasses

from punchlab.peer import PeerConfig
from punchlab.sim import Network
from punchlab.sim.network import Delay, Drop, Hop, drop_first
from punchlab.sim.nodes import SimPeer
from punchlab.trace import EventKind
from punchlab.traversal import Route


def two_peers(seed: int = 0, config: PeerConfig | None = None) -> tuple[Network, SimPeer, SimPeer]:
    net = Network(seed=seed)
    net.add_server()
    a = net.add_peer("A", behind=net.add_nat("NAT A", "port-restricted-cone"), config=config)
    b = net.add_peer("B", behind=net.add_nat("NAT B", "port-restricted-cone"), config=config)
    a.register()
    b.register()
    assert net.run_until(lambda: a.id is not None and b.id is not None, 5)
    return net, a, b


def test_a_lost_introduction_is_sent_again_and_the_pair_still_connects() -> None:
    net, a, b = two_peers()
    net.route_packet = drop_first("INITIATE_CHAT")
    a.connect(b.id or "")
    assert net.run_until(lambda: a.connected and b.connected, 10)
    on_purpose = [e for e in net.trace if e.reason.endswith("on purpose")]
    assert [e.msg_type for e in on_purpose] == ["INITIATE_CHAT"]
    notices = [e for e in net.trace if e.kind is EventKind.SENT and e.msg_type == "INITIATE_CHAT"]
    assert len(notices) == 2  # the server sent it again: B had not acknowledged it


def test_without_the_hook_the_same_run_sends_the_introduction_once() -> None:
    net, a, b = two_peers()
    a.connect(b.id or "")
    assert net.run_until(lambda: a.connected and b.connected, 10)
    sent = [e for e in net.trace if e.kind is EventKind.SENT and e.msg_type == "INITIATE_CHAT"]
    assert len(sent) == 1


def test_every_hello_lost_on_the_internet_means_no_punch() -> None:
    net, a, b = two_peers(config=PeerConfig(ladder=False))
    net.route_packet = drop_first("HELLO", count=10_000, link="internet")
    a.connect(b.id or "")
    assert not net.run_until(lambda: a.connected or b.connected, 5)
    assert all(
        e.reason == "HELLO dropped on purpose"
        for e in net.trace
        if e.kind is EventKind.DROPPED and e.msg_type == "HELLO"
    )


def test_a_held_success_delays_the_connection_by_that_long() -> None:
    def hold_success(hop: Hop) -> Delay | None:
        return Delay(1.0) if hop.msg_type == "SUCCESS" else None

    quick_net, qa, qb = two_peers()
    qa.connect(qb.id or "")
    assert quick_net.run_until(lambda: qa.connected, 10)
    net, a, b = two_peers()
    net.route_packet = hold_success
    a.connect(b.id or "")
    assert net.run_until(lambda: a.connected, 10)
    assert a.connected_at is not None and qa.connected_at is not None
    assert a.connected_at - qa.connected_at >= 1.0


def test_a_rewritten_datagram_is_what_arrives() -> None:
    def garble_text(hop: Hop) -> Hop | Drop | None:
        if hop.msg_type == "TEXT" and hop.link == "internet":
            return dataclasses.replace(hop, data=hop.data.replace(b"hello", b"HELLO"))
        return None

    net, a, b = two_peers()
    a.connect(b.id or "")
    assert net.run_until(lambda: a.connected and b.connected, 10)
    net.route_packet = garble_text
    a.send_text("hello")
    assert net.run_until(lambda: bool(b.texts), 5)
    assert b.texts == ["HELLO"]


def test_every_hello_lost_on_the_internet_and_the_pair_connects_through_the_relay() -> None:
    net, a, b = two_peers()
    net.route_packet = drop_first("HELLO", count=10_000, link="internet")
    a.connect(b.id or "")
    assert net.run_until(lambda: a.connected and b.connected, 5)
    assert a.core.route is Route.RELAYED and b.core.route is Route.RELAYED
    # The relayed HELLOs travel inside RELAY datagrams, to and from the server.
    relayed = net.trace.filter(types=["RELAY"], kinds=["delivered"], actors=["server"])
    assert len(list(relayed)) >= 2
    a.send_text("through the server")
    assert net.run_until(lambda: b.texts == ["through the server"], 2)
