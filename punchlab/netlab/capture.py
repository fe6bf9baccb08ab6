"""Packet captures in the real NAT lab: every link on both sides of every NAT.

The kernel's NAT writes no trace, so the lab listens instead: ``tcpdump`` on
each NAT's inside and outside interface (and on the server's), one file per
link. :func:`merge` turns them into one pcapng file whose interfaces are
named after the links ("NAT A LAN", "NAT A outside", ...), so Wireshark shows
each datagram before and after the kernel rewrote it. :func:`conntrack_table`
is the kernel's own view of the same mappings (``conntrack -L``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dpkt

from punchlab.netlab.system import LabUnavailable
from punchlab.pcap import Sighting, write_pcapng

if TYPE_CHECKING:
    from punchlab.netlab.lab import Lab

__all__ = ["CapturePoint", "Captures", "capture_points", "conntrack_table", "merge"]


@dataclass(frozen=True)
class CapturePoint:
    """One interface to listen on: in which box, which interface, and the link's name."""

    role: str
    interface: str
    link: str


def capture_points(kinds: dict[str, str]) -> list[CapturePoint]:
    """Both sides of each NAT, the server's link, and a peer on the public network."""
    points = [CapturePoint("srv", "eth0", "server link")]
    for side, kind in kinds.items():
        name = side.upper()
        if kind == "none":
            points.append(CapturePoint(f"peer-{side}", "eth0", f"peer {name} link"))
        else:
            points.append(CapturePoint(f"nat-{side}", "in0", f"NAT {name} LAN"))
            points.append(CapturePoint(f"nat-{side}", "out0", f"NAT {name} outside"))
    return points


class Captures:
    """``tcpdump`` on every capture point of a lab, from :meth:`start` to :meth:`stop`."""

    def __init__(self, lab: Lab, directory: Path) -> None:
        self.lab, self.directory = lab, directory
        self.points = capture_points(lab.kinds)
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
            assert process.stderr is not None
            async with asyncio.timeout(ready_within):
                while b"listening on" not in await process.stderr.readline():
                    if process.returncode is not None:
                        raise RuntimeError(f"tcpdump on {point.link} did not start")

    async def stop(self) -> None:
        """Stop every tcpdump (SIGINT: it writes what it has) and wait for them."""
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
        for process in self._processes:
            try:
                async with asyncio.timeout(10):
                    await process.communicate()
            except TimeoutError:
                process.kill()
                await process.communicate()
        self._processes.clear()

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


def merge(captures: Captures, path: Path) -> Path:
    """One pcapng file for the whole run, an interface per link."""
    return write_pcapng(captures.sightings(), path)


def conntrack_table(lab: Lab, side: str) -> str:
    """The kernel's UDP connection-tracking entries in NAT ``side``'s box (its mappings)."""
    from punchlab.netlab.system import run

    if shutil.which("conntrack") is None:
        return "(conntrack is not installed: apt-get install conntrack)"
    box = lab.ns(f"nat-{side}")
    return run(["ip", "netns", "exec", box, "conntrack", "-L", "-p", "udp"], check=False).strip()
