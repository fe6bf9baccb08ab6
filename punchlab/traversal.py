"""The traversal ladder (DESIGN.md section 7): which way to try once the direct punch failed.

A peer punches directly first (its partner's server-reflexive address, and
the peer-reflexive rescue; behind the same public IP, its private endpoints
too, see punchlab.candidates). When that has not worked after
``PeerConfig.direct_timeout``, both sides choose the next rung from the same
facts, so they choose the same one without another round trip: what each
side's RFC 5780 discovery found about its own NAT, sent to the partner
through the server's relay as soon as the two are introduced.

* **predicted**: the hard side's NAT maps per destination but allocates ports
  in sequence (RFC 5128 section 3.4 calls this port prediction): the easy
  side aims HELLOs at the next few ports after the last one seen.
* **birthday**: the hard side allocates at random, the other side maps
  independently of the endpoint: the hard side opens k sockets, each sending a
  HELLO to the easy side's address, and says so; the easy side then sends
  paced HELLOs to random ports of the hard side's IP until one lands on an
  opened port (Tailscale's "birthday paradox" punch: with k = 256, about half
  the time within 174 probes, 98% within 1,024).
* **relayed**: both sides are hard, or nobody knows, or the rung before failed:
  the rendezvous server forwards (RFC 8656's TURN and Tailscale's DERP do the
  same), and the peers keep trying to go direct.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass

from punchlab.stun.discovery import (
    ADDRESS_AND_PORT_DEPENDENT,
    ADDRESS_DEPENDENT,
    ENDPOINT_INDEPENDENT,
    DiscoveryResult,
)

__all__ = ["Allocation", "NatReport", "Route", "Rung", "next_rung", "pair_route", "route_text"]


class Route(enum.StrEnum):
    """How a connection was made, as every result reports it (cheapest first)."""

    #: Both behind one NAT: the partner's local address (punchlab.candidates).
    PRIVATE = "private"
    DIRECT = "direct"
    PEER_REFLEXIVE = "peer-reflexive"
    PREDICTED = "predicted"
    BIRTHDAY = "birthday"
    RELAYED = "relayed"


def pair_route(a: Route | None, b: Route | None) -> Route | None:
    """One route for a pair whose sides may say different things (one side adopted a
    peer-reflexive address, the other did not): the further up the ladder wins."""
    if a is None or b is None:
        return None
    order = list(Route)
    return max(a, b, key=order.index)


def route_text(route: Route | None, probes: int = 0) -> str:
    """A route as every user-facing line prints it: ``birthday (212 probes)``."""
    if route is None:
        return "no route"
    if route is Route.BIRTHDAY:
        return f"{route.value} ({probes} probes)"
    return route.value


class Allocation(enum.StrEnum):
    """How the NAT chose the public ports the discovery saw."""

    SAME = "same"  # one public port for every destination (nothing to predict)
    SEQUENTIAL = "sequential"
    RANDOM = "random"


class Rung(enum.StrEnum):
    """What this side does on the next rung (the partner does the complement)."""

    PREDICT_AIM = "aim HELLOs at the partner's next ports"
    PREDICT_OPEN = "keep sending HELLOs; the partner aims at our next port"
    BIRTHDAY_OPEN = "open many sockets toward the partner"
    BIRTHDAY_PROBE = "probe random ports of the partner"
    RELAY = "talk through the server's relay"


_MAPPINGS = (ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT)
#: A sequence whose steps are all this small is a counter, not chance.
MAX_SEQUENTIAL_STEP = 4
_FIELD = re.compile(r"([a-z]+)=([a-z0-9-]{1,40})")


@dataclass(frozen=True, slots=True)
class NatReport:
    """What a peer knows about its own NAT, as it tells its partner (a claim, checked)."""

    mapping: str | None = None
    allocation: Allocation | None = None
    #: The last public port the discovery saw, and the step between ports.
    last_port: int | None = None
    step: int | None = None

    @property
    def known(self) -> bool:
        return self.mapping is not None

    @property
    def hard(self) -> bool:
        """A new public port per destination: the partner's address will not be its own."""
        return self.mapping in (ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT)

    @property
    def predictable(self) -> bool:
        return (
            self.allocation is Allocation.SEQUENTIAL
            and self.last_port is not None
            and self.step is not None
        )

    def predicted_ports(self, window: int) -> list[int]:
        """The next ``window`` ports the NAT would hand out, after the last one seen."""
        assert self.last_port is not None and self.step is not None
        ports = (self.last_port + self.step * n for n in range(1, window + 1))
        return [port for port in ports if 0 < port < 65536]

    def encode(self) -> str:
        parts = [f"mapping={self.mapping or 'unknown'}"]
        if self.allocation is not None:
            parts.append(f"allocation={self.allocation.value}")
        if self.last_port is not None and self.step is not None:
            parts += [f"port={self.last_port}", f"step={self.step}"]
        return ";".join(parts)

    @classmethod
    def parse(cls, text: str) -> NatReport:
        """A report from the network; anything not understood is unknown, never an error."""
        fields: dict[str, str] = {}
        for part in text[:200].split(";"):
            match = _FIELD.fullmatch(part)
            if match is not None:
                fields[match[1]] = match[2]
        mapping = fields.get("mapping")
        allocation = fields.get("allocation")
        port, step = _number(fields.get("port"), 1, 65535), _number(fields.get("step"), 1, 64)
        return cls(
            mapping if mapping in _MAPPINGS else None,
            Allocation(allocation) if allocation in set(Allocation) else None,
            port if step is not None else None,
            step if port is not None else None,
        )

    @classmethod
    def from_discovery(cls, result: DiscoveryResult) -> NatReport:
        """The mapping behaviour and, from the ports the mapping tests saw, the allocation."""
        ports = [test.mapped[1] for test in result.tests if test.mapped is not None]
        ports = ports[:3]  # the mapping tests come first, from one socket
        if result.mapping is None or len(set(ports)) <= 1:
            return cls(result.mapping, Allocation.SAME if result.mapping else None)
        steps = {b - a for a, b in itertools.pairwise(ports) if b != a}
        if len(steps) == 1 and 0 < (step := steps.pop()) <= MAX_SEQUENTIAL_STEP:
            return cls(result.mapping, Allocation.SEQUENTIAL, ports[-1], step)
        return cls(result.mapping, Allocation.RANDOM)


def _number(text: str | None, low: int, high: int) -> int | None:
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def next_rung(mine: NatReport | None, partner: NatReport | None) -> Rung:
    """The rung after a failed direct punch; the partner, asking the same, gets the complement.

    Only one side may be hard: a hard NAT facing another hard one would need
    both sides to guess, so they relay.
    """
    if mine is None or partner is None or not (mine.known and partner.known):
        return Rung.RELAY
    if mine.hard and not partner.hard:
        return Rung.PREDICT_OPEN if mine.predictable else Rung.BIRTHDAY_OPEN
    if partner.hard and not mine.hard:
        return Rung.PREDICT_AIM if partner.predictable else Rung.BIRTHDAY_PROBE
    return Rung.RELAY
