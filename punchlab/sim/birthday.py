"""The birthday method of port prediction, measured through the simulator's NAT model.

Against a NAT that allocates outside ports at random, one side (the "hard"
side, behind that NAT) opens ``k`` mappings at once, one socket each, all sent
to the other side's public endpoint; the other (the "easy" side) then sends
probes to random outside ports of the hard side's NAT. A probe that lands on
one of the ``k`` mapped ports, and that the NAT's filter lets in, opens the
path. Tailscale's "How NAT traversal works" (2020) works out the odds with
the formula ``1 - (1 - k/N)^n``: about 50% after 174 probes and 98% after
1,024 for 256 open ports.

:func:`birthday_curve` does not use the formula: each trial is a fresh
:class:`~punchlab.sim.nat.NatBox` that allocates the mappings, and each
probe is let in or dropped by its :meth:`~punchlab.sim.nat.NatBox.inbound`,
so a change in the NAT model (its port range, its filter, its timeout)
shows up in the measured curve, next to the formula.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from punchlab.display import text_table
from punchlab.messages import Address
from punchlab.sim.nat import NatBox, NatConfig, nat_config

__all__ = ["PORT_RANGE", "BirthdayCurve", "birthday_curve", "birthday_formula"]

#: How many outside ports a :class:`NatBox` allocates from (FIRST_PORT to 65535).
PORT_RANGE = 65536 - NatBox.FIRST_PORT

#: The hard side's NAT and its inside host; the easy side's public endpoint.
HARD_NAT_IP = "198.51.100.2"
HARD_INSIDE_IP = "10.0.0.2"
EASY_ENDPOINT: Address = ("203.0.113.7", 40000)

#: The hard side's sockets are bound to consecutive inside ports from here.
FIRST_INSIDE_PORT = 5000
#: When the easy side's first probe goes out (the mappings were made at 0 s),
#: and the gap between probes: 1,024 probes take about a second, well inside
#: the 120 s a mapping lives, unless the NAT given has a shorter timeout.
PROBE_START = 0.1
PROBE_INTERVAL = 0.001


def birthday_formula(open_ports: int, probes: int, port_range: int) -> float:
    """1 - (1 - k/N)^n: the chance that n random probes hit one of k open ports among N.

    Each probe picks its port independently (with replacement), which is what
    :func:`birthday_curve` simulates; a prober that never repeats a port does
    slightly better.
    """
    if port_range < 1:
        raise ValueError(f"port_range must be at least 1, not {port_range}")
    if not 0 <= open_ports <= port_range:
        raise ValueError(f"open_ports must be between 0 and port_range {port_range}")
    if probes < 0:
        raise ValueError(f"probes must not be negative, not {probes}")
    return 1.0 - (1.0 - open_ports / port_range) ** probes


def hit_share(first_hits: Sequence[int | None], probes: int) -> float:
    """The share of runs whose first hit came by probe ``probes`` (0 when there are none)."""
    if not first_hits:
        return 0.0
    return sum(1 for hit in first_hits if hit is not None and hit <= probes) / len(first_hits)


@dataclass(frozen=True)
class BirthdayCurve:
    """Measured chances of a hit after each number of probes, from the same trials."""

    open_ports: int
    probes: tuple[int, ...]
    trials: int
    port_range: int
    seed: int
    #: The share of trials whose first hit came within each probe count.
    success: tuple[float, ...]
    #: Per trial, the 1-based index of the first probe the NAT let in, or
    #: None if none did within ``max(probes)``.
    first_hits: tuple[int | None, ...]

    def formula(self) -> tuple[float, ...]:
        """:func:`birthday_formula` at each probe count, to set beside :attr:`success`."""
        return tuple(birthday_formula(self.open_ports, n, self.port_range) for n in self.probes)

    def text(self) -> str:
        """A fixed-width table: probes, measured, formula, difference in percentage points."""
        title = (
            f"{self.open_ports:,} open ports among {self.port_range:,}, "
            f"{self.trials:,} trials (seed {self.seed})"
        )
        rows = [["probes", "measured", "formula", "difference"]]
        for n, measured, expected in zip(self.probes, self.success, self.formula(), strict=True):
            difference = 100 * (measured - expected)
            rows.append(
                [f"{n:>6,}", f"{measured:8.2%}", f"{expected:7.2%}", f"{difference:+7.2f} pp"]
            )
        return f"{title}\n{text_table(rows)}"


def birthday_curve(
    open_ports: int = 256,
    probes: Sequence[int] = (174, 1024),
    trials: int = 1000,
    seed: int = 0,
    nat: str | NatConfig = "symmetric",
    *,
    probe_from: Address = EASY_ENDPOINT,
    ask_every_probe: bool = False,
) -> BirthdayCurve:
    """Punch ``trials`` times through a fresh NAT of kind ``nat``; count the probes to a hit.

    In each trial the hard host sends one datagram from each of ``open_ports``
    inside sockets to the easy side's public endpoint, through
    :meth:`NatBox.outbound`; then the easy side sends up to ``max(probes)``
    probes from ``probe_from`` (by default that same public endpoint), each to
    a port drawn uniformly and independently from the NAT's outside range, and
    :meth:`NatBox.inbound` says whether it gets in. Probing from elsewhere
    shows the filter at work: a port-dependent filter drops probes from
    another port, an address-dependent one probes from another address.

    To stay fast, only probes that land on a port the NAT has handed out are
    put to :meth:`NatBox.inbound` (the NAT drops anything else as filtered);
    ``ask_every_probe=True`` asks it about every probe, slower, with the same
    result. Trial ``t`` draws from generators seeded with ``seed`` and ``t``,
    so any run is reproducible.
    """
    config = nat_config(nat)
    counts = _checked(open_ports, probes, trials)
    max_probes = max(counts)
    insides = [
        (
            HARD_INSIDE_IP,
            NatBox.FIRST_PORT + (FIRST_INSIDE_PORT - NatBox.FIRST_PORT + i) % PORT_RANGE,
        )
        for i in range(open_ports)
    ]
    first_hits = tuple(
        _first_hit(config, insides, max_probes, seed, trial, probe_from, ask_every_probe)
        for trial in range(trials)
    )
    # Every probe count reads the same trials: a hit by probe j is a hit by any n >= j.
    hits_by = [0] * (max_probes + 1)
    for hit in first_hits:
        if hit is not None:
            hits_by[hit] += 1
    for index in range(1, max_probes + 1):
        hits_by[index] += hits_by[index - 1]
    return BirthdayCurve(
        open_ports=open_ports,
        probes=counts,
        trials=trials,
        port_range=PORT_RANGE,
        seed=seed,
        success=tuple(hits_by[n] / trials for n in counts),
        first_hits=first_hits,
    )


def _checked(open_ports: int, probes: Sequence[int], trials: int) -> tuple[int, ...]:
    """The probe counts, once every argument has been found sound (else a clear ValueError)."""
    if isinstance(open_ports, bool) or not isinstance(open_ports, int):
        raise ValueError(f"open_ports must be an integer, not {open_ports!r}")
    if not 1 <= open_ports < PORT_RANGE:
        raise ValueError(
            f"open_ports must be at least 1 and below the NAT's {PORT_RANGE} outside ports,"
            f" not {open_ports}"
        )
    counts = tuple(probes)
    if not counts:
        raise ValueError("probes must name at least one probe count")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"each probe count must be a positive integer, not {count!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer, not {trials!r}")
    return counts


def _first_hit(
    config: NatConfig,
    insides: list[Address],
    max_probes: int,
    seed: int,
    trial: int,
    probe_from: Address,
    ask_every_probe: bool,
) -> int | None:
    """One trial: open the mappings in a fresh NAT, then probe until the NAT lets one in."""
    # Two generators, so the probes drawn do not depend on how many random
    # numbers the NAT used: the same seed probes the same ports through any NAT.
    box = NatBox("hard", HARD_NAT_IP, config, random.Random(f"birthday:{seed}:{trial}:nat"))
    draw = random.Random(f"birthday:{seed}:{trial}:probes").getrandbits
    outbound = box.outbound
    mapped = {outbound(inside, EASY_ENDPOINT, 0.0)[1] for inside in insides}
    inbound = box.inbound
    first_port = NatBox.FIRST_PORT
    for index in range(1, max_probes + 1):
        # 16 random bits are uniform over 0..65535; redrawing those below the
        # NAT's first port leaves them uniform over exactly its outside range.
        port = draw(16)
        while port < first_port:
            port = draw(16)
        if (ask_every_probe or port in mapped) and not isinstance(
            inbound(probe_from, port, PROBE_START + (index - 1) * PROBE_INTERVAL), str
        ):
            return index
    return None
