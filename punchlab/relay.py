"""The rendezvous server's relay: the last rung of the traversal ladder, with no IO.

When no hole can be punched (two address-and-port-dependent NATs, or every
other way failed), two peers the server introduced talk *through* it, the
way TURN (RFC 8656) and Tailscale's DERP do. The same channel carries what
the peers tell each other to choose a way to connect (their NATs, "my ports
are open"), so it is also the ladder's signalling path.

Trust (DESIGN.md section 8): a RELAY is forwarded only when its token names
an introduction the server made and its sender is one of the two peers it
introduced, seen at the address it registered from; only ever to the other
peer's registered address; with a payload cap and a per-peer budget of
datagrams and bytes. The server's rule that no address is sent more than it
sent still holds: a relayed datagram is one more datagram to its receiver,
which must earn it with its own datagrams (heart-beats, or the empty RELAY a
punchlab peer returns for each one relayed to it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from punchlab.ratelimit import RateTable

__all__ = ["RELAY_PAYLOAD_BYTES", "RelayLimits", "RelayPair", "RelayTable"]


#: The largest message relayed by default (a punchlab peer cuts relayed chat lines to fit).
RELAY_PAYLOAD_BYTES = 1024


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """What one peer may send through the relay."""

    #: The largest message a peer may have relayed (a chat line fits).
    payload_bytes: int = RELAY_PAYLOAD_BYTES
    datagrams_per_second: float = 50.0
    datagram_burst: int = 100
    bytes_per_second: float = 16_384.0
    byte_burst: int = 65_536
    #: Introductions remembered for relaying (least recently used go first).
    max_pairs: int = 100_000

    def __post_init__(self) -> None:
        if self.payload_bytes < 1 or self.max_pairs < 1:
            raise ValueError("payload_bytes and max_pairs must be at least 1")
        if self.datagrams_per_second <= 0 or self.bytes_per_second <= 0:
            raise ValueError("relay rates must be positive")
        if self.datagram_burst < 1 or self.byte_burst < self.payload_bytes:
            raise ValueError("the bursts must allow at least one full datagram")


@dataclass(frozen=True, slots=True)
class RelayPair:
    """Two peers one introduction joined: who may relay to whom under its token."""

    initiator_id: str
    peer_id: str

    def partner_of(self, peer_id: str) -> str | None:
        if peer_id == self.initiator_id:
            return self.peer_id
        if peer_id == self.peer_id:
            return self.initiator_id
        return None


class RelayTable:
    """Introductions by token, and what each peer has spent of its relay budget."""

    def __init__(self, limits: RelayLimits | None = None) -> None:
        self.limits = limits or RelayLimits()
        self._pairs: OrderedDict[str, RelayPair] = OrderedDict()
        self._datagrams = RateTable(
            self.limits.datagrams_per_second, self.limits.datagram_burst, self.limits.max_pairs
        )
        self._bytes = RateTable(
            self.limits.bytes_per_second, self.limits.byte_burst, self.limits.max_pairs
        )
        #: Datagrams and bytes forwarded, for the server's log and panel.
        self.relayed = 0
        self.relayed_bytes = 0

    def remember(self, token: str, initiator_id: str, peer_id: str) -> None:
        """An introduction was made: its two peers may relay to each other under ``token``."""
        self._pairs[token] = RelayPair(initiator_id, peer_id)
        self._pairs.move_to_end(token)
        while len(self._pairs) > self.limits.max_pairs:
            self._pairs.popitem(last=False)

    def partner(self, token: str | None, sender_id: str) -> str | None:
        """Whom ``sender_id`` may relay to under ``token`` (None: not its introduction)."""
        pair = self._pairs.get(token) if token is not None else None
        return None if pair is None else pair.partner_of(sender_id)

    def refusal(self, sender_id: str, size: int, now: float) -> str | None:
        """Why ``size`` bytes from ``sender_id`` may not be relayed now (None: they may)."""
        if size > self.limits.payload_bytes:
            return f"relay payload of {size} bytes is over the {self.limits.payload_bytes}-byte cap"
        if not self._datagrams.take(sender_id, now):
            return "too many relayed datagrams per second"
        if not self._bytes.take_many(sender_id, float(size), now):
            return "too many relayed bytes per second"
        return None

    def count(self, size: int) -> None:
        self.relayed += 1
        self.relayed_bytes += size

    def __len__(self) -> int:
        return len(self._pairs)
