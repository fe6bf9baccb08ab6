"""The IPv6 lab: two peers behind real stateful firewalls (nftables inet), no translation.

Needs root, iproute2 and nftables (see tests/labguard.py); every namespace is
removed after each test, also when it fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from punchlab.cli import build_parser
from punchlab.netlab import namespaces
from punchlab.netlab.cli import _punch as netlab_punch
from punchlab.netlab.ipv6 import SIDES, V6Lab, firewall_rules, punch_through_firewalls
from punchlab.traversal import Route
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.netlab, pytest.mark.timeout(120)]

require_lab("the IPv6 lab")


def test_two_v6_peers_punch_through_their_firewalls_directly() -> None:
    result, drops, unsolicited = punch_through_firewalls()
    assert result.connected, result.summary()
    assert result.route is Route.DIRECT
    assert result.a.texts == ["hello from B #1"] and result.b.texts == ["hello from A #1"]
    assert unsolicited == 1  # default deny: nobody behind B asked for it
    assert all(n >= 0 for n in drops.values())
    # No translation: the server saw each peer's own address.
    registrations = [e for e in result.trace if e.actor == "server" and e.kind == "delivered"]
    assert {e.src for e in registrations} >= {f"[{SIDES[s][0]}]:5000" for s in "ab"}


def test_without_heartbeats_the_firewall_forgets_the_flow() -> None:
    with V6Lab(conntrack_timeout=5) as lab:
        result = lab.punch(rounds=2, silence=12.0, heartbeat=0)
        dropped = lab.dropped("a") + lab.dropped("b")
    assert not result.connected
    assert result.b.texts == ["hello from A #1"]
    assert result.b.failure == "no answer in round 2"
    assert dropped >= 1  # the second line, now unsolicited, was dropped


def test_a_failure_inside_the_v6_lab_still_removes_every_namespace() -> None:
    with pytest.raises(RuntimeError, match="boom"), V6Lab() as lab:
        assert len(lab.created) == 6
        assert "ct state established,related accept" in firewall_rules(outside="out0")
        raise RuntimeError("boom")
    assert not [n for n in namespaces() if n.startswith(lab.base)]


def test_cli_punch_ipv6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "v6.png"
    args = build_parser().parse_args(["netlab", "punch", "--ipv6", "-o", str(png)])
    assert netlab_punch(args) == 0
    out = capsys.readouterr().out
    assert "connected in" in out and "direct" in out and "(real IPv6 firewalls)" in out
    assert "an unsolicited datagram to B before the punch: 1 dropped by firewall B" in out
    assert "route: agrees" in out
    assert png.exists()
