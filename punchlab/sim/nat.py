"""NAT boxes with the behaviours RFC 4787 names.

A NAT keeps a table of *mappings* from an inside endpoint (private ip:port) to
an outside port on its public address. Three independent choices decide
whether hole punching can work:

- **mapping**: is the same outside port reused for every destination
  (endpoint-independent), per destination address, or per destination
  address and port (the "symmetric" NAT)?
- **filtering**: which outside senders may reach a mapped port: anyone, only
  addresses the inside host has sent to, or only exact address:port pairs?
- **port allocation**: keep the inside port when free, count up, or pick at random.

Mappings expire after ``timeout`` seconds without *outbound* traffic. So does
each filter *permission* (each remote the mapping sent to), on its own timer,
as Linux conntrack keeps one entry per flow: a heart-beat to the server keeps
the mapping and the server's permission, not a silent partner's. Only outbound
traffic refreshes either (RFC 4787 REQ-6: outbound refresh is required,
inbound refresh optional), and one timeout serves every flow: stricter than
conntrack, which also counts replies and keeps a flow that saw them for 120 s.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace

from punchlab.display import text_table
from punchlab.messages import Address, format_address

__all__ = [
    "BEHAVIOURS",
    "CARRIER_GRADE",
    "PRESETS",
    "Behaviour",
    "Mapping",
    "NatBox",
    "NatConfig",
    "PortAllocation",
    "behaviour_config",
    "nat_config",
]


class Behaviour(enum.StrEnum):
    """How much of the remote endpoint a mapping or a filter looks at."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class PortAllocation(enum.StrEnum):
    PRESERVE = "preserve"
    SEQUENTIAL = "sequential"
    RANDOM = "random"


#: RFC 4787 REQ-5 asks for at least two minutes.
DEFAULT_NAT_TIMEOUT = 120.0

#: How many timeouts an expired permission is remembered, to name the drop.
PERMISSION_MEMORY = 4


@dataclass(frozen=True, slots=True)
class NatConfig:
    mapping: Behaviour = Behaviour.ENDPOINT_INDEPENDENT
    filtering: Behaviour = Behaviour.ADDRESS_AND_PORT_DEPENDENT
    allocation: PortAllocation = PortAllocation.PRESERVE
    timeout: float = DEFAULT_NAT_TIMEOUT
    hairpinning: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("NAT timeout must be positive")


_EIM, _ADM, _APDM = (
    Behaviour.ENDPOINT_INDEPENDENT,
    Behaviour.ADDRESS_DEPENDENT,
    Behaviour.ADDRESS_AND_PORT_DEPENDENT,
)

#: The classic names (DESIGN.md section 3). ``none`` is no NAT at all: a host
#: with a public address, so it has no entry here.
PRESETS: dict[str, NatConfig] = {
    "full-cone": NatConfig(_EIM, _EIM, name="full-cone"),
    "restricted-cone": NatConfig(_EIM, _ADM, name="restricted-cone"),
    "port-restricted-cone": NatConfig(_EIM, _APDM, name="port-restricted-cone"),
    "symmetric": NatConfig(_APDM, _APDM, PortAllocation.RANDOM, name="symmetric"),
}

#: Every preset name, ``none`` first, in order of increasing strictness.
PRESET_NAMES = ("none", *PRESETS)

#: A carrier-grade NAT (RFC 6888): the provider's NAT in front of many homes.
#: RFC 6888 REQ-1 makes RFC 4787's requirements apply, so it maps
#: endpoint-independently (RFC 4787 REQ-1) and hairpins (REQ-9); it filters by
#: address, the stricter of RFC 4787 REQ-8's two recommendations, and takes its
#: ports from a pool at random rather than keeping the home's.
CARRIER_GRADE = NatConfig(_EIM, _ADM, PortAllocation.RANDOM, hairpinning=True, name="carrier-grade")

#: Kinds that are not among the classic presets, by name (see :func:`nat_config`).
OTHER_KINDS: dict[str, NatConfig] = {CARRIER_GRADE.name: CARRIER_GRADE}

#: The short forms of the behaviours in the names of :data:`BEHAVIOURS`.
SHORT_NAMES = {_EIM: "EI", _ADM: "AD", _APDM: "APD"}


def behaviour_config(mapping: Behaviour, filtering: Behaviour) -> NatConfig:
    """A NAT named by its RFC 4787 mapping and filtering, e.g. ``EIM/APDF``.

    Endpoint-independent mapping keeps the inside port where it is free, as
    most home routers do; the two dependent mappings open a new port per
    destination, so they pick it at random, as the classic symmetric preset does.
    """
    allocation = PortAllocation.PRESERVE if mapping is _EIM else PortAllocation.RANDOM
    name = f"{SHORT_NAMES[mapping]}M/{SHORT_NAMES[filtering]}F"
    return NatConfig(mapping, filtering, allocation, name=name)


#: All nine mapping x filtering combinations, mapping the outer loop, each
#: from the most open to the strictest.
BEHAVIOURS: dict[str, NatConfig] = {
    config.name: config for config in (behaviour_config(m, f) for m in Behaviour for f in Behaviour)
}


def nat_config(kind: str | NatConfig, **overrides: object) -> NatConfig:
    """A preset or a :data:`BEHAVIOURS` name (with optional field overrides), or a config."""
    if isinstance(kind, NatConfig):
        config = kind
    else:
        config_or_none = PRESETS.get(kind) or BEHAVIOURS.get(kind) or OTHER_KINDS.get(kind)
        if config_or_none is None:
            choices = ", ".join((*PRESET_NAMES, *BEHAVIOURS, *OTHER_KINDS))
            raise ValueError(f"unknown NAT kind {kind!r}; choose one of {choices}")
        config = config_or_none
    return replace(config, **overrides) if overrides else config  # type: ignore[arg-type]


@dataclass(slots=True)
class Mapping:
    """One row of the NAT table."""

    inside: Address
    outside_port: int
    key: tuple[object, ...]
    created: float
    expires: float
    #: Remote endpoints the inside host sent to through this mapping (the
    #: filter), each with when its own permission expires. Expired ones stay a
    #: while (to tell "permission expired" from "filtered"), then are pruned.
    contacted: dict[Address, float] = field(default_factory=dict)
    #: When :meth:`NatBox.outbound` next prunes long-expired permissions.
    prune_at: float = 0.0

    def open_to(self, remote: Address, now: float) -> bool:
        """Whether this exact remote's permission is still open at ``now``."""
        return self.contacted.get(remote, now) > now


def remote_cell(remote: Address, expires: float, until: float, now: float) -> str:
    """A remote as a table shows it: its own expiry when it closes before its mapping
    (or a firewall's flow) does at ``until``."""
    if expires >= until:
        return format_address(remote)
    if expires <= now:
        return f"{format_address(remote)} (closed)"
    return f"{format_address(remote)} (closes in {expires - now:.1f} s)"


def permission_expiries(
    filtering: Behaviour, contacted: dict[Address, float], remote: Address
) -> list[float] | None:
    """The expiry times of the permissions that could admit ``remote`` (None: no filter).

    Address-dependent filtering admits on any permission to the remote's IP;
    address-and-port-dependent only on the exact endpoint's. A NAT's mapping and
    an IPv6 firewall's flow keep ``contacted`` alike.
    """
    if filtering is _EIM:
        return None
    if filtering is _ADM:
        return [e for address, e in contacted.items() if address[0] == remote[0]]
    expires = contacted.get(remote)
    return [] if expires is None else [expires]


def forget_stale(contacted: dict[Address, float], now: float, timeout: float) -> None:
    """Drop permissions expired :data:`PERMISSION_MEMORY` timeouts ago (bounds ``contacted``)."""
    horizon = now - PERMISSION_MEMORY * timeout
    for remote in [r for r, expires in contacted.items() if expires <= horizon]:
        del contacted[remote]


def _key(behaviour: Behaviour, inside: Address, remote: Address) -> tuple[object, ...]:
    if behaviour is _EIM:
        return (inside,)
    if behaviour is _ADM:
        return (inside, remote[0])
    return (inside, remote)


class NatBox:
    """A NAT between an inside network and the outside one, at ``outside_ip``.

    The network calls :meth:`outbound` and :meth:`inbound` for each datagram
    that crosses it; both return the rewritten address or the reason to drop.
    """

    FIRST_PORT = 1024

    def __init__(self, name: str, outside_ip: str, config: NatConfig, rng: random.Random) -> None:
        self.name = name
        self.outside_ip = outside_ip
        self.config = config
        self._rng = rng
        self._by_key: dict[tuple[object, ...], Mapping] = {}
        self._by_port: dict[int, Mapping] = {}
        self._next_port = 40000 if config.allocation is PortAllocation.SEQUENTIAL else 49152

    @property
    def outside(self) -> str:
        return self.outside_ip

    def outbound(self, inside: Address, remote: Address, now: float) -> Address:
        """Map an inside source to its outside address, creating or refreshing the mapping."""
        key = _key(self.config.mapping, inside, remote)
        mapping = self._by_key.get(key)
        if mapping is not None and mapping.expires <= now:
            self._remove(mapping)
            mapping = None
        if mapping is None:
            port = self._allocate(inside[1], now)
            mapping = Mapping(inside, port, key, now, now + self.config.timeout)
            self._by_key[key] = mapping
            self._by_port[port] = mapping
        mapping.expires = now + self.config.timeout
        mapping.contacted[remote] = mapping.expires
        if now >= mapping.prune_at:
            self._prune(mapping, now)
        return (self.outside_ip, mapping.outside_port)

    def _prune(self, mapping: Mapping, now: float) -> None:
        """Forget permissions expired :data:`PERMISSION_MEMORY` timeouts ago (bounds ``contacted``).

        Until then a datagram from such a remote is dropped as "permission
        expired", which a trace can explain; after, as "filtered by NAT", as a
        NAT that forgot the flow entirely would. Runs at most once per half
        timeout per mapping, so a mapping holds only the remotes it sent to in
        the last ``PERMISSION_MEMORY + 1.5`` timeouts, at linear cost.
        """
        forget_stale(mapping.contacted, now, self.config.timeout)
        mapping.prune_at = now + self.config.timeout / 2

    def outside_for(self, inside_ip: str) -> str:
        """The address the outside sees ``inside_ip`` come from: this NAT's own."""
        return self.outside_ip

    def admit(self, remote: Address, destination: Address, now: float) -> Address | str:
        """Where a datagram from ``remote`` to ``destination`` (one of this box's outside
        addresses) goes inside, or why it is dropped; a NAT looks at the port alone."""
        return self.inbound(remote, destination[1], now)

    def inbound(self, remote: Address, outside_port: int, now: float) -> Address | str:
        """The inside address for a datagram from ``remote``, or why it is dropped."""
        mapping = self._by_port.get(outside_port)
        if mapping is None:
            return "filtered by NAT"
        if mapping.expires <= now:
            return "mapping expired"
        permits = permission_expiries(self.config.filtering, mapping.contacted, remote)
        if permits is None:
            return mapping.inside
        if any(expires > now for expires in permits):
            return mapping.inside
        return "permission expired" if permits else "filtered by NAT"

    def _allocate(self, wanted: int, now: float) -> int:
        allocation = self.config.allocation
        if allocation is PortAllocation.PRESERVE and self._free(wanted, now):
            return wanted
        if allocation is PortAllocation.RANDOM:
            for _ in range(1000):
                port = self._rng.randrange(self.FIRST_PORT, 65536)
                if self._free(port, now):
                    return port
        for _ in range(65536):
            port = self._next_port
            self._next_port = self._next_port + 1 if self._next_port < 65535 else self.FIRST_PORT
            if self._free(port, now):
                return port
        raise RuntimeError(f"{self.name}: no free outside port")

    def _free(self, port: int, now: float) -> bool:
        mapping = self._by_port.get(port)
        if mapping is None:
            return True
        if mapping.expires <= now:
            self._remove(mapping)
            return True
        return False

    def _remove(self, mapping: Mapping) -> None:
        self._by_key.pop(mapping.key, None)
        if self._by_port.get(mapping.outside_port) is mapping:
            del self._by_port[mapping.outside_port]

    def mappings(self, now: float | None = None) -> list[Mapping]:
        """Current rows, oldest first; with ``now``, only those still alive."""
        rows = sorted(self._by_port.values(), key=lambda m: (m.created, m.outside_port))
        return [m for m in rows if now is None or m.expires > now]

    def table(self, now: float) -> list[dict[str, object]]:
        """The mapping table as rows a notebook can print or turn into a DataFrame."""
        return [
            {
                "inside": format_address(m.inside),
                "outside": format_address((self.outside_ip, m.outside_port)),
                "remotes": ", ".join(
                    remote_cell(r, e, m.expires, now) for r, e in m.contacted.items()
                ),
                "expires in s": round(m.expires - now, 3),
            }
            for m in self.mappings(now)
        ]

    def permissions(self, now: float) -> list[dict[str, object]]:
        """One row per filter permission still open: which mapping, which remote, when it closes."""
        return [
            {
                "inside": format_address(m.inside),
                "outside": format_address((self.outside_ip, m.outside_port)),
                "remote": format_address(remote),
                "closes in s": round(expires - now, 3),
            }
            for m in self.mappings(now)
            for remote, expires in m.contacted.items()
            if expires > now
        ]

    def show(self, now: float) -> str:
        """The mapping table as fixed-width text, for a notebook or a terminal."""
        rows = self.table(now)
        if not rows:
            return f"{self.name} ({self.config.name}): no mappings"
        columns = list(rows[0])
        cells = [columns] + [[str(row[c]) for c in columns] for row in rows]
        title = f"{self.name} ({self.config.name}, public address {self.outside_ip})"
        return f"{title}\n{text_table(cells)}"

    def __repr__(self) -> str:
        return f"<NatBox {self.name} {self.config.name} at {self.outside_ip}>"
