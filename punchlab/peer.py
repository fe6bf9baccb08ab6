"""The peer's state machine, with no IO.

A peer registers with the rendezvous server, is introduced to another peer,
punches a hole with HELLO / SUCCESS, then chats with TEXT and keeps the NAT
mappings alive with HEART-BEAT. What may happen in each state (transitions,
timers, whether the partner's datagrams count) is the table of
:mod:`punchlab.peer_table`, which the code, the tests and the notebooks read;
how the peer punches is its :class:`punchlab.policy.Policy`. With a partner
that announced ``reliable``, chat lines are numbered, acknowledged and sent
again (:mod:`punchlab.reliable`, driven from here by the RETRANSMIT timer).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import ClassVar

from punchlab import ladder as _ladder
from punchlab.addresses import same_host
from punchlab.candidates import format_local, parse_local
from punchlab.messages import (
    FEATURE_LARGE,
    FEATURE_RELAY,
    FEATURE_RELIABLE,
    FEATURE_TOKEN,
    GO_DATAGRAM_BYTES,
    MAX_DATAGRAM_BYTES,
    MAX_SEQ,
    PEER_FEATURES,
    Address,
    DatagramIgnored,
    LocalProtocolError,
    MalformedMessage,
    Message,
    MessageType,
    RemoteProtocolError,
    decode,
    encode,
    format_address,
    parse_address,
    parse_features,
)
from punchlab.peer_table import (
    PUNCHING_STATES,
    STATES,
    TIMER_ORDER,
    TRANSITIONS,
    PeerState,
    Timer,
    Trigger,
    accepts_introduction,
)
from punchlab.policy import Policy, policy_for
from punchlab.relay import RELAY_PAYLOAD_BYTES
from punchlab.reliable import Ack, BogusAck, ReliableConfig, Sender
from punchlab.reliable import Receiver as _Receiver
from punchlab.stun.discovery import DiscoveryResult
from punchlab.traversal import NatReport, Route, Rung

__all__ = [
    "TRANSITIONS",
    "Connected",
    "DatagramIgnored",
    "Disconnected",
    "Failed",
    "HttpRequest",
    "Introduced",
    "IntroductionRefused",
    "PeerAddressChanged",
    "PeerConfig",
    "PeerCore",
    "PeerEvent",
    "PeerState",
    "Registered",
    "RouteChanged",
    "StateChanged",
    "TextDelivered",
    "TextFailed",
    "TextReceived",
    "TextSent",
    "Trigger",
    "accepts_introduction",
]


def sender_tag(peer_id: str, secret: str | None, token: str) -> str:
    """Our ``sender`` tag for one introduction: telling the partner nothing (a hash;
    the secret itself never leaves for the partner) and new with each introduction,
    so it does not link one chat of ours to the next."""
    return hashlib.sha256(f"{peer_id}\n{secret or ''}\n{token}".encode()).hexdigest()[:12]


def _quoted_size(text: str) -> int:
    """Bytes ``text`` takes inside a JSON string literal, as :func:`encode` writes it."""
    return len(encode_basestring(text).encode("utf-8")) - 2


#: Server tokens are 16 hex digits; anything far longer is not one.
MAX_TOKEN_LENGTH = 64

#: Live tokens for one partner: our introduction's and, when both sides asked
#: at once, the partner's. A third introduction is ignored.
MAX_TOKENS_PER_PARTNER = 2


def feature_list(config: PeerConfig) -> str:
    """What a punchlab peer with ``config`` announces: every feature it has switched on."""
    features = set(PEER_FEATURES)
    if not config.ladder:
        features.discard(FEATURE_RELAY)
    if config.reliable is None:
        features.discard(FEATURE_RELIABLE)
    return ",".join(sorted(features))


#: The reliable chat's settings by default (frozen, so one instance serves every config).
RELIABLE = ReliableConfig()


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Timing of a peer. ``PeerConfig.original()`` reproduces the Go client.

    punchlab's own schedule sends the first HELLO at once, retries quickly
    and backs off; the original waited 3 s and then ticked every 3 s.
    """

    registration_attempts: int = 6
    registration_retry: float = 0.2
    hello_first_retry: float = 0.02
    hello_max_interval: float = 0.5
    punch_timeout: float = 10.0
    heartbeat_interval: float | None = 3.0
    #: While registered and not yet introduced, beat this often instead: the
    #: server retransmits a lost INITIATE_CHAT only to a peer it hears from.
    waiting_heartbeat_interval: float | None = 1.0
    #: Whether a connected peer beats its partner too (off: only the server
    #: hears from it, and a NAT that times out each flow forgets the partner's
    #: permission after its timeout of silence; chapter 11 shows it).
    peer_heartbeat: bool = True
    peer_timeout: float = 30.0
    #: The original algorithm: HELLO after ``original_interval`` and on a fixed
    #: ticker, no HELLO in answer to a HELLO, no peer-reflexive address.
    original: bool = False
    original_interval: float = 3.0
    #: The traversal ladder (punchlab.traversal), between punchlab peers through
    #: a punchlab server: whether to climb it at all (off: the peer does not
    #: announce ``relay``, so neither side does), how long the direct punch
    #: runs before the next rung, and how long prediction runs before the relay.
    ladder: bool = True
    direct_timeout: float = 1.0
    rung_timeout: float = 1.0
    #: Ports aimed at past the last one seen, when the partner's NAT counts up.
    predict_window: int = 8
    #: Birthday probing: sockets the hard side opens, probes per second from
    #: the easy side (paced, so a NAT or a firewall does not see a flood), and
    #: the most probes before the relay takes over.
    birthday_sockets: int = 256
    probe_rate: float = 250.0
    probe_limit: int = 1024
    #: A relayed connection tries the direct path again this often.
    direct_retry_interval: float = 5.0
    #: Offer our local address to a partner behind the same NAT and try its
    #: (punchlab.candidates): the ``private`` route. Off: the public address only.
    private: bool = True
    #: Acknowledged chat (punchlab.reliable) with a partner that announced
    #: ``reliable`` too; None: do not announce it, and send plain TEXT as Go does.
    reliable: ReliableConfig | None = RELIABLE

    def __post_init__(self) -> None:
        if self.registration_attempts < 1:
            raise ValueError("registration_attempts must be at least 1")
        for name in (
            "registration_retry",
            "hello_first_retry",
            "hello_max_interval",
            "punch_timeout",
            "peer_timeout",
            "original_interval",
            "direct_timeout",
            "rung_timeout",
            "probe_rate",
            "direct_retry_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("predict_window", "birthday_sockets", "probe_limit"):
            if not 1 <= getattr(self, name) <= 4096:
                raise ValueError(f"{name} must be between 1 and 4096")
        for name in ("heartbeat_interval", "waiting_heartbeat_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None (off)")

    @classmethod
    def seed_compatible(cls, **overrides: object) -> PeerConfig:
        """The original Go client's behaviour, for comparison."""
        return cls(original=True, **overrides)  # type: ignore[arg-type]


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: PeerState
    new: PeerState
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class Registered:
    peer_id: str


@dataclass(frozen=True, slots=True)
class Introduced:
    peer_address: Address
    initiator: bool


@dataclass(frozen=True, slots=True)
class PeerAddressChanged:
    """The peer answered from another address than the server gave: peer-reflexive,
    or (``private``) its own address behind the same NAT (punchlab.candidates)."""

    old: Address
    new: Address
    private: bool = False


@dataclass(frozen=True, slots=True)
class Connected:
    peer_address: Address
    elapsed: float
    #: Which way won (punchlab.traversal.Route); ``probes``: birthday probes sent.
    route: Route = Route.DIRECT
    probes: int = 0


@dataclass(frozen=True, slots=True)
class RouteChanged:
    """A relayed connection found the direct path, and moved to it."""

    old: Route
    new: Route
    peer_address: Address


@dataclass(frozen=True, slots=True)
class TextReceived:
    text: str
    address: Address


@dataclass(frozen=True, slots=True)
class TextSent:
    """A line left (``line`` numbers it for the events below): in ``pieces`` datagrams;
    ``acknowledged``: the partner will say when it arrived (both announced ``reliable``)."""

    line: int
    text: str
    pieces: int
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class TextDelivered:
    """The partner acknowledged every piece of ``line``: sent ``tries`` times at most,
    ``elapsed`` seconds from sending to the last acknowledgement."""

    line: int
    tries: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class TextFailed:
    """``line`` was never acknowledged: the partner was declared gone, or we closed."""

    line: int
    tries: int
    reason: str = "the peer is gone"


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


@dataclass(frozen=True, slots=True)
class IntroductionRefused:
    """The server would not introduce us (``status`` is its HTTP answer: 404 unknown ID ...)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class NatDiscovered:
    """What RFC 5780's tests found out about our NAT (run by the driver beside the core,
    when the server announced an RFC 5780 server; never in the way of a punch)."""

    result: DiscoveryResult


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request the core asks its driver to make; the answer goes back to
    :meth:`PeerCore.receive_http_answer` (the core does no IO of its own)."""

    method: str
    path: str
    body: dict[str, str]


PeerEvent = (
    StateChanged
    | Registered
    | Introduced
    | PeerAddressChanged
    | Connected
    | RouteChanged
    | TextReceived
    | TextSent
    | TextDelivered
    | TextFailed
    | Disconnected
    | Failed
    | IntroductionRefused
    | NatDiscovered
    | DatagramIgnored
)


class PeerCore:
    """One peer's protocol state; the driver owns the socket and the clock."""

    #: What RFC 5780 discovery found about our NAT (the driver tells us,
    #: :meth:`learn_nat`), and what the partner says about its own.
    nat: NatReport | None
    partner_nat: NatReport | None
    _partner_has_report: bool
    #: The traversal ladder: the rung we are on, how the connection was
    #: made, birthday probes sent, whether the partner's ports are open
    #: (all set by :meth:`_reset_ladder`).
    rung: Rung | None
    route: Route | None
    probes: int
    _ports_open: bool
    #: Extra local sockets the driver must keep open (birthday), numbered
    #: from 1; socket 0 is the main one. ``peer_via``: the one the peer uses.
    sockets: frozenset[int]
    peer_via: int
    _hit_sockets: set[int]

    def __init__(
        self,
        server_address: Address,
        config: PeerConfig | None = None,
        *,
        rng: random.Random | None = None,
        local_addresses: tuple[Address, ...] = (),
    ) -> None:
        """``rng`` draws birthday probe ports (the simulator passes a seeded one);
        ``local_addresses`` are our own, offered to a partner behind the same NAT."""
        self.server_address = server_address
        self.config = config or PeerConfig()
        self.state = PeerState.IDLE
        self.peer_id: str | None = None
        #: Where HELLO, TEXT and HEART-BEAT go: the server's answer, then the
        #: address the peer really answered from.
        self.peer_address: Address | None = None
        self.introduced_address: Address | None = None
        self.token: str | None = None
        #: From the server's REGISTRATION answer: proves to the server that a
        #: start-communication request is ours (a Go server gives none).
        self.secret: str | None = None
        self.server_features: frozenset[str] = frozenset()
        #: What the introduced partner announced (empty: the Go original).
        self.partner_features: frozenset[str] = frozenset()
        self.initiator = False
        self.connected_at: float | None = None
        #: Private endpoints (punchlab.candidates): ours, and the partner's from the server.
        self.local_addresses = local_addresses
        self.partner_local: tuple[Address, ...] = ()
        self._sender_tag: str | None = None
        #: Tokens of the introductions to the current peer (both sides may ask).
        self._tokens: set[str] = set()
        #: The token we put on datagrams: the last one the partner proved it holds.
        self._send_token: str | None = None
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: deque[PeerEvent] = deque()
        self.ignored = 0
        self.policy: Policy = policy_for(self.config)
        #: The timers running now and when each is due (see peer_table.Timer).
        self._due: dict[Timer, float] = {}
        self._registration_attempts = 0
        self._registration_interval = self.config.registration_retry
        self._hello_interval = self.config.hello_first_retry
        self._introduced_at: float | None = None
        self._rng = rng or random.Random()
        self.nat = None
        self._reset_ladder()
        self._socket_outbox: list[tuple[bytes, Address, int]] = []
        #: The path of the datagram being handled: its socket, and whether it
        #: came through the relay (replies go back the same way).
        self._via = 0
        self._relayed = False
        #: Acknowledged chat with the current partner (punchlab.reliable), when both
        #: announced ``reliable``; lines are numbered from 1 for TextSent and after.
        self._sender: Sender | None = None
        self._receiver: _Receiver | None = None
        self._lines = 0

    # -- commands from the application ----------------------------------------------

    def register(self, now: float) -> None:
        """Start registering; REGISTRATION is retried until answered or given up."""
        self._transition(Trigger.REGISTER, now)
        self.handle_timer(now)

    def start_punching(
        self,
        peer_address: Address,
        now: float,
        token: str | None = None,
        partner_features: str | None = None,
        partner_local: str | None = None,
    ) -> None:
        """The initiator's side: the server's HTTP answer named the peer's address.

        ``partner_features`` is the ``features`` value of that answer (what
        the peer announced); ``None`` means a Go server or a Go peer.
        ``partner_local``: its ``local`` value (the peer's private endpoints).
        When the peer asked for us at the same moment, we are already punching
        toward it: the answer only adds its token.
        """
        if self.state in PUNCHING_STATES and peer_address == self.introduced_address:
            self._add_partner_token(token if self.policy.extensions else None, peer_address)
            return
        self._introduce(
            peer_address, now, token, partner_features, initiator=True, partner_local=partner_local
        )

    def ask_introduction(self, peer_id: str) -> HttpRequest:
        """The request that asks the server to introduce us to ``peer_id`` (the client flow).

        The driver makes it and feeds the answer to :meth:`receive_http_answer`;
        both the asyncio peer and the simulator's run this one flow.
        """
        if self.peer_id is None:
            raise LocalProtocolError("register() first")
        if not accepts_introduction(self.state):
            # Checked before asking the server, which would introduce the other side.
            raise LocalProtocolError(f"cannot connect while {self.state.value}")
        body = {"peerInitiator": self.peer_id, "peer": peer_id.strip()}
        if self.secret is not None:  # proves to a punchlab server that we are the initiator
            body["secret"] = self.secret
        return HttpRequest("POST", "/start-communication", body)

    def receive_http_answer(
        self, request: HttpRequest, status: int, answer: object, now: float
    ) -> None:
        """The server's answer to :meth:`ask_introduction`: punch, or say why not."""
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            reason = error if isinstance(error, str) else f"answered {status} without a reason"
            self._events.append(IntroductionRefused(status, reason))
            return
        try:
            peer_address = parse_address(str(answer.get("public", "")))
        except RemoteProtocolError as exc:
            self._events.append(IntroductionRefused(status, f"no usable address: {exc}"))
            return
        token, features = answer.get("token"), answer.get("features")
        local = answer.get("local")
        self.start_punching(
            peer_address,
            now,
            token if isinstance(token, str) else None,
            features if isinstance(features, str) else None,
            local if isinstance(local, str) else None,
        )

    @property
    def checks_tokens(self) -> bool:
        """Both sides announced ``token``: every datagram between them must carry it."""
        return self.token is not None and FEATURE_TOKEN in self.partner_features

    def send_text(self, text: str, now: float) -> int:
        """Queue one chat line; only a connected peer can chat. Returns the datagrams used.

        A partner that did not announce ``large`` reads at most
        :data:`GO_DATAGRAM_BYTES` (the Go client's buffer), so a longer line
        goes to it in pieces, each its own line.
        """
        if self.state is not PeerState.CONNECTED or self.peer_address is None:
            raise LocalProtocolError(f"cannot send text while {self.state.value}")
        limit = MAX_DATAGRAM_BYTES if FEATURE_LARGE in self.partner_features else GO_DATAGRAM_BYTES
        if self.route is Route.RELAYED:  # the server relays at most this much in one piece
            limit = min(limit, RELAY_PAYLOAD_BYTES)
        # Go clients end every line with a newline; so do we, for them to print.
        body = text[:-1] if text.endswith("\n") else text
        pieces = list(self._text_pieces(body, limit))
        if self._sender is not None and not self._sender.has_room(len(pieces)):
            # Checked before the line is numbered: a refused line changes nothing.
            raise LocalProtocolError("too many lines wait for the partner's acknowledgement")
        self._lines += 1
        if self._sender is not None:
            self._sender.queue(self._lines, [piece + "\n" for piece in pieces], now)
            self._events.append(TextSent(self._lines, body, len(pieces), acknowledged=True))
            self._send_numbered(self._sender.to_send(now))
            self._arm_retransmit()
            return len(pieces)
        for piece in pieces:
            self._send_peer(self._to_peer(MessageType.TEXT, piece + "\n"))
        self._events.append(TextSent(self._lines, body, len(pieces), acknowledged=False))
        return len(pieces)

    def _text_pieces(self, text: str, limit: int) -> list[str]:
        """Split ``text`` so that each TEXT datagram (token included) is at most ``limit`` bytes."""
        seq = MAX_SEQ if self._sender is not None else None  # the longest a seq can be
        overhead = len(encode(Message(MessageType.TEXT, "\n", self._send_token, seq=seq)))
        if overhead + _quoted_size(text) <= limit:
            return [text]
        pieces: list[str] = []
        piece: list[str] = []
        size = overhead
        for char in text:
            char_size = _quoted_size(char)
            if size + char_size > limit and piece:
                pieces.append("".join(piece))
                piece, size = [], overhead
            piece.append(char)
            size += char_size
        pieces.append("".join(piece))
        return pieces

    def learn_nat(self, found: DiscoveryResult | NatReport, now: float) -> None:
        """What RFC 5780 discovery found about our NAT: the ladder's rung depends on it."""
        self.nat = found if isinstance(found, NatReport) else NatReport.from_discovery(found)
        if Timer.REPORT in STATES[self.state].timers and Timer.REPORT not in self._due:
            # The partner had our earlier report: tell it again, with this.
            self._partner_has_report = False
            self._due[Timer.REPORT] = now

    def close(self) -> None:
        if self.state is not PeerState.CLOSED:
            self._transition(Trigger.CLOSE, 0.0)
            self._give_up_lines("the chat was closed")
        self._outbox.clear()
        self._socket_outbox.clear()

    # -- sans-IO interface -----------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Address, now: float, via: int = 0) -> None:
        """Handle one datagram (on local socket ``via``); bad input is recorded, never raised."""
        if self.state is PeerState.CLOSED:
            return
        self._via, self._relayed = via, False
        if via and via not in self.sockets:
            self._ignore(address, "closed socket", f"a datagram on socket {via}, no longer used")
            return
        try:
            message = decode(data)
        except RemoteProtocolError as exc:
            self._ignore(address, exc.reason, str(exc))
            return
        self._dispatch(message, address, now)

    def _dispatch(self, message: Message, address: Address, now: float) -> None:
        handler = self._HANDLERS.get(message.type)
        if handler is None:
            self._ignore(address, "unexpected type", f"{message.type} is not for a peer")
            return
        handler(self, message, address, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """What to send from the main socket."""
        out, self._outbox = self._outbox, []
        return out

    def socket_datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, int]]:
        """What to send from the extra sockets of :attr:`sockets`, each with its number."""
        out, self._socket_outbox = self._socket_outbox, []
        return out

    def get_timer(self) -> float | None:
        return min(self._due.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Do whatever is due at ``now``: retries, heart-beats, give-ups (in TIMER_ORDER)."""
        for timer in TIMER_ORDER:
            due = self._due.get(timer)
            if due is not None and now >= due:
                self._TIMER_ACTIONS[timer](self, now)

    def next_event(self) -> PeerEvent | None:
        return self._events.popleft() if self._events else None

    # -- handlers --------------------------------------------------------------------

    def _on_registration(self, message: Message, address: Address, now: float) -> None:
        if address != self.server_address:
            self._ignore(address, "not from server", "REGISTRATION from another address")
        elif not message.payload:
            self._ignore(address, "malformed", "REGISTRATION answer without identifier")
        elif self.state is not PeerState.REGISTERING:
            if message.payload != self.peer_id:
                self._ignore(address, "unexpected", "REGISTRATION answer while not registering")
        else:
            self.peer_id = message.payload
            if self.policy.extensions:
                self.secret = message.secret
                self.server_features = parse_features(message.features)
            self._transition(Trigger.REGISTRATION_ANSWERED, now)
            self._events.append(Registered(message.payload))

    def _on_initiate_chat(self, message: Message, address: Address, now: float) -> None:
        if address != self.server_address:
            self._ignore(address, "not from server", "INITIATE_CHAT from another address")
            return
        try:
            peer_address = parse_address(message.payload)
        except RemoteProtocolError as exc:
            self._ignore(address, exc.reason, str(exc))
            return
        if self.peer_id is None:
            self._ignore(address, "unexpected", f"INITIATE_CHAT while {self.state.value}")
            return
        if self.secret is not None and not secrets.compare_digest(
            (message.secret or "").encode(), self.secret.encode()
        ):
            # Our server proves its introductions with our secret; this one
            # comes from someone who can only forge the server's address.
            self._ignore(address, "forged", "INITIATE_CHAT without our registration secret")
            return
        token = message.token if self.policy.extensions else None
        if token is not None and len(token) > MAX_TOKEN_LENGTH:
            self._ignore(address, "malformed", "INITIATE_CHAT token too long")
            return
        if token is not None:
            # Acknowledge every copy, so the server stops retransmitting.
            ack = Message(MessageType.INITIATE_CHAT_ACK, token=token)
            self._send(ack, address)
        if self.state in PUNCHING_STATES and peer_address == self.introduced_address:
            self._add_partner_token(token, address)
            return
        if STATES[self.state].talks_to_peer:
            self._ignore(address, "busy", f"introduced again while {self.state.value}")
            return
        if not accepts_introduction(self.state):
            self._ignore(address, "unexpected", f"INITIATE_CHAT while {self.state.value}")
            return
        features = message.features if self.policy.extensions else None
        self._introduce(
            peer_address, now, token, features, initiator=False, partner_local=message.local
        )

    def _add_partner_token(self, token: str | None, address: Address) -> None:
        """Both sides asked at once: the partner's HELLOs carry its introduction's token."""
        if token is None or token in self._tokens:
            return
        if len(self._tokens) >= MAX_TOKENS_PER_PARTNER:
            self._ignore(address, "busy", "a third introduction to the same peer")
            return
        self._tokens.add(token)

    def _on_hello(self, message: Message, address: Address, now: float) -> None:
        if not self._is_from_peer(message, address):
            return
        self._heard_from(message, address, now)
        self._reply(self._to_peer(MessageType.SUCCESS), address)
        if self.state in PUNCHING_STATES and self.policy.answers_hello_with_hello:
            # Answer with our own HELLO at once: the other side needs a
            # SUCCESS too, and this path through both NATs is now known open.
            # Untagged: it goes where a valid HELLO came from, never to ourselves, and
            # the answer stays within twice the HELLO's bytes (no amplification).
            self._reply(self._to_peer(MessageType.HELLO, tagged=False), address)

    def _on_success(self, message: Message, address: Address, now: float) -> None:
        if not self._is_from_peer(message, address):
            return
        self._heard_from(message, address, now)
        if self.state in PUNCHING_STATES:
            self._connect(now)
        elif self.route is Route.RELAYED and not self._relayed:
            self._go_direct(address)

    def _connect(self, now: float) -> None:
        """A SUCCESS ended the punch: say which way won, keep only the socket it used."""
        self.route = self._route_now()
        if self._via:
            self.peer_via = self._via
        # Keep every socket a probe found (the partner may talk to any of them), close the rest.
        self.sockets = frozenset(self._hit_sockets)
        self.connected_at = now
        self._transition(Trigger.SUCCESS_RECEIVED, now)
        assert self.peer_address is not None and self._introduced_at is not None
        elapsed = now - self._introduced_at
        self._events.append(Connected(self.peer_address, elapsed, self.route, self.probes))

    def _route_now(self) -> Route:
        if self._relayed:
            return Route.RELAYED
        if self.peer_address in self.partner_local:
            return Route.PRIVATE
        if self.state is PeerState.PROBING:
            return Route.BIRTHDAY
        if self.state is PeerState.PREDICTING:
            return Route.PREDICTED
        if self.peer_address != self.introduced_address:
            return Route.PEER_REFLEXIVE
        return Route.DIRECT

    def _go_direct(self, address: Address) -> None:
        """A direct SUCCESS while relayed: the direct path works now, so use it."""
        reflexive = address != self.introduced_address
        self._upgrade_route(Route.PEER_REFLEXIVE if reflexive else Route.DIRECT, address)

    def _upgrade_route(self, route: Route, address: Address) -> None:
        """A cheaper path answered after we connected: say so (``RouteChanged``); off
        the relay, stop retrying the direct path and talk from the socket that answered."""
        old = self.route
        assert old is not None
        self.route = route
        if old is Route.RELAYED:
            self.peer_via = self._via
            self._due.pop(Timer.DIRECT_RETRY, None)
        self._events.append(RouteChanged(old, route, address))

    def _on_text(self, message: Message, address: Address, now: float) -> None:
        if not self._is_from_peer(message, address, adopt=False):
            return
        self._heard_from(message, address, now, adopt=False)
        self._relayed_partner_is_connected(now)
        if message.seq is None or self._receiver is None:
            self._deliver_text(message.payload, address)
            return
        pieces, verdict = self._receiver.receive(message.seq, message.payload)
        ack = self._receiver.ack().encode()
        if verdict != "beyond window":
            # Every copy is answered (the ack of the first may have been the one
            # lost), always to the partner's address, never to where this copy
            # came from: a TEXT from a spoofed source cannot aim acks at a victim.
            self._send_peer(Message(MessageType.TEXT_ACK, ack, token=self._send_token))
        if verdict != "new":
            self._ignore(address, verdict, f"TEXT seq {message.seq} (delivered up to {ack})")
        for piece in pieces:
            self._deliver_text(piece, address)

    def _deliver_text(self, payload: str, address: Address) -> None:
        text = payload[:-1] if payload.endswith("\n") else payload
        self._events.append(TextReceived(text, address))

    def _on_text_ack(self, message: Message, address: Address, now: float) -> None:
        """The partner says which numbered TEXTs it has: a claim, checked before it counts."""
        if not self._is_from_peer(message, address, adopt=False):
            return
        sender = self._sender
        if sender is None or self.state is not PeerState.CONNECTED:
            self._ignore(address, "unexpected", f"TEXT-ACK while {self.state.value}")
            return
        try:
            done = sender.on_ack(Ack.parse(message.payload, sender.config.window), now)
        except BogusAck as exc:
            self._ignore(address, exc.reason, str(exc))
            return
        self._heard_from(message, address, now, adopt=False)
        for line in done:
            self._events.append(TextDelivered(line.line, line.tries, line.elapsed))
        self._send_numbered(sender.retransmit(now))  # the holes this ack showed
        self._send_numbered(sender.to_send(now))
        self._arm_retransmit()

    def _send_numbered(self, pieces: list[tuple[int, str]]) -> None:
        for seq, payload in pieces:
            self._send_peer(Message(MessageType.TEXT, payload, self._send_token, seq=seq))

    def _retransmit_tick(self, now: float) -> None:
        assert self._sender is not None
        self._send_numbered(self._sender.retransmit(now))
        self._arm_retransmit()

    def _arm_retransmit(self) -> None:
        """The retransmission timer follows the oldest unacknowledged TEXT (off: none)."""
        due = None if self._sender is None else self._sender.due()
        if due is None or Timer.RETRANSMIT not in STATES[self.state].timers:
            self._due.pop(Timer.RETRANSMIT, None)
        else:
            self._due[Timer.RETRANSMIT] = due

    def _give_up_lines(self, reason: str = "the peer is gone") -> None:
        """The partner is gone (or we closed): every line it has not acknowledged has failed."""
        if self._sender is not None:
            for line in self._sender.give_up():
                self._events.append(TextFailed(line.line, line.tries, reason))

    def _on_heartbeat(self, message: Message, address: Address, now: float) -> None:
        if address == self.server_address and not self._relayed:
            return
        if self._is_from_peer(message, address, adopt=False):
            self._heard_from(message, address, now, adopt=False)
            self._relayed_partner_is_connected(now)

    def _relayed_partner_is_connected(self, now: float) -> None:
        """A relayed TEXT or HEART-BEAT while we relay: the partner got our relayed HELLO
        (it only chats once connected) and its answer reached us, so the relay works
        both ways even if the SUCCESS itself was lost."""
        if self._relayed and self.state is PeerState.RELAYING:
            self._connect(now)

    # -- helpers ---------------------------------------------------------------------

    def _is_from_peer(self, message: Message, address: Address, *, adopt: bool = True) -> bool:
        """Whether a datagram comes from the introduced peer (DESIGN.md section 8).

        When both sides announced ``token``, only the introduction's token
        counts, from any address. Otherwise (a Go partner, a Go server) the
        datagram must come from the address we talk to, or, while punching
        and for HELLO / SUCCESS (``adopt``), from the IP the server gave:
        a symmetric NAT changes the port, rarely the address. A token we do
        not hold marks a stale or forged datagram even then.
        """
        if not STATES[self.state].talks_to_peer:
            self._ignore(address, "not introduced", f"{message.type} while {self.state.value}")
            return False
        if message.sender is not None and message.sender == self._sender_tag:
            # A hairpinning NAT turned our own HELLO back to us (both sides hold
            # the token, so only this tells it from the partner's).
            self._ignore(address, "own datagram", f"our own {message.type} came back")
            return False
        assert self.introduced_address is not None
        if self._relayed:  # the server forwarded it: only the token can say who sent it
            valid = message.token is not None and message.token in self._tokens
        elif self.checks_tokens:
            valid = message.token in self._tokens
        elif message.token is not None and self._tokens and message.token not in self._tokens:
            valid = False
        elif address == self.peer_address:
            valid = True
        else:
            valid = (
                adopt
                and self.state is PeerState.PUNCHING
                and same_host(address[0], self.introduced_address[0])
            )
        if not valid:
            self._ignore(
                address, "unexpected source", f"{message.type} not from the introduced peer"
            )
        return valid

    def _heard_from(
        self, message: Message, address: Address, now: float, *, adopt: bool = True
    ) -> None:
        if Timer.PEER_SILENCE in self._due:
            self._due[Timer.PEER_SILENCE] = now + self.config.peer_timeout
        if self.checks_tokens:
            # Answer with a token the partner has shown it holds.
            self._send_token = message.token
        if (
            adopt
            and not self._relayed
            and self.policy.adopts_peer_reflexive
            and address != self.peer_address
            # A private endpoint that answered is the best path there is (ICE ranks
            # host candidates first): a copy through the NAT's hairpin does not move us.
            and not (self.peer_address in self.partner_local and address not in self.partner_local)
        ):
            assert self.peer_address is not None
            private = address in self.partner_local
            self._events.append(PeerAddressChanged(self.peer_address, address, private))
            self.peer_address = address
            if private and self.state is PeerState.CONNECTED and self.route is not Route.PRIVATE:
                # The hairpinned copy won the race (on a real LAN both paths are as
                # fast): the private answer right behind it moves us onto the LAN.
                self._upgrade_route(Route.PRIVATE, address)
        if not self._relayed and self._via:
            # A birthday probe found this socket: its path through both NATs is open,
            # and the partner talks to it now (two probes may hit at once: follow it).
            self.peer_via = self._via
            self._hit_sockets.add(self._via)

    def _private_candidates(self, text: str | None, public: Address) -> tuple[Address, ...]:
        """The partner's private endpoints worth a HELLO: only with tokens on both sides
        (an answer is adopted on the token alone), checked again here (a claim)."""
        if not text or not self.config.private or not self.policy.extensions:
            return ()
        if self.token is None:
            return ()
        if FEATURE_TOKEN not in self.partner_features:
            return ()
        try:
            claims = parse_local(text)
        except MalformedMessage as exc:
            self._ignore(self.server_address, "bad local address", str(exc))
            return ()
        return tuple(
            claim for claim in claims if claim != public and claim not in self.local_addresses
        )

    @property
    def _partner_is_reliable(self) -> bool:
        """It announced ``reliable``, and ``token``: an acknowledgement, like every datagram
        between the two, must carry the introduction's token to count."""
        return {FEATURE_RELIABLE, FEATURE_TOKEN} <= self.partner_features

    @property
    def unacknowledged(self) -> int:
        """Pieces of our chat lines the partner has not acknowledged yet (0 without acks)."""
        return 0 if self._sender is None else self._sender.unacknowledged

    @property
    def reliable(self) -> bool:
        """Whether chat lines to the current partner are numbered and acknowledged."""
        return self._sender is not None

    @property
    def _climbs_ladder(self) -> bool:
        """Both punchlab peers, through a punchlab server: the relay can carry the ladder."""
        return (
            self.token is not None
            and FEATURE_RELAY in self.server_features
            and FEATURE_RELAY in self.partner_features
        )

    def _reset_ladder(self) -> None:
        self.partner_nat, self._partner_has_report = None, False
        self.rung, self.route, self.probes, self._ports_open = None, None, 0, False
        self.sockets, self.peer_via = frozenset(), 0
        self._hit_sockets = set()

    def _to_peer(
        self, message_type: MessageType, payload: str = "...", *, tagged: bool = True
    ) -> Message:
        """A datagram for the partner, with the token it knows (the Go side ignores it)
        and, on a HELLO we start to a punchlab partner, our sender tag (``tagged``)."""
        tagged = tagged and message_type is MessageType.HELLO and self.checks_tokens
        sender = self._sender_tag if tagged else None
        return Message(message_type, payload, token=self._send_token, sender=sender)

    def _introduce(
        self,
        peer_address: Address,
        now: float,
        token: str | None,
        partner_features: str | None,
        *,
        initiator: bool,
        partner_local: str | None = None,
    ) -> None:
        if self.peer_id is None:
            raise LocalProtocolError("cannot punch before registering")
        if not accepts_introduction(self.state):
            raise LocalProtocolError(f"cannot be introduced while {self.state.value}")
        self.peer_address = self.introduced_address = peer_address
        self.token = token if self.policy.extensions else None
        self._send_token = self.token
        self._tokens = set() if self.token is None else {self.token}
        self.partner_features = parse_features(partner_features) & PEER_FEATURES
        self.partner_local = self._private_candidates(partner_local, peer_address)
        tag = None if self.token is None else sender_tag(self.peer_id, self.secret, self.token)
        self._sender_tag = tag
        self._sender, self._receiver = None, None
        reliable = self.config.reliable
        if reliable is not None and self.token is not None and self._partner_is_reliable:
            self._sender, self._receiver = Sender(reliable), _Receiver(reliable.window)
        self.initiator = initiator
        self.connected_at = None
        self._introduced_at = now
        self._reset_ladder()
        self._transition(Trigger.INTRODUCED, now)
        self._events.append(Introduced(peer_address, initiator))
        self.handle_timer(now)

    # -- timers: what each does when due, and when it first fires in a state -------------

    def _registration_tick(self, now: float) -> None:
        if self._registration_attempts >= self.config.registration_attempts:
            self._fail(
                Trigger.REGISTRATION_TIMEOUT,
                now,
                f"no answer from the server at {format_address(self.server_address)} "
                f"after {self._registration_attempts} REGISTRATION attempts",
            )
            return
        self._registration_attempts += 1
        features = local = None
        if self.policy.extensions:
            features = feature_list(self.config)
            local = format_local(self.local_addresses) if self.config.private else None
        registration = Message(MessageType.REGISTRATION, "", features=features, local=local)
        self._send(registration, self.server_address)
        self._due[Timer.REGISTRATION_RETRY] = now + self._registration_interval
        self._registration_interval = min(self._registration_interval * 2, 2.0)

    def _punch_deadline_passed(self, now: float) -> None:
        self._fail(Trigger.PUNCH_TIMEOUT, now, "no SUCCESS from the peer before the deadline")

    def _hello_tick(self, now: float) -> None:
        hello = self._to_peer(MessageType.HELLO)
        self._send_peer(hello)
        if self.state is PeerState.PUNCHING:
            # The partner's private endpoints, beside its public address (never the
            # one we already send to).
            for candidate in self.partner_local:
                if candidate != self.peer_address:
                    self._send(hello, candidate)
        if STATES[self.state].relays:
            # Through the relay, and straight on too: the partner may have
            # punched through already, or its side may open yet.
            assert self.peer_address is not None
            self._send(hello, self.peer_address, self.peer_via)
        if self.rung is Rung.PREDICT_AIM and self.state is PeerState.PREDICTING:
            assert self.partner_nat is not None and self.introduced_address is not None
            for port in self.partner_nat.predicted_ports(self.config.predict_window):
                self._send(hello, (self.introduced_address[0], port))
        due, self._hello_interval = self.policy.next_hello(now, self._hello_interval, self.config)
        self._due[Timer.HELLO] = due

    def _server_beat_tick(self, now: float) -> None:
        self._send(Message(MessageType.HEART_BEAT), self.server_address)
        self._due[Timer.SERVER_BEAT] = now + self._server_beat_interval()

    def _peer_silent(self, now: float) -> None:
        self._transition(Trigger.PEER_SILENT, now)
        self._events.append(Disconnected("peer went silent"))
        self._give_up_lines()

    def _peer_beat_tick(self, now: float) -> None:
        self._send_peer(self._to_peer(MessageType.HEART_BEAT))
        self._due[Timer.PEER_BEAT] = now + self._heartbeat_interval()

    _HANDLERS: ClassVar[dict[MessageType, Callable[[PeerCore, Message, Address, float], None]]] = {
        MessageType.REGISTRATION: _on_registration,
        MessageType.INITIATE_CHAT: _on_initiate_chat,
        MessageType.HELLO: _on_hello,
        MessageType.SUCCESS: _on_success,
        MessageType.TEXT: _on_text,
        MessageType.HEART_BEAT: _on_heartbeat,
        MessageType.RELAY: _ladder.on_relay,
        MessageType.TEXT_ACK: _on_text_ack,
    }

    _TIMER_ACTIONS: ClassVar[dict[Timer, Callable[[PeerCore, float], None]]] = {
        Timer.REGISTRATION_RETRY: _registration_tick,
        Timer.PUNCH_DEADLINE: _punch_deadline_passed,
        Timer.HELLO: _hello_tick,
        Timer.SERVER_BEAT: _server_beat_tick,
        Timer.PEER_SILENCE: _peer_silent,
        Timer.PEER_BEAT: _peer_beat_tick,
        Timer.ESCALATE: _ladder.escalate,
        Timer.REPORT: _ladder.report_tick,
        Timer.PROBE: _ladder.probe_tick,
        Timer.DIRECT_RETRY: _ladder.direct_retry_tick,
        Timer.RETRANSMIT: _retransmit_tick,
    }

    def _first_due(self, timer: Timer, now: float) -> float | None:
        """When ``timer`` first fires on entering a state that runs it (None: it does not run)."""
        config = self.config
        if timer is Timer.REGISTRATION_RETRY:
            return now
        if timer is Timer.PUNCH_DEADLINE:
            return now + config.punch_timeout
        if timer is Timer.HELLO:
            self._hello_interval = config.hello_first_retry
            return self.policy.first_hello(now, config)
        if timer is Timer.PEER_SILENCE:
            return now + config.peer_timeout
        if timer is Timer.RETRANSMIT:
            return None if self._sender is None else self._sender.due()
        if timer in _ladder.TIMERS:
            return _ladder.first_due(self, timer, now)
        if config.heartbeat_interval is None:
            return None  # both heart-beats are off
        if timer is Timer.SERVER_BEAT:
            return None if self.peer_id is None else now + self._server_beat_interval()
        if not config.peer_heartbeat:
            return None
        return now + config.heartbeat_interval  # Timer.PEER_BEAT

    def _server_beat_interval(self) -> float:
        """Faster while waiting to be introduced (see PeerConfig.waiting_heartbeat_interval)."""
        waiting = self.config.waiting_heartbeat_interval
        if STATES[self.state].waiting and waiting is not None and self.policy.fast_waiting_beat:
            return waiting
        return self._heartbeat_interval()

    def _heartbeat_interval(self) -> float:
        assert self.config.heartbeat_interval is not None
        return self.config.heartbeat_interval

    # -- state changes ---------------------------------------------------------------

    def _fail(self, trigger: Trigger, now: float, reason: str) -> None:
        self._transition(trigger, now)
        self._events.append(Failed(reason))

    def _transition(self, trigger: Trigger, now: float) -> None:
        """Move along the table; stop the timers the new state does not run, start its own."""
        new = STATES[self.state].transitions.get(trigger)
        if new is None:
            raise LocalProtocolError(f"cannot {trigger.value} while {self.state.value}")
        old, self.state = self.state, new
        spec = STATES[new]
        if new not in PUNCHING_STATES and new is not PeerState.CONNECTED:
            self.sockets, self.peer_via, self._hit_sockets = frozenset(), 0, set()
        for timer in list(self._due):
            if timer not in spec.timers:
                del self._due[timer]
        for timer in TIMER_ORDER:
            if timer in spec.timers and (timer not in self._due or timer in spec.restart):
                due = self._first_due(timer, now)
                if due is not None:
                    self._due[timer] = due
        self._events.append(StateChanged(old, new, trigger))

    def _send(self, message: Message, address: Address, via: int = 0) -> None:
        if via:
            self._socket_outbox.append((encode(message), address, via))
        else:
            self._outbox.append((encode(message), address))

    def _send_peer(self, message: Message) -> None:
        """To the partner: through the relay while that is the way, else from our socket."""
        if self.route is Route.RELAYED or STATES[self.state].relays:
            self._send_relayed(message)
        else:
            assert self.peer_address is not None
            self._send(message, self.peer_address, self.peer_via)

    def _send_relayed(self, message: Message) -> None:
        wrapped = Message(MessageType.RELAY, encode(message).decode(), token=self.token)
        self._send(wrapped, self.server_address)

    def _reply(self, message: Message, address: Address) -> None:
        """Back the way the datagram being handled came: its socket, or the relay."""
        if self._relayed:
            self._send_relayed(message)
        else:
            self._send(message, address, self._via)

    def _ignore(self, address: Address, reason: str, detail: str) -> None:
        self.ignored += 1
        self._events.append(DatagramIgnored(address, reason, detail))
