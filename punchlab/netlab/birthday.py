"""Birthday-paradox hole punching, measured on the kernel's real NATs.

The "hard" side sits behind a NAT of kind ``symmetric`` (nftables ``masquerade
random``): every new flow gets an outside port the kernel draws at random. For a
masquerade without a port range Linux draws from 1024-65535 (the source ports
here are above 1023), so there are N = 65536 - 1024 = 64512 ports to guess from.
The "easy" side sits behind ``port-restricted-cone`` (endpoint-independent
mapping, address-and-port-dependent filtering).

One run, driven from the root namespace with small agent processes started in
the peers' namespaces by :meth:`punchlab.netlab.lab.Lab.start_process`:

1. The easy agent binds one UDP socket and sends one datagram to the hard NAT's
   public address at port 9 (outside the random range, so it can never meet a
   hard-side mapping): its own endpoint-independent mapping now exists. Its public
   port is read from the easy NAT's own table (``conntrack -L``), not assumed.
2. The hard agent opens k sockets (default 256) and sends one small datagram from
   each to the easy side's public address and port. The easy NAT drops them (they
   come from ports it never sent to), but each leaves a mapping in the hard NAT:
   k random outside ports, read back from the hard NAT's conntrack table.
3. The easy agent sends probes from its one socket to ports drawn uniformly from
   1024-65535 (a seeded :class:`random.Random` in the root process), paced at a
   rate (default 250 probes/s; 0 is as fast as possible), up to a cap. A probe
   *hits* when a hard-side socket receives it; the run records the index of the
   first hit (1-based), or None.

A probe hits with chance k/N, independently, so the first hit comes by probe n
with chance 1 - (1 - k/N)^n: 22% at 64 probes, 50% at 174, 98% at 1024 for
k = 256. :func:`measure_birthday` measures that on real NATs, beside the formula.

The namespaces are built once and reused; each run gets fresh agents and fresh
sockets, and both NATs' connection-tracking tables are flushed (``conntrack -F``)
before it, so no mapping of a previous run (the kernel keeps UDP entries 30 s and
more) can answer a probe of the next. Leaving the lab removes every namespace,
also on error. The kernel's ports are not seeded: only the probe sequence is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import resource
import secrets
import selectors
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from punchlab.netlab.lab import Lab, side_addresses
from punchlab.netlab.system import LabUnavailable, interrupt_all, run
from punchlab.sim.birthday import birthday_formula, hit_share

__all__ = [
    "DEFAULT_RATE",
    "EASY_NAT",
    "HARD_NAT",
    "PORTS",
    "PORT_RANGE",
    "BirthdayHit",
    "BirthdayLab",
    "BirthdayRun",
    "NetlabBirthday",
    "ameasure_birthday",
    "formula",
    "measure_birthday",
]

#: The easy side (A) and the hard side (B) of the lab.
EASY_NAT, HARD_NAT = "port-restricted-cone", "symmetric"
#: Where ``masquerade random`` draws an outside port for a source port above 1023.
PORT_RANGE = (1024, 65535)
#: How many ports it draws from: N in the formula.
PORTS = PORT_RANGE[1] - PORT_RANGE[0] + 1
#: Probes per second: fast enough for a run in seconds, slow enough that a home
#: router (or a rate limit on the way) would not take it for a flood.
DEFAULT_RATE = 250.0
#: Where the easy side's first datagram goes: below the random range, so never mapped.
OPENING_PORT = 9

_EASY, _HARD = side_addresses(1, EASY_NAT), side_addresses(2, HARD_NAT)
#: How long an agent or the kernel may take for one step (CI machines are busy).
_STEP = 20.0
#: After the first hit (or the last probe), how long datagrams in flight may take.
_DRAIN = 0.2


def formula(n: int, k: int, ports: int = PORTS) -> float:
    """Chance that one of n uniform probes hits one of k open ports out of ``ports``."""
    return birthday_formula(min(k, ports), n, ports)


@dataclass(frozen=True)
class BirthdayHit:
    """A probe a hard-side socket really received."""

    #: The probe's index in the run (1-based), from its payload.
    index: int
    #: The hard NAT's public port the easy side aimed at, from its payload.
    probed_port: int
    #: The local port of the hard-side socket that received it.
    socket_port: int
    #: Where it came from, as the hard side saw it ("ip:port").
    source: str


@dataclass(frozen=True)
class BirthdayRun:
    """One run: what was open, what was probed, what got through."""

    number: int
    open_ports: int
    #: The easy side's public port (read from the easy NAT's conntrack table).
    easy_public_port: int
    #: Each hard-side socket's local port -> its outside port, from the hard NAT's
    #: conntrack table: the k mappings the probes had to find.
    mappings: dict[int, int] = field(repr=False)
    probes_sent: int
    #: Every probe a hard-side socket received, in index order.
    hits: tuple[BirthdayHit, ...]
    #: Datagrams a hard-side socket received that were no probe of this run.
    strays: int
    seconds: float
    #: How long sending every probe took, when the run sent them all (no early stop).
    probing_seconds: float | None = None

    @property
    def first_hit(self) -> int | None:
        return self.hits[0].index if self.hits else None

    def hit_is_real(self, hit: BirthdayHit) -> bool:
        """The hit came from the easy side's public address, aimed at the outside port the
        hard NAT had mapped to exactly the socket that received it."""
        return (
            hit.source == f"{_EASY.public}:{self.easy_public_port}"
            and self.mappings.get(hit.socket_port) == hit.probed_port
        )

    def summary(self) -> str:
        if self.first_hit is None:
            return f"run {self.number}: no hit in {self.probes_sent} probes ({self.seconds:.1f} s)"
        hit = self.hits[0]
        return (
            f"run {self.number}: first hit at probe {hit.index} (port {hit.probed_port} -> "
            f"socket {hit.socket_port}; {self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class NetlabBirthday:
    """Runs of the birthday measurement, and the success they show at each probe count."""

    runs: tuple[BirthdayRun, ...]
    probes: tuple[int, ...]
    open_ports: int
    rate: float
    seed: int

    @property
    def first_hits(self) -> list[int | None]:
        return [r.first_hit for r in self.runs]

    def measured(self, n: int) -> float:
        """The share of runs whose first hit came by probe n (the same runs for every n)."""
        if not self.runs:
            return math.nan
        return hit_share(self.first_hits, n)

    def formula(self, n: int) -> float:
        return formula(n, self.open_ports)

    def rows(self) -> list[tuple[int, int, float, float]]:
        """(probes, runs, measured, formula) for each probe count."""
        return [(n, len(self.runs), self.measured(n), self.formula(n)) for n in self.probes]

    def text(self) -> str:
        pace = "as fast as possible" if self.rate == 0 else f"{self.rate:g} probes/s"
        lines = [
            f"birthday punching on real kernel NATs: {len(self.runs)} runs, k = "
            f"{self.open_ports} sockets behind {HARD_NAT} (masquerade random: Linux picks "
            f"each outside port from {PORT_RANGE[0]}-{PORT_RANGE[1]}, N = {PORTS}), probes "
            f"from behind {EASY_NAT} at {pace}, seed {self.seed}",
            "formula: 1 - (1 - k/N)^n",
            "",
            f"{'probes':>6} | {'runs':>4} | {'measured':>8} | {'formula':>7}",
            f"{'-' * 6}-+-{'-' * 4}-+-{'-' * 8}-+-{'-' * 7}",
        ]
        for n, runs, measured, predicted in self.rows():
            lines.append(f"{n:>6} | {runs:>4} | {measured:>8.3f} | {predicted:>7.3f}")
        return "\n".join(lines)


# -- the root side: one lab, many runs ---------------------------------------------------


class BirthdayLab:
    """``with BirthdayLab() as lab: run = await lab.arun(1, ...)``: the namespaces of one
    measurement (easy side A, hard side B), reused by every run."""

    def __init__(self) -> None:
        if shutil.which("conntrack") is None:
            raise LabUnavailable(
                "the birthday measurement needs the `conntrack` command (Debian package "
                "conntrack) to flush and read the NATs' tables"
            )
        self.lab = Lab(EASY_NAT, HARD_NAT)

    def __enter__(self) -> BirthdayLab:
        self.lab.__enter__()
        try:
            self._static_inside_neighbours()
        except BaseException:
            self.lab.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lab.close()

    def _static_inside_neighbours(self) -> None:
        """Each peer and its NAT know each other's MAC address: k datagrams sent at once
        would otherwise queue behind the first ARP request, and the queue is short."""
        for side in ("a", "b"):
            peer, nat = self.lab.ns(f"peer-{side}"), self.lab.ns(f"nat-{side}")
            plan = _EASY if side == "a" else _HARD
            assert plan.gateway is not None
            for here, dev, there, there_dev, address in (
                (peer, "eth0", nat, "in0", plan.gateway),
                (nat, "in0", peer, "eth0", plan.peer),
            ):
                info = json.loads(run(["ip", "-n", there, "-j", "link", "show", "dev", there_dev]))
                neighbour = ["neigh", "replace", address, "lladdr", str(info[0]["address"])]
                run(["ip", "-n", here, *neighbour, "dev", dev, "nud", "permanent"])

    def conntrack(self, side: str, *arguments: str) -> str:
        box = self.lab.ns(f"nat-{side}")
        return run(["ip", "netns", "exec", box, "conntrack", *arguments])

    def flush(self) -> None:
        """Forget every mapping of both NATs (a previous run's must not answer this one's)."""
        for side in ("a", "b"):
            self.conntrack(side, "-F")

    async def _poll(self, what: str, look: Callable[[], Any], within: float = _STEP) -> Any:
        deadline = time.monotonic() + within
        while True:
            found = look()
            if found:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel never showed {what} within {within} s")
            await asyncio.sleep(0.01)

    def easy_public_port(self, local_port: int) -> int | None:
        """The easy NAT's outside port for the easy socket (its conntrack entry's reply)."""
        for orig, reply in _entries(self.conntrack("a", "-L", "-p", "udp")):
            if (orig["src"], orig["sport"]) == (_EASY.peer, str(local_port)) and orig[
                "dport"
            ] == str(OPENING_PORT):
                return int(reply["dport"])
        return None

    def hard_mappings(self, easy_port: int) -> dict[int, int]:
        """Hard-side local port -> the outside port its flow to the easy side got."""
        mappings = {}
        for orig, reply in _entries(self.conntrack("b", "-L", "-p", "udp")):
            if (orig["src"], orig["dst"], orig["dport"]) == (
                _HARD.peer,
                _EASY.public,
                str(easy_port),
            ):
                mappings[int(orig["sport"])] = int(reply["dport"])
        return mappings

    async def arun(
        self,
        number: int,
        rng: random.Random,
        *,
        open_ports: int = 256,
        cap: int = 1024,
        rate: float = DEFAULT_RATE,
        avoid_mapped: bool = False,
    ) -> BirthdayRun:
        """One run with fresh agents and sockets. ``avoid_mapped`` (a negative control):
        draw the probes only from ports the hard NAT's table shows unmapped."""
        self.flush()
        started = time.monotonic()
        token = secrets.token_hex(4)
        agents: list[asyncio.subprocess.Process] = []
        servers: list[asyncio.Server] = []
        controls: list[asyncio.StreamWriter] = []
        reader: asyncio.Task[None] | None = None
        try:
            easy_control, easy = await self._agent(
                "peer-a", "easy", token, agents, servers, controls
            )
            hard_control, hard = await self._agent(
                "peer-b", "hard", token, agents, servers, controls
            )
            bound = await _event(easy, "bound")
            easy_port = await self._poll(
                "the easy side's mapping", lambda: self.easy_public_port(int(bound["port"]))
            )
            _send(hard_control, {"to": [_EASY.public, easy_port], "k": open_ports})
            sent = await _event(hard, "sent")
            sockets = {int(p) for p in sent["ports"]}
            mappings: dict[int, int] = await self._poll(
                f"all {open_ports} hard-side mappings",
                lambda: (
                    (m if set(m) >= sockets else None)
                    if (m := self.hard_mappings(easy_port))
                    else None
                ),
            )
            mappings = {port: mappings[port] for port in sockets}
            ports = _plan(rng, cap, set(mappings.values()) if avoid_mapped else set())
            received: list[dict[str, Any]] = []
            first = asyncio.Event()
            reader = asyncio.create_task(_receive(hard, token, received, first))
            _send(easy_control, {"ports": ports, "rate": rate})
            ended = await _until_hit_or_done(easy, reader, first)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            await interrupt_all(agents)
            for control in controls:
                control.close()
            for server in servers:
                server.close()
        hits, strays = _hits(received, sockets)
        # Stopped at the first hit, the run used that many probes (later ones do not count).
        if not hits and ended is None:
            raise RuntimeError("the easy side's agent neither finished nor was heard")
        probes_sent = hits[0].index if hits else int(ended["sent"]) if ended else 0
        return BirthdayRun(
            number=number,
            open_ports=open_ports,
            easy_public_port=easy_port,
            mappings=mappings,
            probes_sent=probes_sent,
            hits=tuple(hits),
            strays=strays,
            seconds=time.monotonic() - started,
            probing_seconds=None if ended is None else float(ended["elapsed"]),
        )

    async def _agent(
        self,
        role: str,
        kind: str,
        token: str,
        agents: list[asyncio.subprocess.Process],
        servers: list[asyncio.Server],
        controls: list[asyncio.StreamWriter],
    ) -> tuple[asyncio.StreamWriter, asyncio.subprocess.Process]:
        """Start an agent in ``role``'s namespace and wait for it to call back: the
        control channel is a Unix socket in the lab's folder (a path reaches across
        network namespaces), the agent's answers are JSON lines on its stdout."""
        path = self.lab.workdir / f"{kind}-{token}.sock"
        connected: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

        async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            controls.append(writer)
            if not connected.done():
                connected.set_result(writer)

        servers.append(await asyncio.start_unix_server(accept, path=str(path)))
        command = [sys.executable, "-m", "punchlab.netlab.birthday", kind]
        command += ["--control", str(path), "--token", token]
        if kind == "easy":
            command += ["--hard-ip", _HARD.public]
        process = await self.lab.start_process(role, *command)
        agents.append(process)
        try:
            async with asyncio.timeout(_STEP):
                writer = await connected
        except TimeoutError:
            raise RuntimeError(f"the {kind} agent never called back") from None
        return writer, process


def _entries(table: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    """``conntrack -L`` lines as (original, reply) tuples of src, dst, sport, dport."""
    entries = []
    for line in table.splitlines():
        pairs = [word.split("=", 1) for word in line.split() if "=" in word]
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        for key, value in pairs:
            if key in ("src", "dst", "sport", "dport"):
                (reply if key in orig else orig)[key] = value
        if len(orig) == 4 and len(reply) == 4:
            entries.append((orig, reply))
    return entries


async def _until_hit_or_done(
    easy: asyncio.subprocess.Process, reader: asyncio.Task[None], first: asyncio.Event
) -> dict[str, Any] | None:
    """Wait for the first hit or the easy agent's last probe; its "done" line, if it came."""
    done = asyncio.create_task(_event(easy, "done", timeout=None))
    hit = asyncio.create_task(first.wait())
    try:
        finished, _ = await asyncio.wait({done, hit, reader}, return_when=asyncio.FIRST_COMPLETED)
        if reader in finished and not first.is_set():
            reader.result()  # the hard agent died: say how
            raise RuntimeError("the hard side's agent stopped before the run ended")
        await asyncio.sleep(_DRAIN)  # a lower index may still be on the wire
        return done.result() if done in finished else None
    finally:
        done.cancel()
        hit.cancel()


def _plan(rng: random.Random, cap: int, avoid: set[int]) -> list[int]:
    """``cap`` probe ports, uniform over the random range (without the ``avoid`` ones)."""
    ports: list[int] = []
    while len(ports) < cap:
        port = rng.randint(*PORT_RANGE)
        if port not in avoid:
            ports.append(port)
    return ports


def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")


async def _event(
    process: asyncio.subprocess.Process, kind: str, timeout: float | None = _STEP
) -> dict[str, Any]:
    """Read an agent's JSON lines up to the first of ``kind``."""
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while raw := await process.stdout.readline():
            line = raw.decode(errors="replace").rstrip()
            seen.append(line)
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == kind:
                    return event
    raise RuntimeError(f"an agent ended before {kind!r}; it said:\n" + "\n".join(seen[-20:]))


async def _receive(
    process: asyncio.subprocess.Process,
    token: str,
    received: list[dict[str, Any]],
    first: asyncio.Event,
) -> None:
    """Collect what the hard agent's sockets received; ``first`` is set by the first probe."""
    assert process.stdout is not None
    while raw := await process.stdout.readline():
        with contextlib.suppress(ValueError):
            event = json.loads(raw)
            if isinstance(event, dict) and event.get("event") == "received":
                received.append(event)
                if str(event.get("data", "")).startswith(f"{token} probe "):
                    first.set()


def _hits(received: list[dict[str, Any]], sockets: set[int]) -> tuple[list[BirthdayHit], int]:
    hits, strays = [], 0
    for event in received:
        words = str(event.get("data", "")).split()
        if len(words) == 4 and words[1] == "probe" and int(event["socket"]) in sockets:
            hits.append(
                BirthdayHit(int(words[2]), int(words[3]), int(event["socket"]), event["from"])
            )
        else:
            strays += 1
    hits.sort(key=lambda hit: hit.index)
    return hits, strays


async def ameasure_birthday(
    runs: int,
    probes: Sequence[int] = (64, 174, 1024),
    open_ports: int = 256,
    rate: float = DEFAULT_RATE,
    seed: int = 0,
    progress: Callable[[BirthdayRun], None] | None = None,
) -> NetlabBirthday:
    """:func:`measure_birthday` for a running event loop (``await`` it in a notebook)."""
    counts = tuple(sorted(set(probes)))
    if runs < 1 or not counts or counts[0] < 1 or not 1 <= open_ports <= 4096 or rate < 0:
        raise ValueError(
            "runs >= 1, probe counts >= 1, 1 <= open_ports <= 4096 and rate >= 0 are needed"
        )
    rng = random.Random(seed)
    done: list[BirthdayRun] = []
    with BirthdayLab() as lab:
        for number in range(1, runs + 1):
            result = await lab.arun(number, rng, open_ports=open_ports, cap=counts[-1], rate=rate)
            done.append(result)
            if progress is not None:
                progress(result)
    return NetlabBirthday(tuple(done), counts, open_ports, rate, seed)


def measure_birthday(
    runs: int,
    probes: Sequence[int] = (64, 174, 1024),
    open_ports: int = 256,
    rate: float = DEFAULT_RATE,
    seed: int = 0,
    progress: Callable[[BirthdayRun], None] | None = None,
) -> NetlabBirthday:
    """``runs`` birthday runs on real NATs: k = ``open_ports`` sockets on the hard side,
    probes paced at ``rate`` per second (0: as fast as possible) up to the largest of
    ``probes``, drawn from ``random.Random(seed)``. Success at each count of ``probes`` is
    read from the same runs. ``progress`` is called with each run as it ends."""
    return asyncio.run(ameasure_birthday(runs, probes, open_ports, rate, seed, progress))


# -- the agents, inside the namespaces ---------------------------------------------------


def _say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def _control(path: str) -> socket.socket:
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.connect(path)
    return control


def _read_order(control: socket.socket) -> dict[str, Any]:
    with control.makefile("r") as stream:
        line = stream.readline()
    if not line:
        raise SystemExit("the lab closed the control channel")
    order: dict[str, Any] = json.loads(line)
    return order


def _easy_agent(args: argparse.Namespace) -> None:
    """One socket: open its mapping, say its port, then probe the ports it is given."""
    control = _control(args.control)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("0.0.0.0", 0))
    probe.sendto(f"{args.token} open".encode(), (args.hard_ip, OPENING_PORT))
    _say(event="bound", port=probe.getsockname()[1])
    order = _read_order(control)
    rate = float(order["rate"])
    start = time.monotonic()
    for index, port in enumerate(order["ports"]):
        if rate > 0:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        probe.sendto(f"{args.token} probe {index + 1} {port}".encode(), (args.hard_ip, port))
    _say(event="done", sent=len(order["ports"]), elapsed=time.monotonic() - start)


def _hard_agent(args: argparse.Namespace) -> None:
    """k sockets, one datagram each to the easy side; then report what any receives."""
    control = _control(args.control)
    order = _read_order(control)
    k = int(order["k"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < k + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(k + 64, hard), hard))
    target = (str(order["to"][0]), int(order["to"][1]))
    selector = selectors.DefaultSelector()
    ports = []
    for number in range(k):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 0))
        sock.setblocking(False)
        sock.sendto(f"{args.token} open {number}".encode(), target)
        ports.append(sock.getsockname()[1])
        selector.register(sock, selectors.EVENT_READ)
    _say(event="sent", ports=ports)
    while True:
        for key, _ in selector.select():
            receiver = key.fileobj
            assert isinstance(receiver, socket.socket)
            with contextlib.suppress(BlockingIOError):
                data, (ip, port) = receiver.recvfrom(2048)
                _say(
                    event="received",
                    socket=receiver.getsockname()[1],
                    data=data.decode(errors="replace"),
                    time=time.monotonic(),
                    **{"from": f"{ip}:{port}"},
                )


def _agent_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m punchlab.netlab.birthday",
        description="An agent of the birthday measurement (started by the lab, in a namespace).",
    )
    parser.add_argument("kind", choices=("easy", "hard"))
    parser.add_argument("--control", required=True, help="the lab's Unix socket")
    parser.add_argument("--token", required=True, help="this run's mark on every datagram")
    parser.add_argument("--hard-ip", help="the hard NAT's public address (easy agent)")
    args = parser.parse_args(argv)
    # The lab stops an agent with SIGINT, which a shell's background job inherits ignored:
    # without its own handler an agent would wait for the lab's kill, 10 s later.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):  # the lab's SIGINT: the run is over
        (_easy_agent if args.kind == "easy" else _hard_agent)(args)
    return 0


@dataclass(frozen=True)
class RecordedBirthday:
    """A measurement on real kernel NATs kept with the package (a notebook cannot run the lab
    in its time budget): the first hits of every run, and the command that measured them."""

    command: str
    open_ports: int
    first_hits: tuple[int | None, ...]
    probes: tuple[int, ...] = (16, 32, 64, 128, 174, 256, 512, 1024)

    @property
    def runs(self) -> int:
        return len(self.first_hits)

    @property
    def success(self) -> tuple[float, ...]:
        """The share of runs with a hit by each probe count, read from the same runs."""
        return tuple(hit_share(self.first_hits, n) for n in self.probes)


def recorded_measurement() -> RecordedBirthday:
    """The lab measurement shipped in ``punchlab/data/netlab_birthday.json``."""
    from importlib.resources import files

    data = json.loads(files("punchlab").joinpath("data/netlab_birthday.json").read_text())
    hits = tuple(None if hit is None else int(hit) for hit in data["first_hits"])
    return RecordedBirthday(str(data["command"]), int(data["open_ports"]), hits)


if __name__ == "__main__":
    sys.exit(_agent_main())
