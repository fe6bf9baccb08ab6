"""Packet captures in the real NAT lab: every link on both sides of every NAT.

The kernel's NAT writes no trace, so the lab listens instead: ``tcpdump`` on
each NAT's inside and outside interface (and on the server's), one file per
link. The lab writes them as one pcapng file whose interfaces are
named after the links ("NAT A LAN", "NAT A outside", ...), so Wireshark shows
each datagram before and after the kernel rewrote it. :func:`conntrack_table`
is the kernel's own view of the same mappings (``conntrack -L``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dpkt

from punchlab.netlab.system import LabUnavailable, interrupt_all, run
from punchlab.pcap import Sighting
from punchlab.trace import EventKind, Trace

if TYPE_CHECKING:
    from punchlab.netlab.lab import Lab

__all__ = [
    "CapturePlan",
    "CapturePoint",
    "Captures",
    "capture_points",
    "capture_trace",
    "conntrack_table",
    "two_nat_plan",
]


@dataclass(frozen=True)
class CapturePoint:
    """One interface to listen on: in which box, which interface, and the link's name."""

    role: str
    interface: str
    link: str


@dataclass(frozen=True)
class CapturePlan:
    """Where a lab listens and who is who in what it hears.

    A NAT's links are named ``"<NAT> LAN"`` and ``"<NAT> outside"``: that is how a
    datagram seen on one and then the other is known to have crossed that NAT.
    """

    points: tuple[CapturePoint, ...]
    #: Each host's IP -> its actor (``A``, ``B``, ``server``).
    hosts: dict[str, str]
    #: Each NAT's outside IP -> the NAT's name (``NAT A``, ``CGN``).
    nats: dict[str, str]
    #: Each host's actor -> the link it sits on (where a datagram to it is delivered).
    own_links: dict[str, str]
    #: Which boxes' ``conntrack -L`` to keep: a key for ``LabResult.conntrack`` -> a role.
    conntrack: dict[str, str]


def two_nat_plan(kinds: dict[str, str]) -> CapturePlan:
    """The lab's usual plan (:func:`punchlab.netlab.lab.side_addresses`): both sides of
    each NAT, the server's link, and a peer on the public network."""
    from punchlab.netlab.lab import SERVER_IP, side_addresses

    points = [CapturePoint("srv", "eth0", "server link")]
    hosts, nats = {SERVER_IP: "server"}, {}
    own_links, conntrack = {"server": "server link"}, {}
    for index, (side, kind) in enumerate(sorted(kinds.items()), start=1):
        name, plan = side.upper(), side_addresses(index, kind)
        hosts[plan.peer] = name
        if kind == "none":
            points.append(CapturePoint(f"peer-{side}", "eth0", f"peer {name} link"))
            own_links[name] = f"peer {name} link"
        else:
            points.append(CapturePoint(f"nat-{side}", "in0", f"NAT {name} LAN"))
            points.append(CapturePoint(f"nat-{side}", "out0", f"NAT {name} outside"))
            own_links[name] = f"NAT {name} LAN"
            nats[plan.public] = f"NAT {name}"
            conntrack[side] = f"nat-{side}"
    return CapturePlan(tuple(points), hosts, nats, own_links, conntrack)


def capture_points(kinds: dict[str, str]) -> list[CapturePoint]:
    """Both sides of each NAT, the server's link, and a peer on the public network."""
    return list(two_nat_plan(kinds).points)


class Captures:
    """``tcpdump`` on every capture point of a lab, from :meth:`start` to :meth:`stop`."""

    def __init__(self, lab: Lab, directory: Path) -> None:
        self.lab, self.directory = lab, directory
        self.points = list(lab.capture_plan().points)
        self.files = {p: directory / f"{p.role}-{p.interface}.pcap" for p in self.points}
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, ready_within: float = 10.0) -> None:
        """Start listening everywhere, and wait until every tcpdump says it listens."""
        if shutil.which("tcpdump") is None:
            raise LabUnavailable("capturing needs tcpdump (apt-get install tcpdump)")
        for point in self.points:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", self.lab.ns(point.role),
                "tcpdump", "-i", point.interface, "-w", str(self.files[point]), "-U", "-n",
                # Without it packets wait in the kernel's buffer, and SIGINT loses them.
                "--immediate-mode",
                "-s", "0", "udp",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self._processes.append(process)
            await self._listening(process, point, ready_within)

    @staticmethod
    async def _listening(
        process: asyncio.subprocess.Process, point: CapturePoint, within: float
    ) -> None:
        """Until tcpdump says it listens; a tcpdump that ends first (EOF) is an error."""
        assert process.stderr is not None
        said = b""
        async with asyncio.timeout(within):
            while b"listening on" not in said:
                line = await process.stderr.readline()
                if not line:
                    await process.wait()
                    why = said.decode(errors="replace").strip()
                    raise LabUnavailable(f"tcpdump on {point.link} did not start: {why}")
                said += line

    async def stop(self) -> None:
        """Stop every tcpdump (SIGINT: it writes what it has) and wait for them."""
        await interrupt_all(self._processes)

    def sightings(self) -> list[Sighting]:
        """Every captured UDP datagram, on its link, in time order."""
        seen = [s for point in self.points for s in _read(self.files[point], point.link)]
        return sorted(seen, key=lambda s: s.time)


def _read(path: Path, link: str) -> list[Sighting]:
    if not path.exists():
        return []
    seen = []
    with path.open("rb") as stream:
        for time, frame in dpkt.pcap.Reader(stream):
            ip = dpkt.ethernet.Ethernet(frame).data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            udp = ip.data
            if not isinstance(udp, dpkt.udp.UDP):
                continue
            src, dst = (_ip_text(ip.src), udp.sport), (_ip_text(ip.dst), udp.dport)
            seen.append(Sighting(float(time), link, src, dst, bytes(udp.data)))
    return seen


def _ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def conntrack_table(lab: Lab, side: str, role: str | None = None) -> str:
    """The kernel's UDP connection-tracking entries in NAT ``side``'s box (its mappings),
    or in the box of ``role`` when given."""
    if shutil.which("conntrack") is None:
        return "(conntrack is not installed: apt-get install conntrack)"
    box = lab.ns(role or f"nat-{side}")
    return run(["ip", "netns", "exec", box, "conntrack", "-L", "-p", "udp"], check=False).strip()


# -- from packets back to a trace with NAT lifelines ---------------------------------------

#: How long a NAT may take to pass a datagram on (it takes microseconds; CI may be busy).
NAT_HOP_WITHIN = 0.1
#: Beyond a link's own delay, how late another vantage point may see a datagram.
LINK_MARGIN = 0.1


def _continues(
    last: Sighting,
    new: Sighting,
    seen_on: frozenset[str],
    link_delay: float,
    nat_ips: Mapping[str, str] | None = None,
) -> str | None:
    """How ``new`` continues ``last``'s datagram: "same" (seen again from another vantage
    point across a link), "out" or "in" (a NAT rewrote the source or the destination),
    "turn" (a NAT hairpinned it: both), or None (another datagram).

    ``nat_ips``: each NAT's name -> its outside address; without it nothing is a hairpin.
    """
    if new.data != last.data:
        return None
    late = new.time - last.time
    if new.link in seen_on:
        # A datagram crosses each link once (a second sighting is a retry), but for a
        # hairpin, which crosses its NAT's LAN twice.
        hairpin = late <= NAT_HOP_WITHIN and _turned(last, new, nat_ips or {})
        return "turn" if hairpin else None
    if (new.src, new.dst) == (last.src, last.dst):
        return "same" if late <= 2 * link_delay + LINK_MARGIN else None
    if late > NAT_HOP_WITHIN:
        return None
    nat = last.link.rsplit(" ", 1)[0]
    if last.link.endswith(" LAN") and new.link == f"{nat} outside" and new.dst == last.dst:
        return "out"
    if last.link.endswith(" outside") and new.link == f"{nat} LAN" and new.src == last.src:
        return "in"
    return None


def _turned(last: Sighting, new: Sighting, nat_ips: Mapping[str, str]) -> bool:
    """Whether the NAT of ``last``'s LAN hairpinned it into ``new``: sent to the NAT's
    own address, it came back into the same LAN from that address (RFC 4787 section 6:
    the sender's public endpoint) to the inside host that owns the port it was sent to
    (the port kept). Not an answer from that host, with the same bytes (a HELLO is the
    same both ways): that one is sent *from* the host, to the NAT's address."""
    nat_ip = nat_ips.get(last.link.removesuffix(" LAN")) if last.link.endswith(" LAN") else None
    return (
        nat_ip is not None
        and new.link == last.link
        and last.dst[0] == nat_ip == new.src[0]
        and new.dst[0] != nat_ip
        and new.dst[1] == last.dst[1]
    )


def _chains(
    packets: list[Sighting], link_delay: float = 0.0, nat_ips: Mapping[str, str] | None = None
) -> list[list[Sighting]]:
    """The sightings grouped by datagram, each in the order the datagram travelled.

    Copies of a retried datagram look alike. Across a link they arrive in the
    order they left (the oldest copy first); through a NAT, which passes a
    datagram on within microseconds, the most recent copy is the one rewritten.
    """
    chains: list[list[Sighting]] = []
    horizon = 2 * link_delay + LINK_MARGIN + NAT_HOP_WITHIN
    recent: list[list[Sighting]] = []
    for packet in packets:
        recent = [c for c in recent if packet.time - c[-1].time <= horizon]
        ways = [
            (c, _continues(c[-1], packet, frozenset(s.link for s in c), link_delay, nat_ips))
            for c in recent
        ]
        across = [c for c, way in ways if way == "same"]
        through = [c for c, way in ways if way in ("out", "in", "turn")]
        if across:
            min(across, key=lambda c: c[-1].time).append(packet)
        elif through:
            max(through, key=lambda c: c[-1].time).append(packet)
        else:
            chains.append([packet])
            recent.append(chains[-1])
    return chains


def capture_trace(
    packets: list[Sighting], plan: CapturePlan | dict[str, str], link_delay: float = 0.0
) -> Trace:
    """A trace of the run as the captures saw it, with the NATs as actors: each datagram
    sent, rewritten by each NAT it crossed, and delivered, or dropped where it entered a
    NAT and never came out. ``plan``: the lab's, or the NAT kinds of the usual one."""
    if not isinstance(plan, CapturePlan):
        plan = two_nat_plan(plan)
    hosts = plan.hosts
    trace = Trace(keep_data=True)
    nat_ips = {name: ip for ip, name in plan.nats.items()}
    for number, chain in enumerate(_chains(packets, link_delay, nat_ips)):
        first, last = chain[0], chain[-1]
        sender = hosts.get(first.src[0])
        if sender is None:
            continue  # a datagram from outside the lab's plan: nobody to draw it from
        trace.datagram(
            EventKind.SENT, first.time, sender, first.src, first.dst, first.data, packet=number
        )
        for before, after in itertools.pairwise(chain):
            if (after.src, after.dst) != (before.src, before.dst):  # out, in, or turned round
                nat = before.link.rsplit(" ", 1)[0]
                trace.datagram(
                    EventKind.TRANSLATED, after.time, nat, before.src, before.dst, before.data,
                    packet=number,
                    new_src=after.src if after.src != before.src else "",
                    new_dst=after.dst if after.dst != before.dst else "",
                )  # fmt: skip
        _ending(trace, last, number, plan)
    return Trace(sorted(trace.events, key=lambda event: event.time), keep_data=True)


def _ending(trace: Trace, last: Sighting, number: int, plan: CapturePlan) -> None:
    """How a datagram's journey ended, from where it was last seen.

    Delivered if it was last seen on its receiver's own link; dropped by a NAT if it
    was last seen outside the NAT it was addressed to, or on the NAT's LAN addressed
    to the NAT (it did not hairpin), or on a LAN that is not its receiver's (that NAT
    has no route to another network's private address); otherwise lost on the link it
    was last seen on (a NAT drops silently, and so does a lossy link).
    """
    receiver, nats = plan.hosts.get(last.dst[0]), plan.nats
    nat = nats.get(last.dst[0])
    if receiver is not None and last.link == plan.own_links.get(receiver):
        trace.datagram(
            EventKind.DELIVERED, last.time, receiver, last.src, last.dst, last.data,
            packet=number,
        )  # fmt: skip
    elif nat is not None and last.link == f"{nat} outside":
        trace.datagram(
            EventKind.DROPPED, last.time, nat, last.src, last.dst, last.data,
            reason="entered the NAT, never left it", packet=number,
        )  # fmt: skip
    elif nat is not None and last.link == f"{nat} LAN":
        trace.datagram(
            EventKind.DROPPED, last.time, nat, last.src, last.dst, last.data,
            reason="no hairpinning", packet=number,  # the simulator's word
        )  # fmt: skip
    elif receiver is not None and last.link.endswith(" LAN"):
        # A host's private address, last seen on another network's LAN: that
        # network's NAT has no route there (a private endpoint of another home).
        trace.datagram(
            EventKind.DROPPED, last.time, last.link.removesuffix(" LAN"), last.src, last.dst,
            last.data, reason="no route to another LAN", packet=number,
        )  # fmt: skip
    else:
        link = last.link if last.link.endswith(" LAN") else "internet"
        trace.datagram(
            EventKind.DROPPED, last.time, link, last.src, last.dst, last.data,
            reason="lost on link", packet=number,
        )  # fmt: skip
