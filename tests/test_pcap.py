"""Traces as pcapng files, read back by tshark: one packet per datagram per link.

tshark comes from the Debian package ``tshark`` (``scripts/install-system-deps.sh``);
without it these tests skip, unless ``PUNCHLAB_REQUIRE_TSHARK`` is set (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from punchlab.netlab.capture import CapturePlan, CapturePoint
from punchlab.pcap import Sighting, decode_rules, sightings
from punchlab.scenes import natcheck
from punchlab.sim import punch
from punchlab.trace import EventKind, Trace

FIELDS = ("frame.interface_name", "ip.src", "udp.srcport", "ip.dst", "udp.dstport")


def tshark(path: Path, *options: str) -> list[list[str]]:
    if shutil.which("tshark") is None:
        if os.environ.get("PUNCHLAB_REQUIRE_TSHARK"):
            pytest.fail("PUNCHLAB_REQUIRE_TSHARK is set but tshark is not installed", pytrace=False)
        pytest.skip("tshark is not installed")
    command = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=/t", *options]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]


def fields(*names: str) -> list[str]:
    return [option for name in names for option in ("-e", name)]


@pytest.fixture(scope="module")
def punched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trace, Path]:
    result = punch("restricted-cone", "symmetric", seed=0, texts=2, timeout=2.0)
    assert result.connected
    path = tmp_path_factory.mktemp("pcap") / "punch.pcapng"
    result.trace.save_pcap(path)
    return result.trace, path


def test_one_packet_per_datagram_per_link(punched: tuple[Trace, Path]) -> None:
    trace, path = punched
    sent = [e for e in trace if e.kind is EventKind.SENT and e.msg_type != "HTTP"]
    translated = [e for e in trace if e.kind is EventKind.TRANSLATED]
    rows = tshark(path, *fields("frame.number"))
    assert len(rows) == len(sent) + len(translated) == len(sightings(trace))


def test_each_rewrite_shows_on_both_sides_of_its_nat(punched: tuple[Trace, Path]) -> None:
    trace, path = punched
    rows = {tuple(row) for row in tshark(path, *fields(*FIELDS))}
    for event in trace.filter(kinds=["translated"]):
        old_src, old_dst = event.src.rsplit(":", 1), event.dst.rsplit(":", 1)
        new_src = (event.new_src or event.src).rsplit(":", 1)
        new_dst = (event.new_dst or event.dst).rsplit(":", 1)
        lan = f"{event.actor} LAN"
        if event.new_src:  # outbound: the LAN saw the private source, the internet the public
            assert (lan, *old_src, *old_dst) in rows
            assert ("internet", *new_src, *new_dst) in rows
        else:
            assert ("internet", *old_src, *old_dst) in rows
            assert (lan, *new_src, *new_dst) in rows


def test_the_json_decodes_to_punchlabs_types(punched: tuple[Trace, Path]) -> None:
    trace, path = punched
    rules = [option for rule in decode_rules(trace) for option in ("-d", rule)]
    decoded = [row[0].split(",")[0] for row in tshark(path, *rules, *fields("json.value.string"))]
    expected = [s.data.split(b'"')[3].decode() for s in sightings(trace)]
    assert decoded == expected
    assert {"REGISTRATION", "INITIATE_CHAT", "HELLO", "SUCCESS", "TEXT"} <= set(decoded)


def test_checksums_are_right_and_http_is_a_comment(punched: tuple[Trace, Path]) -> None:
    _, path = punched
    checks = ("-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE")
    statuses = tshark(path, *checks, *fields("ip.checksum.status", "udp.checksum.status"))
    assert statuses and all(row == ["1", "1"] for row in statuses)  # 1: "Good", 0: "Bad"
    comments = [row[0] for row in tshark(path, *fields("frame.comment")) if row[0]]
    assert any("POST /start-communication" in comment for comment in comments)


def test_stun_decodes_natively(tmp_path: Path) -> None:
    check = natcheck("ADM/APDF")
    path = check.network.trace.save_pcap(tmp_path / "natcheck.pcapng")
    rows = tshark(path, "-Y", "stun", *fields("stun.type"))
    requests = [e for e in check.network.trace if e.kind is EventKind.SENT and e.actor == "Alice"]
    assert len(rows) >= len(requests) > 0


def test_a_real_trace_counts_each_datagram_once(tmp_path: Path) -> None:
    """A loopback run traces each datagram twice (sent and delivered): one packet."""
    pcap = tmp_path / "loopback.pcapng"
    command = [sys.executable, "-m", "punchlab", "demo", "--loopback", "--pcap", str(pcap)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read it with: tshark -r" in done.stdout and "-d udp.port==" in done.stdout
    rows = tshark(pcap, *fields("frame.interface_name", "ip.src"))
    assert rows and {row[0] for row in rows} == {"internet"}
    assert all(row[1] == "127.0.0.1" for row in rows)


def test_an_ipv6_datagram_is_an_ipv6_packet(tmp_path: Path) -> None:
    trace = Trace(keep_data=True)
    trace.datagram(EventKind.SENT, 1.0, "A", ("2001:db8::1", 5000), ("2001:db8::2", 8089), b"{}")
    path = trace.save_pcap(tmp_path / "v6.pcapng")
    assert tshark(path, *fields("ipv6.src", "ipv6.dst", "udp.checksum")) and tshark(
        path, "-o", "udp.check_checksum:TRUE", *fields("udp.checksum.status")
    ) == [["1"]]


async def test_chat_writes_its_own_capture_when_asked(tmp_path: Path) -> None:
    """A student's chat that registers, then leaves: its registration is in the file."""
    import asyncio

    from punchlab.aio import RendezvousServer

    pcap = tmp_path / "chat.pcapng"
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        assert server.udp_address is not None
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "punchlab", "chat", "--server", server.url, "--pcap", str(pcap),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None and process.stdin is not None
        said = b""
        async with asyncio.timeout(30):
            while b"Your ID:" not in said:
                said += await process.stdout.readline()
        process.stdin.close()  # end of input: the chat leaves and writes its capture
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, (said + out).decode()
    assert "capture written to" in out.decode()
    rules = ["-d", f"udp.port=={server.udp_address[1]},json"]
    types = [row[0].split(",")[0] for row in tshark(pcap, *rules, *fields("json.value.string"))]
    assert types[:2] == ["REGISTRATION", "REGISTRATION"]  # the request, and the answer


def test_the_scripted_peer_writes_its_capture_too(tmp_path: Path) -> None:
    pcap = tmp_path / "peer.pcapng"
    script = (
        "import asyncio, subprocess, sys\n"
        "from punchlab.aio import RendezvousServer\n"
        "async def main():\n"
        "    async with RendezvousServer('127.0.0.1', 0, 0) as s:\n"
        "        p = await asyncio.create_subprocess_exec(sys.executable, '-m', 'punchlab',\n"
        "            'peer', '--server', s.url, '--timeout', '1', '--punch-timeout', '1',\n"
        f"            '--pcap', {str(pcap)!r})\n"
        "        await p.wait()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], timeout=120, check=True)
    rows = tshark(pcap, *fields("ip.src", "ip.dst"))
    assert rows and all(row == ["127.0.0.1", "127.0.0.1"] for row in rows)


# -- the lab's reconstruction from captures, on made-up sightings (no lab needed) ---------

KINDS = {"a": "port-restricted-cone", "b": "port-restricted-cone"}
HELLO = b'{"type":"HELLO","payload":"..."}'
A_LAN, A_PUB, B_PUB = ("10.0.1.2", 5000), ("203.0.113.11", 5000), ("203.0.113.12", 5000)


def test_copies_of_a_retry_cross_a_slow_link_in_the_order_they_left() -> None:
    from punchlab.netlab.capture import _chains

    seen = [
        Sighting(0.000, "NAT A LAN", A_LAN, B_PUB, HELLO),
        Sighting(0.001, "NAT A outside", A_PUB, B_PUB, HELLO),
        Sighting(0.050, "NAT A LAN", A_LAN, B_PUB, HELLO),
        Sighting(0.051, "NAT A outside", A_PUB, B_PUB, HELLO),
        Sighting(0.061, "NAT B outside", A_PUB, B_PUB, HELLO),  # 60 ms later: the first copy
        Sighting(0.111, "NAT B outside", A_PUB, B_PUB, HELLO),
    ]
    first, second = _chains(seen, link_delay=0.06)
    assert [s.time for s in first] == [0.000, 0.001, 0.061]
    assert [s.time for s in second] == [0.050, 0.051, 0.111]


def test_a_datagram_lost_on_the_wire_is_not_blamed_on_a_nat_nor_delivered() -> None:
    from punchlab.netlab.capture import capture_trace

    to_server = ("203.0.113.1", 8089)
    seen = [
        Sighting(0.0, "NAT A LAN", A_LAN, to_server, HELLO),
        Sighting(0.0001, "NAT A outside", A_PUB, to_server, HELLO),  # never on the server's link
        Sighting(1.0, "NAT A LAN", A_LAN, B_PUB, HELLO),
        Sighting(1.0001, "NAT A outside", A_PUB, B_PUB, HELLO),  # never outside NAT B
    ]
    ends = [e for e in capture_trace(seen, KINDS) if e.kind is not EventKind.SENT]
    assert [(e.kind, e.actor, e.reason) for e in ends if e.kind is EventKind.DROPPED] == [
        (EventKind.DROPPED, "internet", "lost on link"),
        (EventKind.DROPPED, "internet", "lost on link"),
    ]


def shared_nat_plan() -> CapturePlan:
    """One NAT (203.0.113.11) with A 10.0.1.2:5000 and B 10.0.1.3:5001 on its LAN."""
    points = (CapturePoint("nat", "lan0", "NAT LAN"), CapturePoint("nat", "out0", "NAT outside"))
    hosts = {"10.0.1.2": "A", "10.0.1.3": "B"}
    own = {"A": "NAT LAN", "B": "NAT LAN"}
    return CapturePlan(points, hosts, {"203.0.113.11": "NAT"}, own, {})


def test_a_hairpinned_datagram_is_one_datagram_the_nat_turned_round() -> None:
    from punchlab.netlab.capture import capture_trace

    a, b = ("10.0.1.2", 5000), ("10.0.1.3", 5001)
    a_pub, b_pub = ("203.0.113.11", 5000), ("203.0.113.11", 5001)
    seen = [
        Sighting(0.0, "NAT LAN", a, b_pub, HELLO),  # A to B's public endpoint...
        Sighting(0.0001, "NAT LAN", a_pub, b, HELLO),  # ...turned round, from A's public one
        Sighting(0.0002, "NAT LAN", b, a_pub, HELLO),  # B's own HELLO, the same bytes: another
        Sighting(0.0003, "NAT LAN", b_pub, a, HELLO),
    ]
    trace = capture_trace(seen, shared_nat_plan())
    turned = [(e.actor, e.new_src, e.new_dst) for e in trace if e.kind is EventKind.TRANSLATED]
    assert turned == [
        ("NAT", "203.0.113.11:5000", "10.0.1.3:5001"),
        ("NAT", "203.0.113.11:5001", "10.0.1.2:5000"),
    ]
    delivered = [(e.actor, e.src) for e in trace if e.kind is EventKind.DELIVERED]
    assert delivered == [("B", "203.0.113.11:5000"), ("A", "203.0.113.11:5001")]


def test_without_hairpinning_the_nat_is_blamed_for_a_datagram_to_its_own_address() -> None:
    from punchlab.netlab.capture import capture_trace

    seen = [Sighting(0.0, "NAT LAN", ("10.0.1.2", 5000), ("203.0.113.11", 5001), HELLO)]
    [dropped] = [e for e in capture_trace(seen, shared_nat_plan()) if e.kind is EventKind.DROPPED]
    assert dropped.actor == "NAT" and "no hairpinning" in dropped.reason
    # In the usual two-NAT lab, the same bytes back on a LAN are no hairpin.
    answer = [
        Sighting(0.0, "NAT B LAN", ("10.0.2.2", 5000), A_PUB, HELLO),
        Sighting(0.0001, "NAT B LAN", A_PUB, ("10.0.2.2", 5000), HELLO),
    ]
    trace = capture_trace(answer, KINDS)
    assert not [e for e in trace if e.kind is EventKind.TRANSLATED]


async def test_a_tcpdump_that_ends_before_listening_is_an_error_not_a_hang() -> None:
    import asyncio

    from punchlab.netlab.capture import CapturePoint, Captures
    from punchlab.netlab.system import LabUnavailable

    process = await asyncio.create_subprocess_exec(
        "sh", "-c", "echo 'no such device' >&2; exit 1", stderr=asyncio.subprocess.PIPE
    )
    point = CapturePoint("nat-a", "in0", "NAT A LAN")
    with pytest.raises(LabUnavailable, match="no such device"):
        await Captures._listening(process, point, 5.0)


def test_links_before_any_nat_and_through_a_nat_behind_a_nat() -> None:
    from punchlab.pcap import _link_after, _link_before
    from punchlab.trace import TraceEvent

    def moved(actor: str, new_src: str = "", new_dst: str = "") -> TraceEvent:
        kind = EventKind.TRANSLATED
        return TraceEvent(0.0, kind, actor, "x:1", "y:2", "HELLO", new_src=new_src, new_dst=new_dst)

    lost_inside = TraceEvent(0.0, EventKind.DROPPED, "NAT A LAN", "x:1", "y:2", "HELLO")
    assert _link_before(None, lost_inside) == "NAT A LAN"
    assert _link_before(None, None) == "internet"
    hairpin_at_cgn = moved("CGN", new_src="p:1", new_dst="q:2")
    assert _link_after(moved("home", new_src="h:1"), hairpin_at_cgn) == "CGN LAN"


def test_a_port_that_carries_stun_too_gets_no_json_rule() -> None:
    stun = bytes.fromhex("000100002112a442") + bytes(12)
    seen = [
        Sighting(0.0, "internet", ("192.0.2.5", 5000), ("203.0.113.1", 8089), b"{}"),
        Sighting(0.1, "internet", ("192.0.2.5", 6000), ("203.0.113.1", 8089), stun),
    ]
    assert decode_rules(seen) == ["udp.port==5000,json"]
