"""The NAT boxes of DESIGN.md section 3 (RFC 4787), alone and inside the simulated network."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest

from punchlab.messages import format_address
from punchlab.peer import PeerConfig
from punchlab.sim.nat import (
    PRESET_NAMES,
    PRESETS,
    Behaviour,
    NatBox,
    NatConfig,
    PortAllocation,
    nat_config,
)
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer
from punchlab.trace import EventKind

EIM = Behaviour.ENDPOINT_INDEPENDENT
ADM = Behaviour.ADDRESS_DEPENDENT
APDM = Behaviour.ADDRESS_AND_PORT_DEPENDENT

PUBLIC_IP = "198.51.100.7"
INSIDE = ("10.0.0.2", 5000)
OTHER_INSIDE = ("10.0.0.3", 5000)
SERVER = ("203.0.113.1", 8089)
SERVER_OTHER_PORT = ("203.0.113.1", 9999)
REMOTE = ("198.51.100.20", 6000)
REMOTE_OTHER_PORT = ("198.51.100.20", 6001)
STRANGER = ("192.0.2.50", 7000)


def make_box(
    mapping: Behaviour = EIM,
    filtering: Behaviour = APDM,
    allocation: PortAllocation = PortAllocation.PRESERVE,
    *,
    timeout: float = 120.0,
    seed: int = 0,
) -> NatBox:
    config = NatConfig(mapping, filtering, allocation, timeout=timeout)
    return NatBox("nat", PUBLIC_IP, config, random.Random(seed))


# -- mapping behaviour ---------------------------------------------------------------------


def test_endpoint_independent_mapping_reuses_the_port_for_every_destination() -> None:
    box = make_box(mapping=EIM)
    first = box.outbound(INSIDE, SERVER, now=0.0)
    assert first[0] == PUBLIC_IP
    assert box.outbound(INSIDE, SERVER_OTHER_PORT, now=1.0) == first
    assert box.outbound(INSIDE, REMOTE, now=2.0) == first
    assert box.outbound(INSIDE, STRANGER, now=3.0) == first
    assert len(box.mappings()) == 1


def test_address_dependent_mapping_is_per_destination_ip() -> None:
    box = make_box(mapping=ADM)
    to_server = box.outbound(INSIDE, SERVER, now=0.0)
    assert box.outbound(INSIDE, SERVER_OTHER_PORT, now=1.0) == to_server
    to_remote = box.outbound(INSIDE, REMOTE, now=2.0)
    assert to_remote[0] == PUBLIC_IP
    assert to_remote[1] != to_server[1]
    # Coming back to an address seen before gives that address's mapping again.
    assert box.outbound(INSIDE, REMOTE_OTHER_PORT, now=3.0) == to_remote
    assert box.outbound(INSIDE, SERVER, now=4.0) == to_server
    assert len(box.mappings()) == 2


def test_address_and_port_dependent_mapping_gives_a_new_port_per_destination() -> None:
    box = make_box(mapping=APDM)
    destinations = [SERVER, SERVER_OTHER_PORT, REMOTE, REMOTE_OTHER_PORT]
    ports = [box.outbound(INSIDE, d, now=float(i))[1] for i, d in enumerate(destinations)]
    assert len(set(ports)) == len(destinations)
    # The same destination again keeps its own mapping.
    for destination, port in zip(destinations, ports, strict=True):
        assert box.outbound(INSIDE, destination, now=10.0) == (PUBLIC_IP, port)
    assert len(box.mappings()) == len(destinations)


def test_different_inside_hosts_get_different_outside_ports() -> None:
    box = make_box(mapping=EIM)
    a = box.outbound(INSIDE, SERVER, now=0.0)
    b = box.outbound(OTHER_INSIDE, SERVER, now=0.0)
    assert a != b
    assert box.inbound(SERVER, a[1], now=1.0) == INSIDE
    assert box.inbound(SERVER, b[1], now=1.0) == OTHER_INSIDE


# -- filtering behaviour -------------------------------------------------------------------


def test_endpoint_independent_filtering_lets_anyone_in_once_mapped() -> None:
    box = make_box(filtering=EIM)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    for sender in (SERVER, SERVER_OTHER_PORT, REMOTE, STRANGER):
        assert box.inbound(sender, port, now=1.0) == INSIDE


def test_address_dependent_filtering_admits_only_contacted_ips() -> None:
    box = make_box(filtering=ADM)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    assert box.inbound(SERVER, port, now=1.0) == INSIDE
    assert box.inbound(SERVER_OTHER_PORT, port, now=1.0) == INSIDE  # same IP, other port
    assert box.inbound(REMOTE, port, now=1.0) == "filtered by NAT"
    assert box.inbound(STRANGER, port, now=1.0) == "filtered by NAT"
    # Contacting REMOTE opens the filter to every port of REMOTE's IP.
    box.outbound(INSIDE, REMOTE, now=2.0)
    assert box.inbound(REMOTE, port, now=3.0) == INSIDE
    assert box.inbound(REMOTE_OTHER_PORT, port, now=3.0) == INSIDE
    assert box.inbound(STRANGER, port, now=3.0) == "filtered by NAT"


def test_address_and_port_dependent_filtering_admits_only_exact_endpoints() -> None:
    box = make_box(filtering=APDM)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    assert box.inbound(SERVER, port, now=1.0) == INSIDE
    assert box.inbound(SERVER_OTHER_PORT, port, now=1.0) == "filtered by NAT"
    assert box.inbound(REMOTE, port, now=1.0) == "filtered by NAT"
    box.outbound(INSIDE, REMOTE, now=2.0)
    assert box.inbound(REMOTE, port, now=3.0) == INSIDE
    assert box.inbound(REMOTE_OTHER_PORT, port, now=3.0) == "filtered by NAT"


def test_symmetric_mapping_filters_each_port_to_its_own_destination() -> None:
    box = make_box(mapping=APDM, filtering=APDM)
    to_server = box.outbound(INSIDE, SERVER, now=0.0)[1]
    to_remote = box.outbound(INSIDE, REMOTE, now=0.0)[1]
    assert box.inbound(SERVER, to_server, now=1.0) == INSIDE
    assert box.inbound(REMOTE, to_remote, now=1.0) == INSIDE
    # The port opened for the server does not let the remote in: why symmetric NATs hurt.
    assert box.inbound(REMOTE, to_server, now=1.0) == "filtered by NAT"
    assert box.inbound(SERVER, to_remote, now=1.0) == "filtered by NAT"


@pytest.mark.parametrize("filtering", list(Behaviour))
def test_unsolicited_inbound_to_an_unmapped_port_is_filtered(filtering: Behaviour) -> None:
    box = make_box(filtering=filtering)
    assert box.inbound(STRANGER, 5000, now=0.0) == "filtered by NAT"
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    assert box.inbound(SERVER, port + 1, now=1.0) == "filtered by NAT"


# -- mapping timeout -----------------------------------------------------------------------


def test_mapping_lives_for_the_timeout_then_expires() -> None:
    box = make_box(filtering=EIM, timeout=30.0)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    assert box.inbound(SERVER, port, now=29.9) == INSIDE
    assert box.inbound(SERVER, port, now=30.1) == "mapping expired"
    assert box.mappings(now=30.1) == []
    assert len(box.mappings(now=29.9)) == 1


def test_outbound_traffic_refreshes_the_mapping() -> None:
    box = make_box(timeout=30.0)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    assert box.outbound(INSIDE, SERVER, now=20.0) == (PUBLIC_IP, port)
    assert box.inbound(SERVER, port, now=45.0) == INSIDE  # 25 s after the refresh
    assert box.outbound(INSIDE, SERVER, now=45.0) == (PUBLIC_IP, port)
    assert box.inbound(SERVER, port, now=74.0) == INSIDE
    assert box.inbound(SERVER, port, now=75.1) == "mapping expired"


def test_inbound_traffic_does_not_refresh_the_mapping() -> None:
    box = make_box(timeout=30.0)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    for now in (10.0, 20.0, 29.0):
        assert box.inbound(SERVER, port, now=now) == INSIDE
    assert box.inbound(SERVER, port, now=31.0) == "mapping expired"


# -- per-permission timeouts (a conntrack flow each) ------------------------------------


def test_each_permission_expires_on_its_own_timer_while_the_mapping_lives() -> None:
    box = make_box(filtering=APDM, timeout=30.0)
    port = box.outbound(INSIDE, REMOTE, now=0.0)[1]
    for now in (10.0, 20.0, 30.0, 40.0):  # heart-beats to the server only
        box.outbound(INSIDE, SERVER, now=now)
    assert box.inbound(REMOTE, port, now=29.9) == INSIDE
    assert box.inbound(REMOTE, port, now=30.1) == "permission expired"
    assert box.inbound(SERVER, port, now=50.0) == INSIDE  # the mapping and its beat live on
    assert box.inbound(STRANGER, port, now=50.0) == "filtered by NAT"
    (mapping,) = box.mappings(now=50.0)
    assert not mapping.open_to(REMOTE, 50.0) and mapping.open_to(SERVER, 50.0)


def test_outbound_to_a_remote_refreshes_its_own_permission_only() -> None:
    box = make_box(filtering=APDM, timeout=30.0)
    port = box.outbound(INSIDE, REMOTE, now=0.0)[1]
    box.outbound(INSIDE, SERVER, now=0.0)
    box.outbound(INSIDE, REMOTE, now=25.0)
    assert box.inbound(REMOTE, port, now=54.0) == INSIDE  # 29 s after its refresh
    assert box.inbound(SERVER, port, now=31.0) == "permission expired"
    # Inbound traffic refreshes nothing (RFC 4787 REQ-6 makes inbound refresh optional).
    assert box.inbound(REMOTE, port, now=50.0) == INSIDE
    assert box.inbound(REMOTE, port, now=55.1) == "mapping expired"


def test_address_dependent_filtering_admits_on_any_live_permission_to_the_ip() -> None:
    box = make_box(filtering=ADM, timeout=30.0)
    port = box.outbound(INSIDE, REMOTE, now=0.0)[1]
    box.outbound(INSIDE, REMOTE_OTHER_PORT, now=20.0)
    box.outbound(INSIDE, SERVER, now=45.0)
    # REMOTE's own permission closed at 30, REMOTE_OTHER_PORT's (same IP) lives to 50.
    assert box.inbound(REMOTE, port, now=45.0) == INSIDE
    assert box.inbound(REMOTE, port, now=50.1) == "permission expired"
    assert box.inbound(STRANGER, port, now=45.0) == "filtered by NAT"


def test_endpoint_independent_filtering_has_no_permissions_to_expire() -> None:
    box = make_box(filtering=EIM, timeout=30.0)
    port = box.outbound(INSIDE, REMOTE, now=0.0)[1]
    for now in (20.0, 40.0):
        box.outbound(INSIDE, SERVER, now=now)
    # A full cone kept alive by server beats stays open to everyone.
    assert box.inbound(REMOTE, port, now=60.0) == INSIDE
    assert box.inbound(STRANGER, port, now=60.0) == INSIDE


def test_expired_permissions_are_pruned_so_contacted_stays_bounded() -> None:
    box = make_box(filtering=APDM, timeout=30.0)
    port = 0
    for second in range(600):  # a new remote every second, for ten minutes
        port = box.outbound(INSIDE, ("192.0.2.1", 10000 + second), now=float(second))[1]
    (mapping,) = box.mappings(now=600.0)
    # Only remotes from the last five and a half timeouts remain, not 600: the
    # live ones (30 s) and those expired less than four timeouts (120 s) ago.
    assert 150 <= len(mapping.contacted) <= 166
    assert box.inbound(("192.0.2.1", 10599), port, now=600.0) == INSIDE
    assert box.inbound(("192.0.2.1", 10460), port, now=600.0) == "permission expired"
    assert box.inbound(("192.0.2.1", 10000), port, now=600.0) == "filtered by NAT"  # forgotten


def test_permissions_list_each_open_remote_with_its_own_expiry() -> None:
    box = make_box(filtering=APDM, timeout=30.0)
    box.outbound(INSIDE, REMOTE, now=0.0)
    box.outbound(INSIDE, SERVER, now=20.0)
    rows = box.permissions(now=25.0)
    assert [(row["remote"], row["closes in s"]) for row in rows] == [
        (format_address(REMOTE), pytest.approx(5.0)),
        (format_address(SERVER), pytest.approx(25.0)),
    ]
    assert [row["remote"] for row in box.permissions(now=31.0)] == [format_address(SERVER)]
    assert "(closes in 5.0 s)" in box.show(now=25.0)
    assert "(closed)" in box.show(now=31.0)


def test_outbound_after_expiry_starts_a_fresh_mapping_with_a_fresh_filter() -> None:
    box = make_box(filtering=APDM, timeout=30.0)
    port = box.outbound(INSIDE, SERVER, now=0.0)[1]
    box.outbound(INSIDE, REMOTE, now=0.0)
    new_port = box.outbound(INSIDE, SERVER, now=40.0)[1]
    assert box.inbound(SERVER, new_port, now=41.0) == INSIDE
    # REMOTE was contacted through the old mapping only.
    assert box.inbound(REMOTE, new_port, now=41.0) == "filtered by NAT"
    assert [m.created for m in box.mappings(now=41.0)] == [40.0]
    assert port == new_port  # preserve allocation: the inside port is free again


def test_an_expired_mapping_port_can_be_reused_by_another_inside_host() -> None:
    box = make_box(filtering=EIM, timeout=30.0)
    first = box.outbound(INSIDE, SERVER, now=0.0)
    assert first == (PUBLIC_IP, INSIDE[1])
    # While the first mapping lives, the other host with the same inside port gets another.
    taken = box.outbound(OTHER_INSIDE, SERVER, now=1.0)
    assert taken[1] != first[1]
    # Once it expired, that port is free again and now leads to the other host.
    late_host = ("10.0.0.4", 5000)
    reused = box.outbound(late_host, SERVER, now=31.0)
    assert reused == first
    assert box.inbound(SERVER, first[1], now=32.0) == late_host


# -- port allocation -----------------------------------------------------------------------


def test_preserve_allocation_keeps_the_inside_port_when_free() -> None:
    box = make_box(allocation=PortAllocation.PRESERVE)
    assert box.outbound(("10.0.0.2", 5000), SERVER, now=0.0) == (PUBLIC_IP, 5000)
    assert box.outbound(("10.0.0.3", 6123), SERVER, now=0.0) == (PUBLIC_IP, 6123)


def test_preserve_allocation_picks_another_port_when_taken_by_another_host() -> None:
    box = make_box(allocation=PortAllocation.PRESERVE)
    assert box.outbound(INSIDE, SERVER, now=0.0) == (PUBLIC_IP, 5000)
    other = box.outbound(OTHER_INSIDE, SERVER, now=0.0)
    assert other[0] == PUBLIC_IP
    assert other[1] != 5000
    assert box.inbound(SERVER, 5000, now=1.0) == INSIDE
    assert box.inbound(SERVER, other[1], now=1.0) == OTHER_INSIDE


def test_sequential_allocation_counts_up() -> None:
    box = make_box(mapping=APDM, allocation=PortAllocation.SEQUENTIAL)
    ports = [box.outbound(INSIDE, ("192.0.2.1", 1000 + i), now=0.0)[1] for i in range(6)]
    assert ports == sorted(ports)
    assert len(set(ports)) == 6
    assert [b - a for a, b in itertools.pairwise(ports)] == [1] * 5
    # Different inside hosts share the same counter.
    assert box.outbound(OTHER_INSIDE, SERVER, now=0.0)[1] == ports[-1] + 1


def test_sequential_allocation_does_not_preserve_the_inside_port() -> None:
    box = make_box(allocation=PortAllocation.SEQUENTIAL)
    first = box.outbound(INSIDE, SERVER, now=0.0)[1]
    second = box.outbound(("10.0.0.9", first), SERVER, now=0.0)[1]
    assert second == first + 1


def random_ports(seed: int, count: int = 8) -> list[int]:
    box = make_box(mapping=APDM, allocation=PortAllocation.RANDOM, seed=seed)
    return [box.outbound(INSIDE, ("192.0.2.1", 1000 + i), now=0.0)[1] for i in range(count)]


def test_random_allocation_is_reproducible_from_the_seed() -> None:
    ports = random_ports(7)
    assert ports == random_ports(7)
    assert len(set(ports)) == len(ports)
    assert all(NatBox.FIRST_PORT <= port <= 65535 for port in ports)
    # Not a counter: the ports do not simply count up.
    assert [b - a for a, b in itertools.pairwise(ports)] != [1] * (len(ports) - 1)


def test_random_allocation_depends_on_the_seed() -> None:
    assert random_ports(1) != random_ports(2)


# -- presets and configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mapping", "filtering"),
    [
        ("full-cone", EIM, EIM),
        ("restricted-cone", EIM, ADM),
        ("port-restricted-cone", EIM, APDM),
        ("symmetric", APDM, APDM),
    ],
)
def test_presets_match_the_design_table(
    name: str, mapping: Behaviour, filtering: Behaviour
) -> None:
    config = PRESETS[name]
    assert config.mapping is mapping
    assert config.filtering is filtering
    assert config.name == name
    assert nat_config(name) == config


def test_preset_names_are_the_design_table_with_none_first() -> None:
    assert set(PRESETS) == {"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}
    assert PRESET_NAMES[0] == "none"
    assert "none" not in PRESETS


def test_default_timeout_meets_rfc_4787_req_5() -> None:
    for config in PRESETS.values():
        assert config.timeout >= 120.0
    assert NatConfig().timeout >= 120.0


def test_unknown_kind_raises_value_error_listing_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown") as info:
        nat_config("unknown")
    message = str(info.value)
    for name in PRESET_NAMES:
        assert name in message


def test_nat_config_applies_overrides_without_touching_the_preset() -> None:
    config = nat_config("full-cone", hairpinning=True, timeout=30.0)
    assert config.hairpinning is True
    assert config.timeout == 30.0
    assert config.mapping is EIM and config.filtering is EIM
    assert PRESETS["full-cone"].hairpinning is False
    assert PRESETS["full-cone"].timeout != 30.0


def test_nat_config_accepts_a_config_and_overrides_it() -> None:
    custom = NatConfig(ADM, EIM, PortAllocation.SEQUENTIAL, timeout=60.0, name="odd")
    assert nat_config(custom) is custom
    changed = nat_config(custom, filtering=APDM)
    assert changed.filtering is APDM
    assert changed.mapping is ADM
    assert changed.allocation is PortAllocation.SEQUENTIAL
    assert changed.name == "odd"
    assert custom.filtering is EIM


@pytest.mark.parametrize("timeout", [0, 0.0, -1.0])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        NatConfig(timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        nat_config("full-cone", timeout=timeout)


# -- the table a notebook shows -----------------------------------------------------------


def test_table_lists_inside_outside_remotes_and_expiry() -> None:
    box = make_box(timeout=120.0)
    box.outbound(INSIDE, SERVER, now=0.0)
    box.outbound(INSIDE, REMOTE, now=5.0)
    box.outbound(OTHER_INSIDE, SERVER, now=2.0)
    rows = box.table(now=10.0)
    assert len(rows) == 2
    first, second = rows
    assert first["inside"] == format_address(INSIDE)
    assert first["outside"] == f"{PUBLIC_IP}:5000"
    # SERVER's own permission closes 5 s before the mapping (REMOTE was last).
    assert first["remotes"] == (
        f"{format_address(SERVER)} (closes in 110.0 s), {format_address(REMOTE)}"
    )
    assert first["expires in s"] == pytest.approx(115.0)
    assert second["inside"] == format_address(OTHER_INSIDE)
    assert second["remotes"] == format_address(SERVER)
    assert second["expires in s"] == pytest.approx(112.0)
    # Expired rows leave the table; a closed permission says so while its mapping lives.
    assert [row["inside"] for row in box.table(now=123.0)] == [format_address(INSIDE)]
    assert str(box.table(now=123.0)[0]["remotes"]).startswith(f"{format_address(SERVER)} (closed)")
    assert box.table(now=126.0) == []


def test_show_prints_the_table_as_text() -> None:
    box = make_box(timeout=120.0)
    assert "no mappings" in box.show(now=0.0)
    box.outbound(INSIDE, SERVER, now=0.0)
    text = box.show(now=20.0)
    lines = text.splitlines()
    assert PUBLIC_IP in lines[0]
    for column in ("inside", "outside", "remotes", "expires in s"):
        assert column in lines[1]
    assert format_address(INSIDE) in lines[2]
    assert f"{PUBLIC_IP}:5000" in lines[2]
    assert format_address(SERVER) in lines[2]
    assert "100.0" in lines[2]
    assert "no mappings" in box.show(now=121.0)


# -- NAT boxes inside the simulated network ------------------------------------------------


def register(net: Network, *peers: SimPeer) -> None:
    for peer in peers:
        peer.register()
    assert net.run_until(lambda: all(p.id is not None for p in peers), 5)


def connect(net: Network, a: SimPeer, b: SimPeer) -> bool:
    assert b.id is not None
    a.connect(b.id)
    return net.run_until(lambda: a.connected and b.connected, 10)


def test_two_peers_behind_one_nat_connect_with_hairpinning() -> None:
    net = Network(seed=1)
    net.add_server()
    box = net.add_nat("home", "full-cone", hairpinning=True)
    a = net.add_peer("A", behind=box)
    b = net.add_peer("B", behind=box, port=5001)
    register(net, a, b)
    assert connect(net, a, b)
    hairpinned = [
        e
        for e in net.trace
        if e.kind is EventKind.TRANSLATED
        and e.actor == "home"
        and e.dst.startswith(box.outside_ip + ":")
        and e.new_dst in (format_address(a.address), format_address(b.address))
        and e.src in (format_address(a.address), format_address(b.address))
    ]
    assert hairpinned, "expected a hairpin translation at the NAT"
    # RFC 4787 REQ-9: the hairpinned datagram carries the sender's public address.
    assert all(e.new_src.startswith(box.outside_ip + ":") for e in hairpinned)
    assert not [e for e in net.trace if e.reason == "no hairpinning"]


def test_two_peers_behind_one_nat_fail_to_punch_without_hairpinning() -> None:
    net = Network(seed=1)
    net.add_server()
    box = net.add_nat("home", "full-cone", hairpinning=False)
    # The relay or their private endpoints would connect them (test_scenes, test_private).
    direct_only = PeerConfig(ladder=False, private=False)
    a = net.add_peer("A", behind=box, config=direct_only)
    b = net.add_peer("B", behind=box, port=5001, config=direct_only)
    register(net, a, b)
    assert not connect(net, a, b)
    assert not a.connected and not b.connected
    drops = [e for e in net.trace if e.kind is EventKind.DROPPED and e.reason == "no hairpinning"]
    assert drops
    assert {e.actor for e in drops} == {"home"}
    assert {e.msg_type for e in drops} == {"HELLO"}


def test_nat_behind_nat_registers_through_two_translations() -> None:
    net = Network(seed=2)
    server = net.add_server()
    outer = net.add_nat("isp", "full-cone")
    inner = net.add_nat("home", "port-restricted-cone", behind=outer)
    a = net.add_peer("A", behind=inner)
    register(net, a)
    sent = next(
        e
        for e in net.trace
        if e.kind is EventKind.SENT and e.actor == "A" and e.msg_type == "REGISTRATION"
    )
    steps = [e for e in net.trace if e.packet == sent.packet]
    translated = [e for e in steps if e.kind is EventKind.TRANSLATED]
    assert [e.actor for e in translated] == ["home", "isp"]
    assert translated[0].src == format_address(a.address)
    assert translated[0].new_src.startswith(inner.outside_ip + ":")
    assert translated[1].src == translated[0].new_src
    assert translated[1].new_src.startswith(outer.outside_ip + ":")
    delivered = [e for e in steps if e.kind is EventKind.DELIVERED]
    assert [e.actor for e in delivered] == ["server"]
    assert delivered[0].src == translated[1].new_src
    # The server knows the peer by the outermost public address.
    (registration,) = server.registrations
    assert format_address(registration.address) == translated[1].new_src
    # The answer came back in through both NATs.
    answer = [e for e in net.trace if e.msg_type == "REGISTRATION" and e.packet != sent.packet]
    assert [e.actor for e in answer if e.kind is EventKind.TRANSLATED] == ["isp", "home"]


def test_datagram_to_an_unknown_address_is_dropped() -> None:
    net = Network(seed=3)
    net.add_server()
    box = net.add_nat("home", "full-cone")
    a = net.add_peer("A", behind=box)
    nowhere = ("192.0.2.99", 9)
    net.send("A", a.address, nowhere, b"...")
    net.run(until=1.0)
    drops = [e for e in net.trace if e.kind is EventKind.DROPPED]
    assert len(drops) == 1
    assert drops[0].reason == "unknown destination"
    assert drops[0].dst == format_address(nowhere)
    assert not [e for e in net.trace if e.kind is EventKind.DELIVERED]


def test_datagram_from_the_internet_to_a_private_address_is_dropped() -> None:
    net = Network(seed=3)
    net.add_server()
    box = net.add_nat("home", "full-cone")
    a = net.add_peer("A", behind=box)
    b = net.add_peer("B")
    net.send("B", b.address, a.address, b"...")
    net.run(until=1.0)
    drops = [e for e in net.trace if e.kind is EventKind.DROPPED]
    assert [e.reason for e in drops] == ["unknown destination"]


def test_unsolicited_datagram_is_filtered_by_the_nat_in_the_trace() -> None:
    net = Network(seed=4)
    net.add_server()
    box = net.add_nat("home", "port-restricted-cone")
    net.add_peer("A", behind=box)
    b = net.add_peer("B")
    net.send("B", b.address, (box.outside_ip, 5000), b"...")
    net.run(until=1.0)
    drops = [e for e in net.trace if e.kind is EventKind.DROPPED]
    assert [(e.actor, e.reason) for e in drops] == [("home", "filtered by NAT")]


def test_peer_without_nat_has_a_public_address() -> None:
    net = Network(seed=5)
    server = net.add_server()
    a = net.add_peer("A", behind=None)
    address = ipaddress.ip_address(a.address[0])
    assert address not in ipaddress.ip_network("10.0.0.0/8")
    register(net, a)
    assert not [e for e in net.trace if e.kind is EventKind.TRANSLATED]
    (registration,) = server.registrations
    assert registration.address == a.address


def test_peer_without_nat_connects_to_a_peer_behind_a_nat() -> None:
    net = Network(seed=6)
    net.add_server()
    box = net.add_nat("home", "symmetric")
    a = net.add_peer("A")
    b = net.add_peer("B", behind=box)
    register(net, a, b)
    assert connect(net, a, b)
