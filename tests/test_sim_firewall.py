"""The simulated IPv6 home gateway: a stateful firewall that translates nothing (RFC 6092)."""

from __future__ import annotations

import ipaddress
import re

import matplotlib
import pytest

from punchlab.diagram import sequence_diagram
from punchlab.messages import Message, MessageType, encode
from punchlab.peer import PeerConfig
from punchlab.sim.firewall import EXPIRED, FILTERED, Firewall, add_firewall, add_v6_peer
from punchlab.sim.ipv6 import V6_SERVER_IP, firewall_drops, punch_v6
from punchlab.sim.nat import Behaviour
from punchlab.sim.network import Network
from punchlab.trace import EventKind
from punchlab.traversal import Route

matplotlib.use("Agg")

APDF = Behaviour.ADDRESS_AND_PORT_DEPENDENT
INSIDE = ("2001:db8:1::2", 5000)
PEER = ("2001:db8:2::9", 6000)


def firewall(filtering: Behaviour, timeout: float = 120.0) -> Firewall:
    net = Network(0)
    return add_firewall(net, "fw", filtering, timeout=timeout)


@pytest.mark.parametrize(
    ("filtering", "same_port", "other_port", "other_host"),
    [
        (Behaviour.ENDPOINT_INDEPENDENT, True, True, True),
        (Behaviour.ADDRESS_DEPENDENT, True, True, False),
        (Behaviour.ADDRESS_AND_PORT_DEPENDENT, True, False, False),
    ],
)
def test_the_filter_lets_in_what_its_behaviour_allows_after_one_outbound_datagram(
    filtering: Behaviour, same_port: bool, other_port: bool, other_host: bool
) -> None:
    box = firewall(filtering)
    assert box.admit(PEER, INSIDE, 0.0) == FILTERED  # default deny: nothing went out yet
    assert box.outbound(INSIDE, PEER, 1.0) == INSIDE  # no translation
    cases = {PEER: same_port, (PEER[0], 6001): other_port, ("2001:db8:3::1", 6000): other_host}
    for remote, allowed in cases.items():
        assert (box.admit(remote, INSIDE, 2.0) == INSIDE) is allowed, remote
    assert box.admit(PEER, ("2001:db8:1::3", 5000), 2.0) == FILTERED  # another host: no flow


def test_a_flow_lasts_its_timeout_from_the_last_outbound_datagram_only() -> None:
    box = firewall(Behaviour.ADDRESS_AND_PORT_DEPENDENT, timeout=120.0)
    box.outbound(INSIDE, PEER, 0.0)
    assert box.admit(PEER, INSIDE, 100.0) == INSIDE  # inbound does not refresh it
    assert box.admit(PEER, INSIDE, 120.0) == EXPIRED
    box.outbound(INSIDE, PEER, 130.0)
    assert box.admit(PEER, INSIDE, 249.0) == INSIDE
    assert box.dropped == {EXPIRED: 1}


def test_firewall_prefixes_are_distinct_documentation_64s() -> None:
    net = Network(0)
    boxes = [add_firewall(net, f"fw{n}") for n in range(3)]
    prefixes = [box.prefix for box in boxes]
    assert len(set(prefixes)) == 3
    for prefix in prefixes:
        assert prefix.prefixlen == 64 and prefix.subnet_of(ipaddress.IPv6Network("2001:db8::/32"))


def test_two_v6_peers_behind_firewalls_punch_directly_and_chat() -> None:
    result = punch_v6()
    assert result.connected and result.route is Route.DIRECT
    assert result.texts_a_to_b == 3 and result.texts_b_to_a == 3
    translated = [e for e in result.trace if e.kind is EventKind.TRANSLATED]
    assert translated and all(e.new_src in ("", e.src) for e in translated)
    assert all(e.new_dst in ("", e.dst) for e in translated)


def test_the_server_sees_the_hosts_own_address_and_hands_it_out() -> None:
    result = punch_v6()
    a, b = result.network.peers
    assert ipaddress.IPv6Address(a.address[0]) in ipaddress.IPv6Network("2001:db8:1::/64")
    server = result.network.servers[0]
    assert server.address[0] == V6_SERVER_IP
    registered = server.core.lookup(a.id or "")
    assert registered is not None and registered.address == a.address
    introductions = [
        e for e in result.trace if e.msg_type == "INITIATE_CHAT" and e.kind is EventKind.DELIVERED
    ]
    assert [e.payload for e in introductions] == [f"[{a.address[0]}]:{a.address[1]}"]
    assert b.core.peer_address == a.address and a.core.peer_address == b.address


def test_the_rfc_default_is_endpoint_independent_for_five_minutes() -> None:
    box = add_firewall(Network(0), "fw")
    assert box.config.filtering is Behaviour.ENDPOINT_INDEPENDENT and box.config.timeout == 300.0
    assert firewall_drops(punch_v6(lan_b=0.03)) == []  # B's registration opened its port


def test_a_hello_before_the_other_side_punched_is_dropped_at_its_firewall() -> None:
    """B's Wi-Fi is slow: A's first HELLOs reach firewall B before B has sent anything
    to A. They are dropped there; B's own HELLO opens the flow, and A's next gets in."""
    result = punch_v6(APDF, APDF, lan_b=0.03)
    assert result.connected and result.route is Route.DIRECT
    drops = firewall_drops(result)
    assert drops and all(drop == ("firewall B", "HELLO", FILTERED) for drop in drops)
    events = list(result.trace)
    last_drop = max(
        i for i, e in enumerate(events) if e.kind is EventKind.DROPPED and e.actor == "firewall B"
    )
    first_b_hello = next(
        i
        for i, e in enumerate(events)
        if e.kind is EventKind.TRANSLATED and e.actor == "firewall B" and e.msg_type == "HELLO"
    )
    assert last_drop < first_b_hello  # every drop came before B punched
    assert any(
        e.kind is EventKind.DELIVERED and e.actor == "B" and e.msg_type == "HELLO"
        for e in events[first_b_hello:]
    )


def test_an_unsolicited_datagram_is_dropped_and_traced_with_the_reason() -> None:
    net = Network(0)
    net.add_server(ip=V6_SERVER_IP)
    box = add_firewall(net, "firewall A")
    a = add_v6_peer(net, "A", behind=box)
    a.register()
    net.run_until(lambda: a.id is not None, 5.0)
    stranger = ("2001:db8:99::1", 4444)
    hello = encode(Message(MessageType.HELLO))
    net.send("server", stranger, (a.address[0], 5001), hello)  # a port A never sent from
    net.send("server", stranger, a.address, hello)  # A's port: endpoint-independent lets it in
    net.run_for(1.0)
    dropped = [e for e in net.trace if e.kind is EventKind.DROPPED]
    assert [(e.actor, e.reason, e.dst) for e in dropped] == [
        ("firewall A", FILTERED, "[2001:db8:1::2]:5001")
    ]
    assert [e.src for e in net.trace if e.kind is EventKind.DELIVERED and e.actor == "A"][-1] == (
        "[2001:db8:99::1]:4444"
    )
    assert re.search(r"\bpassed +firewall A .* not translated", net.trace.table())


def test_the_diagram_draws_the_drop_at_the_firewall_with_its_reason() -> None:
    result = punch_v6(APDF, APDF, lan_b=0.03)
    ax = sequence_diagram(result.trace, types=["HELLO"], addresses=True, time_range=(0, 0.3))
    labels = [t.get_text() for t in ax.texts]
    assert any(FILTERED in text for text in labels)
    assert any("not translated" in text for text in labels)
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "A",
        "firewall A",
        "server",
        "firewall B",
        "B",
    ]


def test_a_go_style_peer_is_recognised_by_its_own_address_over_http() -> None:
    """Without a secret the server believes an initiator by the IP its HTTP request comes
    from: through a firewall that is the host's own address, as its registration's."""
    result = punch_v6(config=PeerConfig.seed_compatible())
    assert result.connected and result.route is Route.DIRECT
    assert result.network.servers[0].core.introductions == 1


def test_each_remote_times_out_on_its_own_so_server_beats_keep_only_the_server() -> None:
    from punchlab.sim.firewall import firewall_config

    prefix = ipaddress.IPv6Network("2001:db8:1::/64")
    host, server, partner = ("2001:db8:1::2", 5000), ("2001:db8::1", 8089), ("2001:db8:2::2", 5000)
    strict = Firewall("gw", prefix, firewall_config("address-and-port-dependent", 60.0))
    strict.outbound(host, partner, 0.0)
    for t in range(3, 120, 3):
        strict.outbound(host, server, float(t))  # heart-beats to the server only
    assert strict.admit(server, host, 119.0) == host
    assert strict.admit(partner, host, 119.0) == EXPIRED
    assert "(closed)" in str(strict.table(119.0))
    # Endpoint-independent filtering needs only the flow, which the beats keep alive.
    open_to_all = Firewall("gw", prefix, firewall_config("endpoint-independent", 60.0))
    open_to_all.outbound(host, partner, 0.0)
    open_to_all.outbound(host, server, 100.0)
    assert open_to_all.admit(partner, host, 119.0) == host
