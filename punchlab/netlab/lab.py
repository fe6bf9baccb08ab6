"""A real NAT lab: network namespaces, veth pairs, the kernel's own NAT.

Topology (one namespace per box, all named ``punchlab-<pid>-<n>-...``)::

    peer-a (10.0.1.2) -- nat-a (10.0.1.1 | 203.0.113.11) --+
                                                           +-- inet (bridge) -- srv (203.0.113.1)
    peer-b (10.0.2.2) -- nat-b (10.0.2.1 | 203.0.113.12) --+

A side of kind ``none`` puts its peer straight on the bridge (203.0.113.21/22).
The server and the peers are separate ``python -m punchlab`` processes inside
their namespaces; each writes its trace, and the lab merges them (one clock:
one machine) so :func:`punchlab.diagram.sequence_diagram` draws the real run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from punchlab.netlab.capture import (
    CapturePlan,
    Captures,
    capture_trace,
    conntrack_table,
    two_nat_plan,
)
from punchlab.netlab.nat_rules import LAB_KINDS, ruleset
from punchlab.netlab.system import (
    PREFIX,
    LabUnavailable,
    delete_namespace,
    interrupt_all,
    lab_problems,
    run,
)
from punchlab.pcap import Sighting, write_pcapng
from punchlab.trace import Trace
from punchlab.traversal import Route, pair_route, route_text

__all__ = ["Lab", "LabResult", "PeerRun", "SideAddresses", "side_addresses"]

SERVER_IP = "203.0.113.1"
#: The server's second address: with it, it is a full RFC 5780 server, so the
#: peers learn their NAT's mapping and the traversal ladder can choose a rung.
ALTERNATE_SERVER_IP = "203.0.113.2"
STUN_PORT = 3478
SERVER_URL = f"http://{SERVER_IP}:8088"
SUBNET = 24
_counter = itertools.count(1)


@dataclass(frozen=True)
class SideAddresses:
    """Where one side of the lab sits: the peer's own address, and where the internet sees it."""

    peer: str
    public: str
    #: The NAT's inside address, the peer's default route; None without a NAT.
    gateway: str | None


def side_addresses(index: int, kind: str) -> SideAddresses:
    """The lab's address plan for side ``index`` (1 for A, 2 for B) behind a NAT of ``kind``."""
    if kind == "none":
        public = f"203.0.113.{20 + index}"
        return SideAddresses(public, public, None)
    return SideAddresses(f"10.0.{index}.2", f"203.0.113.{10 + index}", f"10.0.{index}.1")


@dataclass
class PeerRun:
    """What one peer process reported (its JSON lines) and how it ended."""

    name: str
    exit_code: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def first(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == kind), None)

    @property
    def connected(self) -> bool:
        return self.first("connected") is not None

    @property
    def texts(self) -> list[str]:
        return [e["text"] for e in self.events if e["event"] == "text"]

    @property
    def route(self) -> Route | None:
        """The route the peer's ``connected`` line named, or the last ``route_changed``
        since (a relayed chat that went direct; a hairpin that lost to the LAN)."""
        connected = self.first("connected")
        name = None if connected is None else connected.get("route")
        if connected is not None:
            changes = [e.get("new") for e in self.events if e["event"] == "route_changed"]
            name = changes[-1] if changes else name
        return Route(name) if name in set(Route) else None

    @property
    def probes(self) -> int:
        connected = self.first("connected")
        probes = None if connected is None else connected.get("probes")
        return probes if isinstance(probes, int) and not isinstance(probes, bool) else 0

    @property
    def failure(self) -> str | None:
        failed = self.first("failed")
        return None if failed is None else str(failed["reason"])


@dataclass(frozen=True)
class _PairOptions:
    rounds: int
    silence: float
    heartbeat: float
    punch_timeout: float
    answer_timeout: float
    original: bool
    ladder: bool
    private: bool = True


@dataclass
class LabResult:
    nat_a: str
    nat_b: str
    a: PeerRun
    b: PeerRun
    trace: Trace = field(repr=False)
    time_to_connect: float | None = None
    #: The run's packet capture (every link on both sides of every NAT), if asked for.
    capture: Path | None = None
    #: Each NAT's ``conntrack -L`` after the run: the kernel's own mapping table.
    conntrack: dict[str, str] = field(default_factory=dict)
    #: The captured packets, one per datagram per link (what the capture file holds).
    packets: list[Sighting] = field(default_factory=list, repr=False)
    #: The run as the captures saw it, the NATs as actors (rewrites, drops): draw it
    #: with :func:`punchlab.diagram.sequence_diagram` for the NAT lifelines.
    capture_trace: Trace | None = field(default=None, repr=False)

    @property
    def connected(self) -> bool:
        """Both sides connected and every round of TEXT got through both ways."""
        return self.a.exit_code == 0 and self.b.exit_code == 0

    @property
    def route(self) -> Route | None:
        """How the pair connected, as the peers said (the further up the ladder of the two)."""
        routes = [run.route for run in (self.a, self.b)]
        return pair_route(*routes) if self.connected else None

    @property
    def probes(self) -> int:
        return max(run.probes for run in (self.a, self.b))

    def summary(self) -> str:
        if self.connected:
            ttc = (
                "" if self.time_to_connect is None else f" in {self.time_to_connect * 1000:.0f} ms"
            )
            how = route_text(self.route, self.probes)
            return (
                f"{self.nat_a} <-> {self.nat_b}: connected{ttc}, {how}, TEXT both ways (real NATs)"
            )
        reasons = "; ".join(
            f"{run.name}: {run.failure or f'exit {run.exit_code}'}" for run in (self.a, self.b)
        )
        return f"{self.nat_a} <-> {self.nat_b}: no connection (real NATs) - {reasons}"


class Lab:
    """``with Lab("port-restricted-cone", "symmetric") as lab: result = lab.punch()``.

    Leaving the block always removes every namespace (and with them their
    veth ends and nftables tables), also when something failed.
    """

    #: Where the server listens, and the URL the peers are given (an IPv6 lab changes both).
    server_ip = SERVER_IP
    server_url = SERVER_URL

    def __init__(
        self,
        nat_a: str,
        nat_b: str,
        *,
        conntrack_timeout: int | None = None,
        delay_ms: float = 0.0,
        loss: float = 0.0,
        workdir: str | Path | None = None,
    ) -> None:
        for kind in (nat_a, nat_b):
            if kind not in LAB_KINDS:
                raise ValueError(f"unknown NAT kind {kind!r}; the lab has {', '.join(LAB_KINDS)}")
        if not 0.0 <= loss <= 1.0 or delay_ms < 0:
            raise ValueError("delay_ms must be >= 0 and loss between 0 and 1")
        self.kinds = {"a": nat_a, "b": nat_b}
        self.conntrack_timeout = conntrack_timeout
        self.delay_ms = delay_ms
        self.loss = loss
        self.base = f"{PREFIX}{os.getpid()}-{next(_counter)}-"
        self.created: list[str] = []
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="punchlab-lab-"))
        self._processes: list[asyncio.subprocess.Process] = []
        #: How delay and loss are made: "netem", "wire" (no netem here), or None.
        self.link_emulation: str | None = None
        self._wire_pairs: list[str] = []
        self._public: list[tuple[str, str, str]] = []
        self._wire: subprocess.Popen[str] | None = None
        self._alternate_added = False
        #: Each peer's UDP port (two peers behind one NAT need different ones).
        self.peer_ports = {"a": 5000, "b": 5000}
        #: How a result names each side (a subclass says more than the NAT's kind).
        self.labels = dict(self.kinds)

    # -- building ---------------------------------------------------------------------------

    def ns(self, role: str) -> str:
        return self.base + role

    def __enter__(self) -> Lab:
        problems = lab_problems()
        if problems:
            raise LabUnavailable("the NAT lab " + "; ".join(problems))
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _add_namespace(self, role: str) -> str:
        name = self.ns(role)
        run(["ip", "netns", "add", name])
        self.created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def _veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair with one end in each namespace, renamed there (names are per namespace)."""
        token = secrets.token_hex(3)
        left, right = f"pl{token}a", f"pl{token}b"
        run(["ip", "link", "add", left, "type", "veth", "peer", "name", right])
        try:
            run(["ip", "link", "set", left, "netns", ns_a])
            run(["ip", "link", "set", right, "netns", ns_b])
        except RuntimeError:
            # An end still in the root namespace would outlive the lab (deleting
            # the lab's namespaces only removes the ends inside them): delete it,
            # and with it the pair.
            for end in (left, right):
                run(["ip", "link", "del", end], check=False)
            raise
        run(["ip", "-n", ns_a, "link", "set", left, "name", if_a])
        run(["ip", "-n", ns_b, "link", "set", right, "name", if_b])

    def _address(self, ns: str, interface: str, address: str) -> None:
        run(["ip", "-n", ns, "addr", "add", f"{address}/{SUBNET}", "dev", interface])
        run(["ip", "-n", ns, "link", "set", interface, "up"])

    def _on_bridge(self, ns: str, interface: str, address: str, port_name: str) -> None:
        inet = self.ns("inet")
        if self.link_emulation == "wire":
            # box <-> wire namespace <-> bridge; the wire process holds each frame.
            wire = self.ns("wire")
            self._veth(ns, interface, wire, f"{port_name}0")
            self._veth(wire, f"{port_name}1", inet, port_name)
            for end in ("0", "1"):
                run(["ip", "-n", wire, "link", "set", f"{port_name}{end}", "up"])
            # veth leaves checksums to "hardware"; frames copied by the wire
            # would arrive with them unfilled, so the senders must fill them.
            for where, name in ((ns, interface), (inet, port_name)):
                run(["ip", "netns", "exec", where, "ethtool", "-K", name, "tx", "off"])
            self._wire_pairs.append(f"{port_name}0:{port_name}1")
        else:
            self._veth(ns, interface, inet, port_name)
        self._address(ns, interface, address)
        run(["ip", "-n", inet, "link", "set", port_name, "master", "br0", "up"])
        self._public.append((ns, interface, address))
        if self.link_emulation == "netem":
            # Each public link delays both ways: leaving the box and leaving the bridge.
            self._netem(ns, interface)
            self._netem(inet, port_name)

    def _netem_command(self, ns: str, interface: str) -> list[str]:
        command = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", interface, "root"]
        command += ["netem", "delay", f"{self.delay_ms}ms"]
        if self.loss:
            command += ["loss", f"{self.loss * 100}%"]
        return command

    def _netem(self, ns: str, interface: str) -> None:
        run(self._netem_command(ns, interface))

    def _choose_link_emulation(self) -> str | None:
        """netem where the kernel has it, else the lab's own delay line (punchlab.netlab.wire)."""
        if not (self.delay_ms or self.loss):
            return None
        probe = self._netem_command(self.ns("inet"), "lo")
        if run(probe, check=False) == "" and "netem" in run(
            ["ip", "netns", "exec", self.ns("inet"), "tc", "qdisc", "show", "dev", "lo"],
            check=False,
        ):
            run(["ip", "netns", "exec", self.ns("inet"), "tc", "qdisc", "del", "dev", "lo", "root"])
            return "netem"
        return "wire"

    def _start_wire(self) -> None:
        command = ["ip", "netns", "exec", self.ns("wire"), sys.executable, "-m"]
        command += ["punchlab.netlab.wire", "--delay", str(self.delay_ms), "--loss", str(self.loss)]
        self._wire = subprocess.Popen(
            [*command, *self._wire_pairs],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._wire.stdout is not None
        ready, _, _ = select.select([self._wire.stdout], [], [], 20.0)
        line = self._wire.stdout.readline() if ready else ""
        if "wire ready" not in line:
            raise RuntimeError(f"the delay line did not start: {line!r}")

    def _build(self) -> None:
        inet = self._add_namespace("inet")
        run(["ip", "-n", inet, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", inet, "link", "set", "br0", "up"])
        self.link_emulation = self._choose_link_emulation()
        if self.link_emulation == "wire":
            self._add_namespace("wire")
        self._on_bridge(self._add_namespace("srv"), "eth0", self.server_ip, "srv")
        self._build_sides()
        self._static_neighbours()
        if self.link_emulation == "wire":
            self._start_wire()

    def _build_sides(self) -> None:
        """Each peer behind its own NAT (or on the bridge); other topologies override this."""
        for index, side in enumerate(("a", "b"), start=1):
            kind = self.kinds[side]
            plan = side_addresses(index, kind)
            peer = self._add_namespace(f"peer-{side}")
            if plan.gateway is None:
                self._on_bridge(peer, "eth0", plan.public, f"peer{side}")
                continue
            nat = self._add_namespace(f"nat-{side}")
            self._on_bridge(nat, "out0", plan.public, f"nat{side}")
            self._veth(nat, "in0", peer, "eth0")
            self._address(nat, "in0", plan.gateway)
            self._address(peer, "eth0", plan.peer)
            run(["ip", "-n", peer, "route", "add", "default", "via", plan.gateway])
            timeout = self._forwarding(nat)
            rules = ruleset(
                kind, outside="out0", inside="in0", inside_host=plan.peer, timeout=timeout
            )
            run(["ip", "netns", "exec", nat, "nft", "-f", "-"], input=rules)

    def _forwarding(self, nat: str) -> int:
        """Make namespace ``nat`` a router with the lab's UDP timeout; that timeout, seconds."""
        run(["ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        timeout = self.conntrack_timeout or 120
        if self.conntrack_timeout is not None:
            for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
                setting = f"net.netfilter.{key}={timeout}"
                run(["ip", "netns", "exec", nat, "sysctl", "-qw", setting])
        return timeout

    def _static_neighbours(self) -> None:
        """Every public box knows every other's MAC address, as a router's cache would.

        Without this the first datagram between two NATs waits for ARP, which
        crosses the delayed links too and adds a whole round trip.
        """
        macs = {}
        for ns, interface, address in self._public:
            info = json.loads(run(["ip", "-n", ns, "-j", "link", "show", "dev", interface]))
            macs[address] = str(info[0]["address"])
        for ns, interface, own in self._public:
            for address, mac in macs.items():
                if address != own:
                    neighbour = ["neigh", "replace", address, "lladdr", mac, "dev", interface]
                    run(["ip", "-n", ns, *neighbour, "nud", "permanent"])

    def close(self) -> None:
        """Stop every process and delete every namespace this lab made."""
        if self._wire is not None and self._wire.poll() is None:
            self._wire.kill()
            self._wire.wait(timeout=10)
        for name in reversed(self.created):
            delete_namespace(name)
        self.created.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- running ----------------------------------------------------------------------------

    def punch(self, **options: Any) -> LabResult:
        """Run :meth:`apunch` to completion (for scripts; in a notebook ``await`` that)."""
        return asyncio.run(self.apunch(**options))

    async def apunch(
        self,
        *,
        rounds: int = 1,
        silence: float = 0.0,
        heartbeat: float = 3.0,
        punch_timeout: float = 12.0,
        answer_timeout: float = 5.0,
        original: bool = False,
        capture: str | Path | None = None,
        ladder: bool = True,
        private: bool = True,
    ) -> LabResult:
        """Server in its namespace, B waits, A connects to B; both chat ``rounds`` times.

        ``capture``: a folder where the run's packets, captured on both sides of
        every NAT, are written as one pcapng file (``result.capture``).
        ``ladder``: the server is a full RFC 5780 server (a second address) and
        the peers climb the traversal ladder when the punch fails
        (``result.route`` says how they connected); off, they only punch.
        ``private``: the peers offer and try their local addresses (off: ``--no-private``).
        """
        tag = secrets.token_hex(2)
        traces = {name: self.workdir / f"{tag}-{name}.jsonl" for name in ("server", "A", "B")}
        captures = None
        try:
            if capture is not None:
                Path(capture).mkdir(parents=True, exist_ok=True)
                (self.workdir / tag).mkdir()
                captures = Captures(self, self.workdir / tag)
                await captures.start()
            options = _PairOptions(
                rounds, silence, heartbeat, punch_timeout, answer_timeout, original, ladder, private
            )
            a_run, b_run = await self._run_pair(traces, options)
        finally:
            if captures is not None:
                await captures.stop()
        trace = Trace.merge(*(Trace.load(path) for path in traces.values() if path.exists()))
        result = LabResult(
            self.labels["a"], self.labels["b"], a_run, b_run, trace, _time_to_connect(a_run, b_run)
        )
        if captures is not None:
            assert capture is not None
            plan = self.capture_plan()
            result.conntrack = {
                key: conntrack_table(self, key, role) for key, role in plan.conntrack.items()
            }
            name = f"lab-{self.kinds['a']}-{self.kinds['b']}-{tag}.pcapng"
            result.packets = captures.sightings()
            delay = self.delay_ms / 1000
            result.capture_trace = capture_trace(result.packets, plan, delay)
            result.capture = write_pcapng(result.packets, Path(capture) / name)
        return result

    def capture_plan(self) -> CapturePlan:
        """Where ``apunch(capture=...)`` listens, and who is who (other topologies override)."""
        return two_nat_plan(self.kinds)

    def add_alternate_address(self) -> None:
        """The server's second address (an RFC 5780 server needs two), added once."""
        if not self._alternate_added:
            self.add_address("srv", "eth0", ALTERNATE_SERVER_IP)
            self._alternate_added = True

    def rfc5780_server_arguments(self) -> list[str]:
        """What ``punchlab serve`` needs to be an RFC 5780 server here (adds the address)."""
        self.add_alternate_address()
        return ["--stun-alternate", ALTERNATE_SERVER_IP, "--stun-port", str(STUN_PORT)]

    async def _run_pair(
        self, traces: dict[str, Path], options: _PairOptions
    ) -> tuple[PeerRun, PeerRun]:
        """The server, B, then A connecting to B: how each peer's run ended."""
        rfc5780 = self.rfc5780_server_arguments() if options.ladder and not options.original else []
        server = await self._start(
            "srv",
            "serve", "--host", self.server_ip, "--http-port", "8088", "--udp-port", "8089",
            "--quiet", "--trace", str(traces["server"]), *rfc5780,
        )  # fmt: skip
        rounds, silence, answer_timeout = options.rounds, options.silence, options.answer_timeout
        punch_timeout = options.punch_timeout
        try:
            await self._read_until(server, lambda line: "server ready" in line, 20.0)
            common = [
                "--server", self.server_url, "--rounds", str(rounds), "--silence", str(silence),
                "--heartbeat", str(options.heartbeat), "--punch-timeout", str(punch_timeout),
                "--timeout", str(answer_timeout),
            ]  # fmt: skip
            if options.original:
                common.append("--original")
            elif not options.ladder:
                common.append("--no-ladder")
            if not options.private and not options.original:
                common.append("--no-private")
            b_run, a_run = PeerRun("B"), PeerRun("A")
            b = await self._start(
                "peer-b", "peer", *common, "--name", "B", "--send", "hello from B",
                "--port", str(self.peer_ports["b"]),
                "--trace", str(traces["B"]),
            )  # fmt: skip
            registered = await self._read_json_until(b, b_run, "registered", 20.0)
            if registered is None:
                raise RuntimeError(f"peer B did not register: {b_run.events}")
            a = await self._start(
                "peer-a", "peer", *common, "--name", "A", "--send", "hello from A",
                "--port", str(self.peer_ports["a"]),
                "--connect", registered["id"], "--trace", str(traces["A"]),
            )  # fmt: skip
            budget = punch_timeout + rounds * (silence + answer_timeout) + 20.0
            await asyncio.gather(self._finish(a, a_run, budget), self._finish(b, b_run, budget))
        finally:
            await self._stop_all()
        return a_run, b_run

    async def _stop_all(self) -> None:
        """Interrupt what this lab started (the server saves its trace on SIGINT)."""
        await interrupt_all(self._processes)

    async def _start(self, role: str, *arguments: str) -> asyncio.subprocess.Process:
        return await self.start_process(role, sys.executable, "-m", "punchlab", *arguments)

    async def start_process(self, role: str, *argv: str) -> asyncio.subprocess.Process:
        """Run ``argv`` inside the namespace of ``role`` (stdout and stderr piped together).

        The caller waits for it or stops it; :meth:`_stop_all` stops what it started.
        """
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.ns(role), *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self._processes.append(process)
        return process

    def add_address(self, role: str, interface: str, address: str) -> None:
        """A further address on a box's interface (the STUN server's second IP)."""
        run(["ip", "-n", self.ns(role), "addr", "add", f"{address}/{SUBNET}", "dev", interface])

    @staticmethod
    async def _read_until(process: asyncio.subprocess.Process, match: Any, timeout: float) -> str:
        assert process.stdout is not None
        seen = []
        try:
            async with asyncio.timeout(timeout):
                while raw := await process.stdout.readline():
                    line = raw.decode(errors="replace").rstrip()
                    seen.append(line)
                    if match(line):
                        return line
        except TimeoutError:
            pass
        raise RuntimeError("process did not get ready; it said:\n" + "\n".join(seen))

    @staticmethod
    async def _collect(
        process: asyncio.subprocess.Process, record: PeerRun, until: str | None
    ) -> dict[str, Any] | None:
        """Record a peer's JSON events up to one of kind ``until`` (None: to the end)."""
        assert process.stdout is not None
        while raw := await process.stdout.readline():
            event = _json_line(raw)
            if event is None:
                continue
            record.events.append(event)
            if until is not None and event["event"] in (until, "failed"):
                return event if event["event"] == until else None
        return None

    @classmethod
    async def _read_json_until(
        cls, process: asyncio.subprocess.Process, record: PeerRun, kind: str, timeout: float
    ) -> dict[str, Any] | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                return await cls._collect(process, record, kind)
        return None

    @classmethod
    async def _finish(
        cls, process: asyncio.subprocess.Process, record: PeerRun, timeout: float
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                await cls._collect(process, record, None)
                record.exit_code = await process.wait()
        except TimeoutError:
            process.kill()
            record.exit_code = await process.wait()
            record.events.append({"event": "failed", "reason": f"still running after {timeout} s"})


def _json_line(raw: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _time_to_connect(a: PeerRun, b: PeerRun) -> float | None:
    """From A's request to the later of the two ``connected`` events (one clock: one machine)."""
    start = a.first("connecting")
    ends = [run.first("connected") for run in (a, b)]
    if start is None or any(end is None for end in ends):
        return None
    return max(float(end["time"]) for end in ends if end) - float(start["time"])
