"""The lab's packet captures: each NAT's rewrite seen on both of its sides, agreeing with
what the receiving peer saw and with the kernel's conntrack table.

Needs root, iproute2, nftables, tcpdump, conntrack and tshark; CI has them
(PUNCHLAB_REQUIRE_NETLAB turns a skip into a failure).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from punchlab.cli import main
from punchlab.netlab import Lab, LabResult
from punchlab.netlab.capture import capture_points
from punchlab.netlab.lab import ALTERNATE_SERVER_IP, SERVER_IP
from punchlab.pcap import Sighting, capture_table
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.netlab

require_lab("the lab's captures", ("tcpdump", "conntrack", "tshark"))


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> LabResult:
    folder = tmp_path_factory.mktemp("capture")
    with Lab("port-restricted-cone", "port-restricted-cone") as lab:
        result = lab.punch(capture=folder)
    assert result.connected, result.summary()
    return result


def read_back(path: Path) -> list[list[str]]:
    command = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=/t"]
    for field in ("frame.interface_name", "ip.src", "udp.srcport", "ip.dst", "udp.dstport"):
        command += ["-e", field]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]


def test_the_capture_has_a_named_interface_per_link(captured: LabResult) -> None:
    assert captured.capture is not None
    rows = read_back(captured.capture)
    links = {point.link for point in capture_points({"a": "x", "b": "y"})}
    assert {row[0] for row in rows} == links
    assert len(rows) >= 20


def test_every_hello_is_seen_before_and_after_nat_a_as_bob_and_conntrack_saw_it(
    captured: LabResult,
) -> None:
    assert captured.capture is not None
    rows = read_back(captured.capture)
    servers = (SERVER_IP, ALTERNATE_SERVER_IP)  # rendezvous and RFC 5780 (the ladder's tests)
    lan = [r for r in rows if r[0] == "NAT A LAN" and r[1] == "10.0.1.2" and r[3] not in servers]
    outside = {tuple(r[1:]) for r in rows if r[0] == "NAT A outside"}
    assert lan, "no datagram from Alice to Bob on NAT A's LAN"
    bob_saw = {e.src for e in captured.trace.filter(actors=["B"], kinds=["delivered"])}
    for row in lan:
        public = ("203.0.113.11", row[2], row[3], row[4])
        assert public in outside  # plain masquerade kept the port
        assert f"203.0.113.11:{row[2]}" in bob_saw
    table = captured.conntrack["a"]
    assert f"src=10.0.1.2 dst={lan[0][3]} sport={lan[0][2]} dport={lan[0][4]}" in table
    assert f"dst=203.0.113.11 sport={lan[0][4]} dport={lan[0][2]}" in table


def test_the_capture_table_reads_like_wiresharks_list() -> None:
    seen = [Sighting(1.0, "NAT A LAN", ("10.0.1.2", 5000), ("203.0.113.1", 8089), b"{}")]
    assert "NAT A LAN  10.0.1.2:5000  203.0.113.1:8089" in capture_table(seen)


def test_netlab_punch_writes_the_capture_and_the_conntrack_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = str(tmp_path / "diagram.png")
    argv = ["netlab", "punch", "--nat-b", "symmetric", "--no-ladder", "--pcap", str(tmp_path)]
    code = main([*argv, "-o", png])
    out = capsys.readouterr().out
    assert code == 1 and "capture written to" in out  # port-restricted x symmetric cannot punch
    assert "conntrack -L in NAT A:" in out and "[UNREPLIED]" in out
    assert "read it with: tshark -r" in out and "udp.port==5000,json" in out
    assert list(tmp_path.glob("lab-*.pcapng"))


def test_the_captures_give_the_nats_lifelines_with_their_rewrites_and_drops(
    captured: LabResult,
) -> None:
    from punchlab.diagram_lifelines import lifeline_order

    trace = captured.capture_trace
    assert trace is not None
    assert lifeline_order(trace) == ["A", "NAT A", "server", "NAT B", "B"]
    rewritten = {e.packet: e for e in trace.filter(actors=["NAT A"], kinds=["translated"])}
    for event in trace.filter(actors=["A"], types=["HELLO"], kinds=["sent"]):
        assert rewritten[event.packet].new_src.startswith("203.0.113.11:")
    delivered = {e.packet for e in trace.filter(actors=["B"], types=["HELLO"], kinds=["delivered"])}
    dropped = {e.packet for e in trace.filter(types=["HELLO"], kinds=["dropped"])}
    assert delivered and not delivered & dropped  # each datagram ends once
