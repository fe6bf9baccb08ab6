"""The rendezvous logic, with no IO.

The server gives each peer an identifier over UDP (so that it sees the peer's
*public* address, as rewritten by the peer's NAT) and, when one peer asks over
HTTP to talk to another, tells each side the other's public address. Drivers
(:mod:`punchlab.aio`, :mod:`punchlab.sim`) feed it datagrams and the time, and
send what it hands back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import random
import secrets
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from punchlab.addresses import same_host, share_key
from punchlab.candidates import format_local, parse_local
from punchlab.messages import (
    FEATURE_ACK,
    FEATURE_RELAY,
    FEATURE_RFC5780,
    FEATURE_SECRET,
    FEATURE_TOKEN,
    PEER_FEATURES,
    Address,
    DatagramIgnored,
    MalformedMessage,
    Message,
    MessageType,
    PunchlabError,
    RemoteProtocolError,
    decode,
    encode,
    format_address,
    json_field,
    parse_features,
)
from punchlab.ratelimit import Bucket as _Bucket
from punchlab.ratelimit import refill as _refill
from punchlab.relay import RelayLimits, RelayTable
from punchlab.stun.codec import looks_like_stun
from punchlab.stun.responder import StunEndpoints, StunRefused, StunResponder

__all__ = [
    "DEFAULT_REGISTRATION_TTL",
    "SERVER_FEATURES",
    "DatagramIgnored",
    "Forbidden",
    "Introduction",
    "PeerIntroduced",
    "PeerRegistered",
    "PeerRelayed",
    "Registration",
    "RegistrationEvicted",
    "RegistrationExpired",
    "RendezvousCore",
    "RequestError",
    "ServerEvent",
    "ServerLimits",
    "TooManyIntroductions",
    "UnknownIdentifier",
    "answer_start_communication",
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


#: What a punchlab server tells a peer it can do, in its REGISTRATION answer.
#: A JSON datagram's first byte: ``{``, or whitespace before it (JSON allows it, and
#: tab, newline and carriage return have the two zero bits a STUN header starts with).
_JSON_STARTS = (b"{", b" ", b"\t", b"\n", b"\r")

SERVER_FEATURES = ",".join(sorted({FEATURE_ACK, FEATURE_RELAY, FEATURE_SECRET, FEATURE_TOKEN}))

#: What a registered peer legitimately sends the server (and so earns answers).
_COUNTED = frozenset(
    {
        MessageType.REGISTRATION,
        MessageType.HEART_BEAT,
        MessageType.INITIATE_CHAT_ACK,
        MessageType.RELAY,
    }
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


class Forbidden(RequestError):
    """The caller has not shown that it is the initiator it names (HTTP 403)."""

    status = 403


class TooManyIntroductions(RequestError):
    """The peer was introduced too often lately (HTTP 429): no reflection through it."""

    status = 429


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
    #: Proof that a start-communication request comes from this peer; only
    #: peers that announced features get one (a Go client is checked by IP).
    secret: str | None = None
    #: Datagrams from and to this address: the server never sends more than
    #: it was sent, plus the one unprompted INITIATE_CHAT (no reflection).
    received: int = 0
    sent: int = 0
    introduced: int = 0
    #: Token bucket of introductions *to* this peer (see ServerLimits).
    introductions: _Bucket | None = None
    #: The local addresses it claimed (punchlab.candidates), checked and bounded.
    local: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one source may cost the server.

    A token bucket per source IP limits REGISTRATION datagrams (a flood from
    one host gets a clear refusal, the others are unaffected), and the table
    of registrations has a ceiling so memory stays bounded. One IPv4 address
    or IPv6 /64 holds at most ``max_registrations_per_ip`` of it (a whole class behind
    one NAT fits), and a full table makes room by evicting the oldest entry
    never heard from again after its first answer, so a flood from a few
    addresses cannot lock everyone else out. A peer is introduced at most
    ``introduction_burst`` times at once and ``introductions_per_second``
    after that: each introduction sends it one datagram it never asked for.
    """

    registrations_per_second: float = 500.0
    registration_burst: int = 2500
    max_registrations: int = 100_000
    max_registrations_per_ip: int = 2_000
    introductions_per_second: float = 0.5
    introduction_burst: int = 5
    #: What one initiator may ask for one peer: at once, then per second.
    pair_introduction_burst: int = 3
    pair_introductions_per_second: float = 0.2

    def __post_init__(self) -> None:
        if self.registrations_per_second <= 0 or self.registration_burst < 1:
            raise ValueError("registration rate and burst must be positive")
        if self.max_registrations < 1 or self.max_registrations_per_ip < 1:
            raise ValueError("max_registrations and max_registrations_per_ip must be at least 1")
        if self.introductions_per_second <= 0 or self.introduction_burst < 1:
            raise ValueError("introduction rate and burst must be positive")
        if self.pair_introductions_per_second <= 0 or self.pair_introduction_burst < 1:
            raise ValueError("pair introduction rate and burst must be positive")


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
    #: What the peer announced (the initiator learns it with the address).
    peer_features: frozenset[str] = frozenset()
    #: The peer's local addresses, for an initiator behind the same public IP.
    peer_local: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class PeerRegistered:
    peer_id: str
    address: Address
    repeated: bool


@dataclass(frozen=True, slots=True)
class PeerIntroduced:
    introduction: Introduction


@dataclass(frozen=True, slots=True)
class PeerRelayed:
    """One datagram went through the relay (DESIGN.md section 7's last rung)."""

    from_id: str
    to_id: str
    size: int


@dataclass(frozen=True, slots=True)
class RegistrationExpired:
    peer_id: str
    address: Address


@dataclass(frozen=True, slots=True)
class RegistrationEvicted:
    """Dropped to make room: never heard from again after its first answer."""

    peer_id: str
    address: Address


ServerEvent = (
    PeerRegistered
    | PeerIntroduced
    | PeerRelayed
    | RegistrationExpired
    | RegistrationEvicted
    | DatagramIgnored
)


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
        rfc5780_port: int | None = None,
        relay_limits: RelayLimits | None = None,
    ) -> None:
        """``rfc5780_port``: where this host's full RFC 5780 server listens, if it runs one
        (announced to punchlab peers as the feature ``rfc5780=PORT``)."""
        if registration_ttl <= 0:
            raise ValueError("registration_ttl must be positive")
        self.registration_ttl = registration_ttl
        self.limits = limits or ServerLimits()
        self.features = SERVER_FEATURES
        if rfc5780_port is not None:
            self.announce_rfc5780(rfc5780_port)
        #: Binding requests on the rendezvous port get an answer (a STUN server in
        #: one address); the driver tells the core that address once it is bound.
        self.stun = StunResponder(StunEndpoints(("0.0.0.0", 0)))
        self._buckets: dict[str, _Bucket] = {}
        self._buckets_swept = float("-inf")
        self._rng = rng
        self._secret_key = os.urandom(32)
        # Ordered oldest-seen first, so the next expiry is always the first entry.
        self._by_id: OrderedDict[str, Registration] = OrderedDict()
        self._by_address: dict[Address, Registration] = {}
        #: Registrations not heard from since their first answer, oldest first,
        #: overall and per share (an IPv4 address or IPv6 /64, see
        #: addresses.share_key): the first to go when room is needed.
        self._quiet: OrderedDict[str, Registration] = OrderedDict()
        self._quiet_by_ip: dict[str, OrderedDict[str, Registration]] = {}
        self._count_by_ip: Counter[str] = Counter()
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: deque[ServerEvent] = deque()
        # At most one per peer (a newer introduction replaces an older one), so
        # this stays as small as the registration table.
        self._pending: dict[Address, _PendingNotice] = {}
        #: Introduction budgets per (initiator, peer), least recently used first.
        self._pair_budgets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self.rejected: Counter[str] = Counter()
        self.introductions = 0
        self.relay = RelayTable(relay_limits)

    # -- identifiers ----------------------------------------------------------------

    def _new_id(self) -> str:
        if self._rng is None:
            return uuid4_text(os.urandom(16).hex())
        return uuid4_text(f"{self._rng.getrandbits(128):032x}")

    def _new_token(self) -> str:
        if self._rng is None:
            return secrets.token_hex(8)
        return f"{self._rng.getrandbits(64):016x}"

    def _secret_for(self, peer_id: str) -> str:
        """The registration secret of ``peer_id``: keyed by this server's random key.

        Never from the seeded generator: a notebook's reproducible identifiers
        must not make secrets guessable, and drawing them would shift every
        identifier and token after the first registration.
        """
        return hmac.new(self._secret_key, peer_id.encode(), hashlib.sha256).hexdigest()[:32]

    # -- queries ---------------------------------------------------------------------

    @property
    def registrations(self) -> list[Registration]:
        """Live registrations, least recently seen first."""
        return list(self._by_id.values())

    def lookup(self, peer_id: str) -> Registration | None:
        return self._by_id.get(peer_id)

    def lookup_address(self, address: Address) -> Registration | None:
        return self._by_address.get(address)

    def __len__(self) -> int:
        return len(self._by_id)

    # -- sans-IO interface -----------------------------------------------------------

    def announce_rfc5780(self, port: int) -> None:
        """Tell punchlab peers, in each registration answer, where this host's RFC 5780
        server listens (the feature ``rfc5780=PORT``)."""
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {port}")
        self.features = f"{SERVER_FEATURES},{FEATURE_RFC5780}={port}"

    def bind(self, local_address: Address) -> None:
        """The address the driver's socket is bound to (STUN answers name it as their origin)."""
        self.stun.endpoints = StunEndpoints(local_address)

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        """Handle one datagram from ``address``; bad input is recorded, never raised."""
        self._expire(now)
        if data[:1] not in _JSON_STARTS and looks_like_stun(data):
            self._answer_stun(data, address, now)
            return
        try:
            message = decode(data)
        except RemoteProtocolError as exc:
            self._reject(address, exc.reason, str(exc))
            return
        registration = self._by_address.get(address)
        if registration is not None and message.type in _COUNTED:
            registration.received += 1
        if message.type is MessageType.REGISTRATION:
            share = share_key(address[0])  # once per datagram: this is the busiest path
            if not self._take_token(share, now):
                self._reject(address, "rate limited", f"too many REGISTRATIONs from {address[0]}")
            elif registration is None and not self._make_room(address, share):
                return
            else:
                self._register(address, now, message, registration, share)
        elif message.type is MessageType.INITIATE_CHAT_ACK:
            self._acknowledge(address, message, now)
        elif message.type is MessageType.HEART_BEAT:
            if registration is None:
                self._reject(address, "not registered", "HEART-BEAT from an unregistered address")
            else:
                self._refresh(registration, now)
        elif message.type is MessageType.RELAY:
            self._relay(address, message, registration, now)
        else:
            self._reject(address, "unexpected type", f"{message.type} is not for the server")

    def _answer_stun(self, data: bytes, address: Address, now: float) -> None:
        """A STUN Binding on the rendezvous port: the public address, as registration gives."""
        answer = self.stun.answer(data, address, self.stun.endpoints.primary, now)
        if isinstance(answer, StunRefused):
            self._reject(address, "STUN refused", answer.reason)
        else:
            self._outbox.append((answer.data, address))

    def start_communication(
        self,
        initiator_id: str,
        peer_id: str,
        now: float,
        *,
        secret: str | None = None,
        source_ip: str | None = None,
    ) -> Introduction:
        """Introduce two registered peers; raise :class:`RequestError` and send nothing otherwise.

        The caller must show it is the initiator: with the secret the initiator
        got at registration, or, for a Go client (which has none), by asking
        from the IP address it registered from (``source_ip``, the HTTP
        client's address). The initiator learns the peer's public address and
        features (the caller answers them over HTTP) and the peer is sent
        ``INITIATE_CHAT`` with the initiator's. Both get the same token, in a
        key the Go implementation ignores.
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
        self._check_initiator(initiator, secret, source_ip)
        self._take_introduction(initiator, peer, now)
        introduction = Introduction(
            initiator_id=initiator_id,
            peer_id=peer_id,
            initiator_address=initiator.address,
            peer_address=peer.address,
            token=self._new_token(),
            peer_features=peer.features,
            peer_local=_local_for(peer, initiator),
        )
        self._notify(initiator, peer, introduction.token, now)
        self.relay.remember(introduction.token, initiator_id, peer_id)
        self.introductions += 1
        self._events.append(PeerIntroduced(introduction))
        return introduction

    def _notify(self, initiator: Registration, peer: Registration, token: str, now: float) -> None:
        """Send ``peer`` its INITIATE_CHAT (again until acknowledged, if it said ``ack``)."""
        notice = Message(
            MessageType.INITIATE_CHAT,
            format_address(initiator.address),
            token=token,
            # The partner's list, to a peer that can read it (Go clients cannot),
            # and the peer's own secret: proof that the server sent it, not a
            # stranger who can forge the server's source address.
            features=",".join(sorted(initiator.features)) if peer.secret is not None else None,
            secret=peer.secret,
            local=format_local(_local_for(initiator, peer)),
        )
        data = encode(notice)
        peer.introduced += 1  # each introduction may send one datagram unprompted
        self._send(data, peer)
        if FEATURE_ACK in peer.features:
            delays = list(NOTICE_RETRANSMIT_DELAYS)
            self._pending[peer.address] = _PendingNotice(token, data, now + delays.pop(0), delays)

    @staticmethod
    def _check_initiator(
        initiator: Registration, secret: str | None, source_ip: str | None
    ) -> None:
        """Raise :class:`Forbidden` unless the caller has shown it is ``initiator``."""
        if initiator.secret is not None:
            if not isinstance(secret, str) or not secrets.compare_digest(
                secret.encode("utf-8", "replace"), initiator.secret.encode()
            ):
                raise Forbidden("the secret does not match the initiator's registration")
        elif source_ip is None or not same_host(source_ip, initiator.address[0]):
            raise Forbidden(
                "an initiator without a secret must ask from the address it registered from"
            )

    def _take_introduction(self, initiator: Registration, peer: Registration, now: float) -> None:
        """Raise :class:`TooManyIntroductions` when ``peer`` was introduced too often lately.

        Two budgets: the peer's own (it bounds what the peer is sent unasked)
        and the pair's (so that one initiator asking again and again cannot
        use up the peer's budget and keep everyone else away from it).
        """
        limits = self.limits
        if peer.introductions is None:  # made on first use: most peers are never introduced
            peer.introductions = _Bucket(float(limits.introduction_burst), now)
        key = (initiator.peer_id, peer.peer_id)
        pair = self._pair_budgets.pop(key, None) or _Bucket(
            float(limits.pair_introduction_burst), now
        )
        self._pair_budgets[key] = pair  # most recent last: the oldest go first
        while len(self._pair_budgets) > limits.max_registrations:
            self._pair_budgets.popitem(last=False)
        pair_ok = _refill(
            pair, now, limits.pair_introductions_per_second, limits.pair_introduction_burst
        )
        peer_ok = _refill(
            peer.introductions, now, limits.introductions_per_second, limits.introduction_burst
        )
        if not (pair_ok and peer_ok):
            who = "you asked for this peer" if not pair_ok else "this peer was introduced"
            raise TooManyIntroductions(f"{who} too often lately; try again in a few seconds")
        pair.tokens -= 1.0
        peer.introductions.tokens -= 1.0

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
        self,
        address: Address,
        now: float,
        message: Message,
        registration: Registration | None,
        share: str,
    ) -> None:
        repeated = registration is not None
        if registration is None:
            registration = self._new_registration(address, now, message, share)
        else:
            # A retry whose answer was lost: same peer, same identifier.
            self._refresh(registration, now)
        self._send(registration.answer, registration)
        self._events.append(PeerRegistered(registration.peer_id, address, repeated))

    def _new_registration(
        self, address: Address, now: float, message: Message, share: str
    ) -> Registration:
        """Enter a new peer; one that announced features gets a secret and the server's list.

        ``share`` is ``share_key(address[0])``, what the peer is counted under.
        """
        peer_id = self._new_id()
        features = parse_features(message.features) & PEER_FEATURES
        secret = None
        if not features:  # announced nothing we know: the Go original, the short answer
            answer = encode(Message(MessageType.REGISTRATION, peer_id))
        else:
            secret = self._secret_for(peer_id)
            answer = encode(
                Message(MessageType.REGISTRATION, peer_id, features=self.features, secret=secret)
            )
        registration = Registration(
            peer_id,
            address,
            now,
            now,
            features,
            answer,
            secret,
            received=1,
            local=self._local_claims(address, message) if features else (),
        )
        self._by_id[peer_id] = registration
        self._by_address[address] = registration
        self._count_by_ip[share] += 1
        self._quiet[peer_id] = registration
        self._quiet_by_ip.setdefault(share, OrderedDict())[peer_id] = registration
        return registration

    def _local_claims(self, address: Address, message: Message) -> tuple[Address, ...]:
        """The local addresses a REGISTRATION claims; a bad claim is recorded and dropped
        (the peer still registers: it only loses the private route)."""
        try:
            claims = parse_local(message.local)
        except MalformedMessage as exc:
            self._reject(address, "bad local address", str(exc))
            return ()
        return tuple(claim for claim in claims if claim != address)

    def _make_room(self, address: Address, share: str) -> bool:
        """Room for one more registration from ``address`` (counted under ``share``)."""
        if self._count_by_ip[share] >= self.limits.max_registrations_per_ip:
            own_quiet = self._quiet_by_ip.get(share)
            if not own_quiet:
                self._reject(address, "address full", f"too many registrations from {share}")
                return False
            self._evict(next(iter(own_quiet.values())))
        if len(self._by_id) >= self.limits.max_registrations:
            if not self._quiet:
                self._reject(address, "server full", "the registration table is full")
                return False
            self._evict(next(iter(self._quiet.values())))
        return True

    def _evict(self, registration: Registration) -> None:
        self._forget(registration)
        self._events.append(RegistrationEvicted(registration.peer_id, registration.address))

    def _forget(self, registration: Registration) -> None:
        """Remove ``registration`` from every table."""
        peer_id, address = registration.peer_id, registration.address
        del self._by_id[peer_id]
        del self._by_address[address]
        self._pending.pop(address, None)
        self._heard_again(registration)
        share = share_key(address[0])
        self._count_by_ip[share] -= 1
        if self._count_by_ip[share] <= 0:
            del self._count_by_ip[share]

    def _heard_again(self, registration: Registration) -> None:
        """No longer quiet: the peer spoke after its first answer (or is gone)."""
        if self._quiet.pop(registration.peer_id, None) is None:
            return
        share = share_key(registration.address[0])
        own_quiet = self._quiet_by_ip[share]
        del own_quiet[registration.peer_id]
        if not own_quiet:
            del self._quiet_by_ip[share]

    def _settle_notice(self, address: Address, token: str | None) -> bool:
        """Stop resending the INITIATE_CHAT of ``token`` to ``address``; whether one was due."""
        notice = self._pending.get(address)
        if notice is None or notice.token != token:
            return False
        del self._pending[address]
        return True

    def _acknowledge(self, address: Address, message: Message, now: float) -> None:
        if not self._settle_notice(address, message.token):
            self._reject(address, "unexpected ack", "INITIATE_CHAT_ACK for no pending introduction")
            return
        registration = self._by_address.get(address)
        if registration is not None:
            self._refresh(registration, now)

    def _relay(
        self, address: Address, message: Message, sender: Registration | None, now: float
    ) -> None:
        """Forward a RELAY to the sender's introduced partner, within the relay's limits.

        An empty payload forwards nothing: it only earns its sender credit for
        what is relayed to it (it was counted as received above).
        """
        if sender is None:
            self._reject(address, "not registered", "RELAY from an unregistered address")
            return
        partner_id = self.relay.partner(message.token, sender.peer_id)
        if partner_id is None:
            self._reject(address, "relay refused", "RELAY without a token of its introductions")
            return
        self._refresh(sender, now)
        self._settle_notice(address, message.token)  # it uses the token: it was introduced
        if not message.payload:
            return
        partner = self._by_id.get(partner_id)
        if partner is None:
            self._reject(address, "relay refused", "RELAY to a peer no longer registered")
            return
        if FEATURE_RELAY not in partner.features:  # the Go client would ignore it anyway
            self._reject(address, "relay refused", "RELAY to a peer that cannot read it")
            return
        notice = self._pending.get(partner.address)
        if notice is not None and notice.token == message.token:
            # It has not acknowledged the introduction: it cannot read this yet,
            # and the datagram would spend the credit its INITIATE_CHAT needs.
            self._reject(address, "relay refused", "RELAY to a peer not yet introduced")
            return
        size = len(message.payload.encode("utf-8", "replace"))
        refusal = self.relay.refusal(sender.peer_id, size, now)
        if refusal is not None:
            self._reject(address, "relay limited", refusal)
            return
        data = encode(Message(MessageType.RELAY, message.payload, token=message.token))
        if self._send(data, partner):
            self.relay.count(size)
            self._events.append(PeerRelayed(sender.peer_id, partner_id, size))

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
        if self._quiet:
            self._heard_again(registration)

    def _expire(self, now: float) -> None:
        while self._by_id:
            registration = next(iter(self._by_id.values()))
            if registration.last_seen + self.registration_ttl > now:
                return
            self._forget(registration)
            self._events.append(RegistrationExpired(registration.peer_id, registration.address))

    def _reject(self, address: Address, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self._events.append(DatagramIgnored(address, reason, detail))


def _local_for(owner: Registration, partner: Registration) -> tuple[Address, ...]:
    """``owner``'s local addresses, if ``partner`` may use them: a punchlab peer that
    came from the same public IP (behind the same NAT, the one case they can help)."""
    if partner.secret is None or not same_host(owner.address[0], partner.address[0]):
        return ()
    return owner.local


def answer_start_communication(
    core: RendezvousCore, raw: bytes, source_ip: str | None, now: float
) -> tuple[int, dict[str, str]]:
    """``POST /start-communication`` from body bytes to ``(status, JSON answer)``, with no IO.

    The asyncio server and the simulator both answer with this, so a
    simulated peer meets exactly the refusals a real one does.
    """
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return 400, {"error": "body is not valid JSON"}
    if not isinstance(body, dict):
        return 400, {"error": "body must be a JSON object"}
    initiator, peer = json_field(body, "peerInitiator"), json_field(body, "peer")
    if not isinstance(initiator, str) or not isinstance(peer, str):
        return 400, {"error": "peerInitiator and peer must both be strings"}
    secret = json_field(body, "secret")
    if secret is not None and not isinstance(secret, str):
        return 400, {"error": "secret must be a string"}
    try:
        introduction = core.start_communication(
            initiator, peer, now, secret=secret, source_ip=source_ip
        )
    except RequestError as exc:
        return exc.status, {"error": str(exc)}
    answer = {
        "public": format_address(introduction.peer_address),
        "token": introduction.token,
        "features": ",".join(sorted(introduction.peer_features)),
    }
    local = format_local(introduction.peer_local)
    if local is not None:
        answer["local"] = local
    return 200, answer
