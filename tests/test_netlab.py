"""The real NAT lab against the simulator's claims: namespaces, nftables, the kernel's NAT.

Needs root, iproute2 and nftables. Skipped only where they are missing; CI
installs them and sets PUNCHLAB_REQUIRE_NETLAB, which turns a skip into a
failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from punchlab.cli import main
from punchlab.netlab import (
    LAB_KINDS,
    Lab,
    LabResult,
    cleanup_leftovers,
    namespaces,
)
from punchlab.netlab.system import PREFIX
from punchlab.peer import PeerConfig
from punchlab.sim import success_matrix
from punchlab.traversal import Route
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.netlab

require_lab("the NAT lab")


def punch(nat_a: str, nat_b: str, **options: object) -> tuple[bool, LabResult]:
    with Lab(nat_a, nat_b) as lab:
        result = lab.punch(**options)
    return result.connected, result


def test_port_restricted_pair_connects_and_chats_both_ways() -> None:
    connected, result = punch("port-restricted-cone", "port-restricted-cone")
    assert connected, result.summary()
    assert result.a.texts == ["hello from B #1"]
    assert result.b.texts == ["hello from A #1"]
    # The server saw the NATs' public addresses, not the private ones.
    registrations = [e for e in result.trace if e.actor == "server" and e.kind == "delivered"]
    assert {e.src.split(":")[0] for e in registrations} == {"203.0.113.11", "203.0.113.12"}


def test_a_public_peer_connects_to_one_behind_a_symmetric_nat() -> None:
    connected, result = punch("none", "symmetric")
    assert connected, result.summary()


@pytest.mark.parametrize(
    ("nat_a", "nat_b"), [("symmetric", "symmetric"), ("port-restricted-cone", "symmetric")]
)
def test_pairs_that_cannot_punch_fail_clearly(nat_a: str, nat_b: str) -> None:
    connected, result = punch(nat_a, nat_b, punch_timeout=3.0, ladder=False)
    assert not connected
    for side in (result.a, result.b):
        assert side.exit_code == 1
        assert side.failure == "no SUCCESS from the peer before the deadline"


def test_a_port_restricted_cone_and_a_symmetric_nat_connect_by_birthday_probing() -> None:
    connected, result = punch("port-restricted-cone", "symmetric")
    assert connected, result.summary()
    # About 1 run in 60 needs more than 1,024 probes: then the relay takes over.
    assert result.route in (Route.BIRTHDAY, Route.RELAYED), result.summary()
    print(result.summary())
    if result.route is Route.BIRTHDAY:
        assert 0 < result.probes <= 1024
    assert result.a.texts == ["hello from B #1"] and result.b.texts == ["hello from A #1"]


def test_two_symmetric_nats_connect_through_the_relay() -> None:
    connected, result = punch("symmetric", "symmetric")
    assert connected and result.route is Route.RELAYED, result.summary()
    relayed = [e for e in result.trace if e.actor == "server" and e.msg_type == "RELAY"]
    assert relayed  # the server saw (and forwarded) the relayed datagrams
    assert result.a.texts == ["hello from B #1"] and result.b.texts == ["hello from A #1"]


def test_the_real_nats_agree_with_the_simulator_for_every_pair() -> None:
    predicted = success_matrix(LAB_KINDS, config=PeerConfig(ladder=False))
    disagreements = []
    for a in LAB_KINDS:
        for b in LAB_KINDS:
            connected, result = punch(a, b, punch_timeout=3.0, ladder=False)
            if connected != predicted.connected(a, b):
                disagreements.append(result.summary())
    assert disagreements == []


def test_the_real_nats_take_the_simulators_route_for_every_pair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert netlab_cli_main(["matrix"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "25/25 pairs agree with the simulator" in out
    assert "symmetric <-> symmetric: connects, relayed; agrees" in out


def test_heartbeats_keep_a_chat_alive_past_the_kernels_udp_timeout() -> None:
    with Lab("port-restricted-cone", "port-restricted-cone", conntrack_timeout=5) as lab:
        result = lab.punch(rounds=2, silence=60.0, heartbeat=3.0)
    assert result.connected, result.summary()
    assert result.b.texts == ["hello from A #1", "hello from A #2"]


def test_without_heartbeats_the_kernel_forgets_the_mapping() -> None:
    with Lab("port-restricted-cone", "port-restricted-cone", conntrack_timeout=5) as lab:
        result = lab.punch(rounds=2, silence=12.0, heartbeat=0)
    assert not result.connected
    assert result.b.texts == ["hello from A #1"]  # the second line never arrived
    assert result.b.failure == "no answer in round 2"


def test_a_failure_inside_the_lab_still_removes_every_namespace() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab("symmetric", "full-cone") as lab:
        assert len(lab.created) == 6
        raise RuntimeError("boom")
    assert not [n for n in namespaces() if n.startswith(lab.base)]


def test_a_veth_pair_that_cannot_be_moved_is_not_left_in_the_root_namespace() -> None:
    def root_links() -> set[str]:
        listing = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
        ).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()}

    before = root_links()
    try:
        # The first move fails: both ends are still in the root namespace,
        # where deleting the lab's namespaces would never reach them.
        with (
            Lab("port-restricted-cone", "port-restricted-cone") as lab,
            pytest.raises(RuntimeError, match="netns"),
        ):
            lab._veth(f"{lab.base}no-such-namespace", "t0", lab.ns("inet"), "t1")
        assert root_links() == before
    finally:
        for name in root_links() - before:  # what a failure above left behind
            subprocess.run(["ip", "link", "del", name], check=False)


def test_cleanup_removes_only_our_leftovers() -> None:
    ours, other = f"{PREFIX}{os.getpid()}-leftover", "plt-not-ours"
    for name in (ours, other):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        removed = cleanup_leftovers(f"{PREFIX}{os.getpid()}-")
        assert removed == [ours]
        assert (
            other
            in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            ).stdout
        )
    finally:
        subprocess.run(["ip", "netns", "delete", other], check=False)
        subprocess.run(["ip", "netns", "delete", ours], check=False)
    with pytest.raises(ValueError, match="refusing"):
        cleanup_leftovers("not-ours-")


def test_link_delay_slows_the_punch_by_the_round_trips_it_needs() -> None:
    with Lab("full-cone", "full-cone", delay_ms=20) as lab:
        assert lab.link_emulation in ("netem", "wire")  # wire: this kernel has no netem
        result = lab.punch()
    assert result.connected and result.time_to_connect is not None
    rtt = 4 * 0.020  # two public links between the NATs, 20 ms each way
    # The HTTP answer takes one round trip, the punch another; nothing can be faster.
    assert result.time_to_connect >= 2 * rtt * 0.95


def test_a_link_that_loses_everything_stops_the_lab_with_a_clear_error() -> None:
    # Partial loss is random in a real run (and TCP to the server suffers it
    # too); total loss is certain, and shows the loss reaches every link.
    with (
        Lab("none", "none", loss=1.0) as lab,
        pytest.raises(RuntimeError, match="did not register"),
    ):
        lab.punch(answer_timeout=1.0)


def test_cli_punch_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = str(tmp_path / "lab.png")
    assert netlab_cli_main(["punch", "-o", png]) == 0
    assert "connected" in capsys.readouterr().out
    argv = ["punch", "--nat-a", "symmetric", "--nat-b", "symmetric", "-o", png]
    assert netlab_cli_main([*argv, "--no-ladder"]) == 1
    out = capsys.readouterr().out
    assert "no connection" in out and "sequence diagram written" in out
    assert netlab_cli_main(argv) == 0
    assert "connected in" in capsys.readouterr().out.splitlines()[0]


def test_cli_says_why_the_lab_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("punchlab.netlab.lab.lab_problems", lambda: ["needs root"])
    assert netlab_cli_main(["punch"]) == 2
    assert "needs root" in capsys.readouterr().err


def netlab_cli_main(arguments: list[str]) -> int:
    return main(["netlab", *arguments])
