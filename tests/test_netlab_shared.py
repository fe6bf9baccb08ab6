"""Shared NATs on real NATs: two peers behind one NAT (hairpinning on and off, private
endpoints on and off) and home NATs behind a carrier-grade NAT, against the simulator.

Needs root, iproute2, nftables, tcpdump and conntrack, like tests/test_netlab_capture.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from punchlab.cli import main
from punchlab.netlab import LabResult
from punchlab.netlab.topologies import SAME_NAT_PUBLIC, CgnLab, SameNatLab
from punchlab.peer import PeerConfig
from punchlab.scenes import campus
from punchlab.sim.nat import nat_config
from punchlab.sim.network import Network
from punchlab.traversal import Route, pair_route
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.netlab, pytest.mark.timeout(180)]

require_lab("the shared-NAT lab", ("tcpdump", "conntrack"))

PRC = "port-restricted-cone"
A_PUBLIC, B_PUBLIC = f"{SAME_NAT_PUBLIC}:5000", f"{SAME_NAT_PUBLIC}:5001"


def server_saw(result: LabResult) -> set[str]:
    """Where the server's signalling came from (the peers' public endpoints, as it sees them)."""
    return {e.src for e in result.trace if e.actor == "server" and e.kind == "delivered"}


def campus_route(kind: str, *, hairpinning: bool, private: bool) -> Route | None:
    """The simulator's route for the same class behind one NAT (punchlab.scenes.campus)."""
    scene = campus(kind, hairpinning=hairpinning, private=private)
    both = scene.alice.connected and scene.bob.connected
    return pair_route(scene.alice.core.route, scene.bob.core.route) if both else None


def hellos(result: LabResult, actor: str, *, kind: str = "delivered") -> list[tuple[str, str]]:
    """(source, destination) of every HELLO ``actor`` sent or received."""
    return [
        (e.src, e.dst)
        for e in result.trace
        if e.actor == actor and e.kind == kind and e.msg_type == "HELLO"
    ]


@pytest.mark.parametrize("kind", [PRC, "symmetric"])
def test_two_peers_behind_one_nat_without_hairpinning_connect_by_their_private_endpoints(
    kind: str,
) -> None:
    with SameNatLab(kind) as lab:
        result = lab.punch()
    assert result.connected and result.route is Route.PRIVATE, result.summary()
    assert result.route is campus_route(kind, hairpinning=False, private=True)
    # One public IP for both: that is what makes the server pass the local addresses on.
    assert {address.split(":")[0] for address in server_saw(result)} == {SAME_NAT_PUBLIC}
    assert result.a.first("connected")["peer"] == "10.0.1.3:5001"  # type: ignore[index]
    assert result.b.first("connected")["peer"] == "10.0.1.2:5000"  # type: ignore[index]
    assert result.a.texts == ["hello from B #1"] and result.b.texts == ["hello from A #1"]


def test_without_hairpinning_hellos_to_the_public_address_never_arrive(tmp_path: Path) -> None:
    with SameNatLab(PRC) as lab:
        result = lab.punch(ladder=False, private=False, punch_timeout=3.0, capture=tmp_path)
    assert not result.connected, result.summary()
    assert result.a.failure == "no SUCCESS from the peer before the deadline"
    assert server_saw(result) == {A_PUBLIC, B_PUBLIC}
    # Each sent HELLOs to the other's public endpoint only, and the NAT kept them all.
    assert {dst for _, dst in hellos(result, "A", kind="sent")} == {B_PUBLIC}
    assert {dst for _, dst in hellos(result, "B", kind="sent")} == {A_PUBLIC}
    assert hellos(result, "A") == [] and hellos(result, "B") == []
    # The capture on the NAT's LAN: every one of them dropped by the NAT itself.
    assert result.capture_trace is not None
    drops = {e.reason for e in result.capture_trace if e.actor == "NAT" and e.msg_type == "HELLO"}
    assert drops == {"no hairpinning"}  # as the simulator says it


def test_a_hairpinning_nat_turns_hellos_round_with_the_senders_public_endpoint(
    tmp_path: Path,
) -> None:
    with SameNatLab(PRC, hairpin=True) as lab:
        result = lab.punch(private=False, capture=tmp_path)
    assert result.connected and result.route is Route.DIRECT, result.summary()
    assert result.route is campus_route(PRC, hairpinning=True, private=False)
    # RFC 4787 section 6: the hairpinned datagram comes from the sender's public endpoint.
    assert hellos(result, "B") and {src for src, _ in hellos(result, "B")} == {A_PUBLIC}
    assert hellos(result, "A") and {src for src, _ in hellos(result, "A")} == {B_PUBLIC}
    # The capture: the NAT rewrote source and destination at once, and conntrack has it.
    assert result.capture_trace is not None
    turned = {
        (e.src, e.dst, e.new_src, e.new_dst)
        for e in result.capture_trace
        if e.actor == "NAT" and e.kind == "translated" and e.msg_type == "HELLO"
    }
    assert ("10.0.1.2:5000", B_PUBLIC, A_PUBLIC, "10.0.1.3:5001") in turned
    # One entry for the pair, in the direction of whichever HELLO came first.
    table = result.conntrack["nat"]
    assert (
        f"src=10.0.1.2 dst={SAME_NAT_PUBLIC} sport=5000 dport=5001 src=10.0.1.3" in table
        or f"src=10.0.1.3 dst={SAME_NAT_PUBLIC} sport=5001 dport=5000 src=10.0.1.2" in table
    ), table


def test_with_hairpinning_and_private_endpoints_the_pair_ends_on_the_lan() -> None:
    """On a real LAN the hairpinned SUCCESS may win the race; the private answer right
    behind it still moves both peers onto the LAN (ICE's preference, RFC 8445 5.1.2.2)."""
    with SameNatLab(PRC, hairpin=True) as lab:
        result = lab.punch()
    assert result.connected and result.route is Route.PRIVATE, result.summary()
    assert result.route is campus_route(PRC, hairpinning=True, private=True)


def simulated_cgn_route(cell: str, home_a: str, home_b: str, seed: int = 0) -> Route | None:
    """The simulator's route for the lab's CGN cell: homes behind one hairpinning,
    endpoint-independent CGN (``same``) or one each, the ladder on (RFC 5780 server)."""
    net = Network(seed=seed)
    net.add_server(rfc5780=True)
    cgn_config = nat_config(PRC, hairpinning=True)
    shared = net.add_nat("CGN", cgn_config)
    cgns = {
        side: shared if cell == "same" else net.add_nat(f"CGN {side}", cgn_config) for side in "AB"
    }
    homes = {
        side: net.add_nat(f"home {side}", kind, behind=cgns[side])
        for side, kind in (("A", home_a), ("B", home_b))
    }
    a, b = (
        net.add_peer(side, behind=homes[side], discover=True, config=PeerConfig()) for side in "AB"
    )
    a.register()
    b.register()
    assert net.run_until(
        lambda: all(p.id and p.discovery is not None and p.discovery.done for p in (a, b)), 60.0
    )
    assert b.id is not None
    a.connect(b.id)
    net.run_until(lambda: a.connected and b.connected, 20.0)
    return pair_route(a.core.route, b.core.route) if a.connected and b.connected else None


@pytest.mark.parametrize(
    ("cell", "publics"),
    [("same", {SAME_NAT_PUBLIC}), ("different", {SAME_NAT_PUBLIC, "203.0.113.12"})],
)
def test_homes_behind_carrier_grade_nats_take_the_simulators_route(
    cell: str, publics: set[str]
) -> None:
    with CgnLab(cell, PRC, PRC) as lab:
        result = lab.punch()
    assert result.connected, result.summary()
    # The server sees the CGNs' public addresses: neither the homes' 100.64/10 ones
    # nor the peers' own.
    assert {address.split(":")[0] for address in server_saw(result)} == publics
    assert result.route is simulated_cgn_route(cell, PRC, PRC), result.summary()
    assert result.route is Route.DIRECT
    if cell == "same":
        # Behind one CGN the server passed the local addresses on (one public IP), but
        # 10.0.2.2 is another home's LAN: the CGN's hairpin is what connected them.
        assert {src for src, _ in hellos(result, "B")} == {A_PUBLIC}


def test_cli_punch_same_nat_and_cgn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = str(tmp_path / "lab.png")
    assert main(["netlab", "punch", "--same-nat", "--no-ladder", "-o", png]) == 0
    out = capsys.readouterr().out
    assert "connected in" in out and ", private," in out
    argv = ["netlab", "punch", "--same-nat", "--no-private", "--no-ladder", "-o", png]
    assert main(argv) == 1
    assert "no connection" in capsys.readouterr().out
    assert main(["netlab", "punch", "--cgn", "same", "--pcap", str(tmp_path), "-o", png]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "behind one CGN: connected in" in first and "direct" in first
    # The CGN's own table holds the hairpin: B's home DNATed to A's, SNATed to the CGN.
    cgn = out.split("conntrack -L in CGN:")[1]
    assert (
        "src=100.64.0.11 dst=203.0.113.11 sport=5000 dport=5001 src=100.64.0.12" in cgn
        or "src=100.64.0.12 dst=203.0.113.11 sport=5001 dport=5000 src=100.64.0.11" in cgn
    ), cgn
