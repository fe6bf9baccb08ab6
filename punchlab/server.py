"""The rendezvous logic, with no IO.

The server gives each peer an identifier over UDP (so that it sees the peer's
*public* address, as rewritten by the peer's NAT) and, when one peer asks over
HTTP to talk to another, tells each side the other's public address. Drivers
(:mod:`punchlab.aio`, :mod:`punchlab.sim`) feed it datagrams and the time, and
send what it hands back.
"""

from __future__ import annotations

import math
import os
import random
import secrets
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from punchlab.messages import (
    FEATURE_ACK,
    Address,
    Message,
    MessageType,
    PunchlabError,
    RemoteProtocolError,
    decode,
    encode,
    format_address,
)

__all__ = [
    "DEFAULT_REGISTRATION_TTL",
    "DatagramRejected",
    "Introduction",
    "PeerRegistered",
    "Registration",
    "RegistrationExpired",
    "RendezvousCore",
    "RequestError",
    "ServerEvent",
    "ServerLimits",
    "UnknownIdentifier",
    "uuid4_text",
]

#: A registration lives this long after the last datagram from its owner.
#: Go clients send HEART-BEAT every 3 s, so ten missed beats end it.
DEFAULT_REGISTRATION_TTL = 30.0

#: Delays between retransmissions of an unacknowledged INITIATE_CHAT (only to
#: peers that announced the ``ack`` feature; Go clients get it once). A copy
#: goes out only if the peer has sent the server at least as many datagrams as
#: it received (plus the introduction itself): a peer that fell silent, or an
#: address that never asked, gets no flood.
NOTICE_RETRANSMIT_DELAYS = (0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


#: What a registered peer legitimately sends the server (and so earns answers).
_COUNTED = frozenset(
    {MessageType.REGISTRATION, MessageType.HEART_BEAT, MessageType.INITIATE_CHAT_ACK}
)


def uuid4_text(random_hex: str) -> str:
    """``str(uuid.UUID(hex=random_hex, version=4))``, in a quarter of the time.

    The identifiers are version-4 UUIDs as in the Go server; a busy server
    makes one per registration, so it formats them straight from the hex.
    """
    h = random_hex
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


class RequestError(PunchlabError):
    """A start-communication request the server refuses (HTTP 400)."""

    status = 400


class UnknownIdentifier(RequestError):
    """No live registration has this identifier (HTTP 404)."""

    status = 404

    def __init__(self, identifier: str, role: str) -> None:
        super().__init__(f"unknown {role} identifier {identifier!r}")
        self.identifier = identifier
        self.role = role


@dataclass(slots=True)
class Registration:
    """A peer the server knows: its identifier and the public address it came from."""

    peer_id: str
    address: Address
    registered_at: float
    last_seen: float
    features: frozenset[str] = frozenset()
    #: The REGISTRATION answer, built once: a retry gets the same bytes.
    answer: bytes = b""
    #: Datagrams from and to this address: the server never sends more than
    #: it was sent, plus the one unprompted INITIATE_CHAT (no reflection).
    received: int = 0
    sent: int = 0
    introduced: int = 0


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one source may cost the server.

    A token bucket per source IP limits REGISTRATION datagrams (a flood from
    one host gets a clear refusal, the others are unaffected), and the table
    of registrations has a ceiling so memory stays bounded.
    """

    registrations_per_second: float = 500.0
    registration_burst: int = 2500
    max_registrations: int = 100_000

    def __post_init__(self) -> None:
        if self.registrations_per_second <= 0 or self.registration_burst < 1:
            raise ValueError("registration rate and burst must be positive")
        if self.max_registrations < 1:
            raise ValueError("max_registrations must be at least 1")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class _PendingNotice:
    """An INITIATE_CHAT waiting for its acknowledgement (kept under the peer's address)."""

    token: str
    data: bytes
    due: float
    retransmits_left: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Introduction:
    """The answer to one start-communication request."""

    initiator_id: str
    peer_id: str
    initiator_address: Address
    peer_address: Address
    token: str


@dataclass(frozen=True, slots=True)
class PeerRegistered:
    peer_id: str
    address: Address
    repeated: bool


@dataclass(frozen=True, slots=True)
class PeerIntroduced:
    introduction: Introduction


@dataclass(frozen=True, slots=True)
class RegistrationExpired:
    peer_id: str
    address: Address


@dataclass(frozen=True, slots=True)
class DatagramRejected:
    """A datagram the server dropped, and why (it changed nothing)."""

    address: Address
    reason: str
    detail: str


ServerEvent = PeerRegistered | PeerIntroduced | RegistrationExpired | DatagramRejected


class RendezvousCore:
    """Registrations and introductions; the caller owns sockets and clocks.

    ``rng`` makes identifiers and tokens reproducible (the notebooks use a
    seeded one); without it they come from the operating system.
    """

    def __init__(
        self,
        *,
        registration_ttl: float = DEFAULT_REGISTRATION_TTL,
        rng: random.Random | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        if registration_ttl <= 0:
            raise ValueError("registration_ttl must be positive")
        self.registration_ttl = registration_ttl
        self.limits = limits or ServerLimits()
        self._buckets: dict[str, _Bucket] = {}
        self._buckets_swept = float("-inf")
        self._rng = rng
        # Ordered oldest-seen first, so the next expiry is always the first entry.
        self._by_id: OrderedDict[str, Registration] = OrderedDict()
        self._by_address: dict[Address, Registration] = {}
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: deque[ServerEvent] = deque()
        # At most one per peer (a newer introduction replaces an older one), so
        # this stays as small as the registration table.
        self._pending: dict[Address, _PendingNotice] = {}
        self.rejected: Counter[str] = Counter()
        self.introductions = 0

    # -- identifiers ----------------------------------------------------------------

    def _new_id(self) -> str:
        if self._rng is None:
            return uuid4_text(os.urandom(16).hex())
        return uuid4_text(f"{self._rng.getrandbits(128):032x}")

    def _new_token(self) -> str:
        if self._rng is None:
            return secrets.token_hex(8)
        return f"{self._rng.getrandbits(64):016x}"

    # -- queries ---------------------------------------------------------------------

    @property
    def registrations(self) -> list[Registration]:
        """Live registrations, least recently seen first."""
        return list(self._by_id.values())

    def lookup(self, peer_id: str) -> Registration | None:
        return self._by_id.get(peer_id)

    def __len__(self) -> int:
        return len(self._by_id)

    # -- sans-IO interface -----------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        """Handle one datagram from ``address``; bad input is recorded, never raised."""
        self._expire(now)
        try:
            message = decode(data)
        except RemoteProtocolError as exc:
            self._reject(address, exc.reason, str(exc))
            return
        registration = self._by_address.get(address)
        if registration is not None and message.type in _COUNTED:
            registration.received += 1
        if message.type is MessageType.REGISTRATION:
            if not self._take_token(address[0], now):
                self._reject(address, "rate limited", f"too many REGISTRATIONs from {address[0]}")
            elif registration is None and len(self._by_id) >= self.limits.max_registrations:
                self._reject(address, "server full", "the registration table is full")
            else:
                self._register(address, now, message, registration)
        elif message.type is MessageType.INITIATE_CHAT_ACK:
            self._acknowledge(address, message, now)
        elif message.type is MessageType.HEART_BEAT:
            if registration is None:
                self._reject(address, "not registered", "HEART-BEAT from an unregistered address")
            else:
                self._refresh(registration, now)
        else:
            self._reject(address, "unexpected type", f"{message.type} is not for the server")

    def start_communication(self, initiator_id: str, peer_id: str, now: float) -> Introduction:
        """Introduce two registered peers; raise :class:`RequestError` and send nothing otherwise.

        The initiator learns the peer's public address (the caller answers it
        over HTTP) and the peer is sent ``INITIATE_CHAT`` with the initiator's.
        Both get the same token, in a key the Go implementation ignores.
        """
        self._expire(now)
        if not isinstance(initiator_id, str) or not isinstance(peer_id, str):
            raise RequestError("peerInitiator and peer must be strings")
        initiator = self._by_id.get(initiator_id)
        if initiator is None:
            raise UnknownIdentifier(initiator_id, "initiator")
        peer = self._by_id.get(peer_id)
        if peer is None:
            raise UnknownIdentifier(peer_id, "peer")
        if initiator is peer:
            raise RequestError("a peer cannot start communication with itself")
        introduction = Introduction(
            initiator_id=initiator_id,
            peer_id=peer_id,
            initiator_address=initiator.address,
            peer_address=peer.address,
            token=self._new_token(),
        )
        notice = Message(
            MessageType.INITIATE_CHAT,
            format_address(initiator.address),
            token=introduction.token,
        )
        data = encode(notice)
        peer.introduced += 1  # each introduction may send one datagram unprompted
        self._send(data, peer)
        if FEATURE_ACK in peer.features:
            delays = list(NOTICE_RETRANSMIT_DELAYS)
            self._pending[peer.address] = _PendingNotice(
                introduction.token, data, now + delays.pop(0), delays
            )
        self.introductions += 1
        self._events.append(PeerIntroduced(introduction))
        return introduction

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Everything queued since the last call, oldest first."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """When the oldest registration expires or a notice is due again, if ever.

        Expiry is rounded up to the next whole second: a registration may live
        up to a second longer, and the timer does not move on every datagram.
        """
        due = None
        if self._by_id:
            oldest = next(iter(self._by_id.values()))
            due = float(math.ceil(oldest.last_seen + self.registration_ttl))
        if self._pending:
            notice_due = min(notice.due for notice in self._pending.values())
            due = notice_due if due is None else min(due, notice_due)
        return due

    def handle_timer(self, now: float) -> None:
        self._expire(now)
        for address, notice in list(self._pending.items()):
            if notice.due > now:
                continue
            peer = self._by_address.get(address)
            if peer is not None and not self._send(notice.data, peer):
                # Not heard from the peer since the last copy: look again soon,
                # without using up a retransmission.
                notice.due = now + NOTICE_RETRANSMIT_DELAYS[0]
                continue
            if notice.retransmits_left:
                notice.due = now + notice.retransmits_left.pop(0)
            else:
                del self._pending[address]

    def next_event(self) -> ServerEvent | None:
        return self._events.popleft() if self._events else None

    # -- internals -------------------------------------------------------------------

    def _register(
        self, address: Address, now: float, message: Message, registration: Registration | None
    ) -> None:
        repeated = registration is not None
        if registration is None:
            peer_id = self._new_id()
            features = frozenset(filter(None, (message.features or "").split(",")))
            answer = encode(Message(MessageType.REGISTRATION, peer_id))
            registration = Registration(peer_id, address, now, now, features, answer, received=1)
            self._by_id[peer_id] = registration
            self._by_address[address] = registration
        else:
            # A retry whose answer was lost: same peer, same identifier.
            self._refresh(registration, now)
        self._send(registration.answer, registration)
        self._events.append(PeerRegistered(registration.peer_id, address, repeated))

    def _acknowledge(self, address: Address, message: Message, now: float) -> None:
        notice = self._pending.get(address)
        if notice is None or notice.token != message.token:
            self._reject(address, "unexpected ack", "INITIATE_CHAT_ACK for no pending introduction")
            return
        del self._pending[address]
        registration = self._by_address.get(address)
        if registration is not None:
            self._refresh(registration, now)

    def _send(self, data: bytes, to: Registration) -> bool:
        """Queue ``data`` unless ``to`` would get more than it sent (plus one per introduction)."""
        if to.sent >= to.received + to.introduced:
            self.rejected["reflection limit"] += 1
            return False
        to.sent += 1
        self._outbox.append((data, to.address))
        return True

    def _take_token(self, ip: str, now: float) -> bool:
        limits = self.limits
        bucket = self._buckets.get(ip)
        if bucket is None:
            cap = 2 * limits.max_registrations
            if len(self._buckets) >= cap:
                if now - self._buckets_swept >= 1.0:  # at most one sweep a second
                    self._buckets_swept = now
                    self._forget_full_buckets(now)
                if len(self._buckets) >= cap:
                    return False  # every bucket busy: a flood from many hosts
            bucket = self._buckets[ip] = _Bucket(float(limits.registration_burst), now)
        tokens = bucket.tokens
        if now > bucket.updated:  # refill for the time since (plain comparisons: hot path)
            tokens += (now - bucket.updated) * limits.registrations_per_second
            if tokens > limits.registration_burst:
                tokens = float(limits.registration_burst)
            bucket.updated = now
        if tokens < 1.0:
            bucket.tokens = tokens
            return False
        bucket.tokens = tokens - 1.0
        return True

    def _forget_full_buckets(self, now: float) -> None:
        """Buckets that have refilled carry no information; dropping them bounds memory."""
        limits = self.limits
        for ip, bucket in list(self._buckets.items()):
            refill = (now - bucket.updated) * limits.registrations_per_second
            if bucket.tokens + refill >= limits.registration_burst:
                del self._buckets[ip]

    def _refresh(self, registration: Registration, now: float) -> None:
        """The peer was heard from: its registration lives on, and expires last."""
        registration.last_seen = now
        self._by_id.move_to_end(registration.peer_id)

    def _expire(self, now: float) -> None:
        while self._by_id:
            registration = next(iter(self._by_id.values()))
            if registration.last_seen + self.registration_ttl > now:
                return
            peer_id = registration.peer_id
            del self._by_id[peer_id]
            del self._by_address[registration.address]
            self._pending.pop(registration.address, None)
            self._events.append(RegistrationExpired(peer_id, registration.address))

    def _reject(self, address: Address, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self._events.append(DatagramRejected(address, reason, detail))
