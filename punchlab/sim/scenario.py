"""Ready-made experiments: one punch, the success matrix, a crowd of pairs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from punchlab.display import text_table
from punchlab.peer import PeerConfig, PeerState
from punchlab.peer_table import PUNCHING_STATES
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import PRESET_NAMES, NatBox, NatConfig
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer
from punchlab.trace import Trace
from punchlab.traversal import Route, pair_route, route_text

__all__ = ["MatrixResult", "PunchResult", "ScaleResult", "punch", "scale", "success_matrix"]

#: A registration under heavy loss may need many tries; the experiment is the
#: punch, so the scenario gives registration a generous budget.
SCENARIO_REGISTRATION_ATTEMPTS = 40


@dataclass(frozen=True)
class PunchResult:
    """What one simulated punch did.

    ``connected`` means what DESIGN.md's matrix means: both sides received
    SUCCESS *and* TEXT got through in both directions.
    """

    nat_a: str
    nat_b: str
    connected: bool
    time_to_connect: float | None
    state_a: PeerState
    state_b: PeerState
    texts_a_to_b: int
    texts_b_to_a: int
    trace: Trace = field(repr=False)
    network: Network = field(repr=False)
    #: Which way won (punchlab.traversal.Route; None: no connection), and how
    #: many birthday probes were sent until the first SUCCESS.
    route: Route | None = None
    probes: int = 0

    def summary(self) -> str:
        if self.connected:
            assert self.time_to_connect is not None
            outcome = f"connected in {self.time_to_connect * 1000:.0f} ms, {self.route_text()}"
        else:
            outcome = f"no connection (A {self.state_a.value}, B {self.state_b.value})"
        return (
            f"{self.nat_a} <-> {self.nat_b}: {outcome}; "
            f"TEXT A->B {self.texts_a_to_b}, B->A {self.texts_b_to_a}"
        )

    def route_text(self) -> str:
        """The route as the CLI and the notebooks print it: ``birthday (212 probes)``."""
        return route_text(self.route, self.probes)


def _label(kind: str | NatConfig) -> str:
    return kind.name if isinstance(kind, NatConfig) else kind


def _add_side(
    net: Network,
    name: str,
    kind: str | NatConfig,
    nat_timeout: float | None,
    behind: NatBox | None = None,
) -> NatBox | None:
    if _label(kind) == "none":
        return behind
    if nat_timeout is None:
        return net.add_nat(f"NAT {name}", kind, behind=behind)
    return net.add_nat(f"NAT {name}", kind, behind=behind, timeout=nat_timeout)


#: Where the two homes sit with ``punch(cgn=...)``: no carrier-grade NAT, both behind
#: one, or each behind its own.
CGN_PLACES = (None, "same", "different")


def _carriers(
    net: Network, cgn: str | None, kind: str | NatConfig
) -> tuple[NatBox | None, NatBox | None]:
    """The carrier-grade NATs in front of side A's and side B's home (None: the internet)."""
    if cgn not in CGN_PLACES:
        raise ValueError(f"cgn must be one of {CGN_PLACES}, not {cgn!r}")
    if cgn is None:
        return None, None
    first = net.add_cgn("CGN A" if cgn == "different" else "CGN", kind)
    return first, first if cgn == "same" else net.add_cgn("CGN B", kind)


def punch(
    nat_a: str | NatConfig,
    nat_b: str | NatConfig,
    *,
    seed: int = 0,
    latency: float = 0.02,
    jitter: float = 0.0,
    loss: float = 0.0,
    duplicate: float = 0.0,
    reorder: float = 0.0,
    seed_compatible: bool = False,
    texts: int = 5,
    timeout: float = 10.0,
    nat_timeout: float | None = None,
    config: PeerConfig | None = None,
    discover: bool = False,
    cgn: str | None = None,
    cgn_kind: str | NatConfig = "carrier-grade",
) -> PunchResult:
    """Two peers behind ``nat_a`` and ``nat_b``, a public server; A asks to talk to B.

    Both register, A starts communication with B, and once both are
    connected each sends ``texts`` lines. ``time_to_connect`` is virtual
    seconds from A's request to both sides connected; later than ``timeout``
    does not count as connected. Link settings apply to
    the internet; the LANs behind the NATs are clean 1 ms links.
    With ``discover`` the server is also an RFC 5780 server and both peers
    learn their NAT's mapping first, so that a failed direct punch can climb
    to port prediction or birthday probing rather than the relay
    (``result.route`` says which way won).
    With ``cgn="same"`` both homes sit behind one carrier-grade NAT of
    ``cgn_kind`` (RFC 6888, see :meth:`Network.add_cgn`), with ``"different"``
    each behind its own.
    """
    internet = LinkConfig(latency, jitter, loss, duplicate, reorder)
    net = Network(seed, internet=internet)
    net.add_server(rfc5780=discover)
    carrier_a, carrier_b = _carriers(net, cgn, cgn_kind)
    box_a = _add_side(net, "A", nat_a, nat_timeout, carrier_a)
    box_b = _add_side(net, "B", nat_b, nat_timeout, carrier_b)
    peer_config = scenario_config(config, seed_compatible)
    a = net.add_peer("A", behind=box_a, config=peer_config, discover=discover)
    b = net.add_peer("B", behind=box_b, config=peer_config, discover=discover)

    return connect_and_chat(net, a, b, (_label(nat_a), _label(nat_b)), timeout, texts)


def connect_and_chat(
    net: Network, a: SimPeer, b: SimPeer, labels: tuple[str, str], timeout: float, texts: int
) -> PunchResult:
    """Register both, A asks for B, each sends ``texts`` lines: what happened (any topology)."""
    both, time_to_connect = _register_and_connect(net, a, b, timeout)
    if both:
        _chat(net, a, b, texts)
    return PunchResult(
        nat_a=labels[0],
        nat_b=labels[1],
        connected=both and bool(a.texts) and bool(b.texts),
        time_to_connect=time_to_connect,
        state_a=a.state,
        state_b=b.state,
        texts_a_to_b=len(b.texts),
        texts_b_to_a=len(a.texts),
        trace=net.trace,
        network=net,
        route=pair_route(a.core.route, b.core.route) if a.connected and b.connected else None,
        probes=max(a.core.probes, b.core.probes),
    )


def scenario_config(config: PeerConfig | None, seed_compatible: bool = False) -> PeerConfig:
    """The peers' config, with the generous registration budget of a scenario."""
    base = config or (PeerConfig.seed_compatible() if seed_compatible else PeerConfig())
    attempts = max(base.registration_attempts, SCENARIO_REGISTRATION_ATTEMPTS)
    return replace(base, registration_attempts=attempts)


def _register_and_connect(
    net: Network, a: SimPeer, b: SimPeer, timeout: float
) -> tuple[bool, float | None]:
    """Both register, A asks for B; whether both connected in time, and how long it took."""
    a.register()
    b.register()
    if not net.run_until(lambda: _ready(a) and _ready(b), 60.0):
        return False, None
    assert b.id is not None
    started = net.now
    a.connect(b.id)
    # A little past the timeout, so that a punch that gives up shows as failed.
    net.run_until(lambda: _settled(a) and _settled(b), timeout + 1.0)
    if not (a.connected and b.connected):
        return False, None
    assert a.connected_at is not None and b.connected_at is not None
    time_to_connect = max(a.connected_at, b.connected_at) - started
    return time_to_connect <= timeout, time_to_connect


def _ready(peer: SimPeer) -> bool:
    """Registered, and done with its NAT discovery if it runs one (as a user would wait)."""
    discovery = peer.discovery
    return peer.id is not None and (not peer.discover or (discovery is not None and discovery.done))


def _settled(peer: SimPeer) -> bool:
    return peer.state is not PeerState.REGISTERED and peer.state not in PUNCHING_STATES


def _chat(net: Network, a: SimPeer, b: SimPeer, lines: int) -> None:
    for number in range(1, lines + 1):
        if a.connected:
            a.send_text(f"hello from A #{number}")
        if b.connected:
            b.send_text(f"hello from B #{number}")
        net.run_for(0.05)
    # Acknowledged lines are resent until they arrive (or the peer is declared
    # gone), and arrive in order: under heavy loss one line resent with backoff
    # holds back those after it, so wait as long as the liveness timeout would.
    patience = max(a.core.config.peer_timeout, b.core.config.peer_timeout)
    net.run_until(lambda: len(a.texts) >= lines and len(b.texts) >= lines, patience)


# -- the success matrix ----------------------------------------------------------------


@dataclass(frozen=True)
class MatrixResult:
    """Which preset pairs connect: ``cells[(a, b)]`` is one :class:`PunchResult`."""

    kinds: tuple[str, ...]
    seed_compatible: bool
    cells: dict[tuple[str, str], PunchResult]

    def connected(self, a: str, b: str) -> bool:
        return self.cells[(a, b)].connected

    def as_table(self) -> list[list[bool]]:
        """Rows for A's NAT, columns for B's, in :attr:`kinds` order."""
        return [[self.connected(a, b) for b in self.kinds] for a in self.kinds]

    def text(self) -> str:
        """The matrix as DESIGN.md prints it: yes/no, A's NAT down, B's across."""
        rows = [["", *self.kinds]]
        for a in self.kinds:
            rows.append([a, *("yes" if self.connected(a, b) else "no" for b in self.kinds)])
        return text_table(rows, sep=" | ", center=True)

    def route(self, a: str, b: str) -> Route | None:
        """How the pair connected (None: it did not)."""
        cell = self.cells[(a, b)]
        return cell.route if cell.connected else None

    def routes_text(self) -> str:
        """The matrix by route (DESIGN.md section 7): which way each pair connected."""
        rows = [["", *self.kinds]]
        for a in self.kinds:
            cells = (self.cells[(a, b)] for b in self.kinds)
            rows.append([a, *(c.route_text() if c.connected else "no" for c in cells)])
        return text_table(rows, sep=" | ", center=True)


def success_matrix(
    kinds: Sequence[str | NatConfig] = PRESET_NAMES,
    *,
    seed_compatible: bool = False,
    seed: int = 0,
    progress: Callable[[int, int, PunchResult], None] | None = None,
    **punch_options: object,
) -> MatrixResult:
    """Punch every ordered pair of ``kinds``; ``progress(done, total, result)`` after each."""
    cells = {}
    total = len(kinds) ** 2
    for a in kinds:
        for b in kinds:
            result = punch(a, b, seed=seed, seed_compatible=seed_compatible, **punch_options)  # type: ignore[arg-type]
            cells[(_label(a), _label(b))] = result
            if progress is not None:
                progress(len(cells), total, result)
    return MatrixResult(tuple(_label(kind) for kind in kinds), seed_compatible, cells)


# -- many pairs at once ------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleResult:
    pairs: int
    connected_pairs: int
    wall_seconds: float
    virtual_seconds: float
    events: int
    trace_events: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds else float("inf")

    def summary(self) -> str:
        return (
            f"{self.connected_pairs}/{self.pairs} pairs connected in {self.virtual_seconds:.2f} "
            f"virtual s; {self.wall_seconds:.2f} s wall, {self.events} events "
            f"({self.events_per_second:,.0f}/s), {self.trace_events} trace events"
        )


def scale(
    pairs: int = 1000,
    *,
    seed: int = 0,
    nat: str = "port-restricted-cone",
    timeout: float = 20.0,
) -> ScaleResult:
    """``pairs`` pairs of peers, each behind its own NAT, one server, all punching at once."""
    started = time.perf_counter()
    net = Network(seed)
    net.add_server()
    couples = []
    for index in range(pairs):
        a = net.add_peer(f"A{index}", behind=net.add_nat(f"NAT A{index}", nat))
        b = net.add_peer(f"B{index}", behind=net.add_nat(f"NAT B{index}", nat))
        a.register()
        b.register()
        couples.append((a, b))
    unregistered = list(net.peers)

    def all_registered() -> bool:
        while unregistered and unregistered[-1].id is not None:
            unregistered.pop()
        return not unregistered

    net.run_until(all_registered, timeout)
    for a, b in couples:
        if a.id is not None and b.id is not None:
            a.connect(b.id)
    pending = list(couples)

    def all_connected() -> bool:
        while pending and pending[-1][0].connected and pending[-1][1].connected:
            pending.pop()
        return not pending

    net.run_until(all_connected, timeout)
    connected = sum(1 for a, b in couples if a.connected and b.connected)
    return ScaleResult(
        pairs=pairs,
        connected_pairs=connected,
        wall_seconds=time.perf_counter() - started,
        virtual_seconds=net.now,
        events=net.scheduler.processed,
        trace_events=len(net.trace),
    )
