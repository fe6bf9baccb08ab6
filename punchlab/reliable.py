"""Chat lines that arrive in order and once over UDP, with no IO.

UDP promises nothing (RFC 768: no delivery, no order, no duplicate
protection), so between two punchlab peers that both announced ``reliable``
each TEXT carries a sequence number (its ``seq`` key) and the receiver
answers every numbered TEXT with a TEXT-ACK. The application does its own
reliability, as RFC 8085 section 3.3 asks of a UDP application that needs it:

- the sender keeps at most :attr:`ReliableConfig.window` TEXTs unacknowledged
  (a send window; the rest wait their turn), and sends each again when its
  timer runs out, waiting twice as long each time (RFC 8085 section 3.1.3:
  exponential backoff), from a timeout estimated from the round trips it
  measured (RFC 6298's SRTT / RTTVAR, with Karn's rule: no sample from a
  datagram sent more than once);
- the receiver delivers in order and once: it holds what arrives early (at
  most a window's worth, a bound a stranger cannot push past), drops what it
  has already seen, and acknowledges cumulatively (everything up to CUM) and
  selectively (these seqs beyond it), so one lost ack costs nothing;
- an acknowledgement is a claim: one that names a TEXT never sent, or is
  malformed, raises :class:`BogusAck` and changes nothing; it names at most
  :data:`MAX_BLOCKS` blocks beyond CUM (runs of seqs, as TCP's SACK option
  names at most four), so it stays small whatever the sender did.

What it does not do: congestion control beyond the window and the backoff
(RFC 8085 section 3.1 asks a bulk sender for more). A chat sends a line at a
time; a window of 64 small datagrams after an outage is its worst burst.

A line is never given up on here: :meth:`Sender.give_up` is for the peer to
call when it declares the partner gone (its liveness timeout).

Wire form (new keys and a new type, which the Go program never receives):
``{"type":"TEXT","payload":"hi\\n","token":"...","seq":7}`` and
``{"type":"TEXT-ACK","payload":"6;8-9,12","token":"..."}`` (everything up to 6
arrived, and 8 to 9 and 12 too).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from punchlab.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Ack",
    "BogusAck",
    "LineDone",
    "Receiver",
    "ReliableConfig",
    "Sender",
    "deliver",
]


#: TEXTs in flight, and held ahead of a gap, by default.
DEFAULT_WINDOW = 64


#: Later seqs acknowledged before a missing one counts as lost (TCP's three duplicate acks).
DUPTHRESH = 3
#: The most blocks (a seq, or a run of them) beyond CUM one TEXT-ACK names, the
#: lowest first, as TCP's SACK option carries at most four: an ack stays a small
#: multiple of the TEXT it answers.
MAX_BLOCKS = 4


class BogusAck(RemoteProtocolError):
    """A TEXT-ACK that is malformed, or acknowledges what was never sent."""

    reason = "bogus ack"


@dataclass(frozen=True, slots=True)
class ReliableConfig:
    """The knobs of the reliable chat (PeerConfig carries one)."""

    #: TEXTs in flight at once, and how far ahead of its next expected seq a
    #: receiver holds a TEXT (beyond: dropped and recorded).
    window: int = DEFAULT_WINDOW
    #: Retransmission timeout before any round trip was measured: RFC 6298
    #: section 2.1 says 1 s (RFC 8085 section 3.1.3 points there).
    rto_initial: float = 1.0
    #: The floor under a measured timeout (Linux TCP's 200 ms; RFC 6298 asks 1 s,
    #: too slow for a chat on a LAN), and the ceiling of the backoff.
    rto_min: float = 0.2
    #: Below RFC 6298 section 2.5's 60 s: a chat line retried once a minute is a
    #: chat line lost to its reader; the liveness timeout ends the tries anyway.
    rto_max: float = 8.0
    #: Pieces waiting for the window (a local limit: more is our own misuse).
    max_queued: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 1024:
            raise ValueError("window must be between 1 and 1024")
        if not 0 < self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError("need 0 < rto_min <= rto_initial <= rto_max")
        if self.max_queued < 1:
            raise ValueError("max_queued must be at least 1")


@dataclass(frozen=True, slots=True)
class Ack:
    """What a receiver has: every seq up to ``cumulative``, and ``selective`` beyond it."""

    cumulative: int
    selective: tuple[int, ...] = ()

    def encode(self) -> str:
        """``CUM`` or ``CUM;B1,B2,...``, each block a seq or a run ``FIRST-LAST``."""
        if not self.selective:
            return str(self.cumulative)
        return f"{self.cumulative};{','.join(_blocks(self.selective))}"

    @classmethod
    def parse(cls, text: str, window: int) -> Ack:
        """Read a TEXT-ACK payload strictly (ASCII digits, at most :data:`MAX_BLOCKS`
        increasing blocks beyond CUM, within the window); anything else raises
        :class:`BogusAck`."""
        if len(text) > 24 * (MAX_BLOCKS + 1) or not _ACK.fullmatch(text):
            raise BogusAck(f"TEXT-ACK payload {text[:40]!r} is not CUM or CUM;B1,B2,...")
        head, _, tail = text.partition(";")
        cumulative = int(head)
        blocks = tail.split(",") if tail else []
        if len(blocks) > MAX_BLOCKS:
            raise BogusAck(f"TEXT-ACK names {len(blocks)} blocks, more than {MAX_BLOCKS}")
        selective: list[int] = []
        previous = cumulative
        for block in blocks:
            first, _, last = block.partition("-")
            low, high = int(first), int(last or first)
            if not previous < low <= high <= cumulative + window:
                raise BogusAck(f"TEXT-ACK block {block} is out of order or outside the window")
            selective += range(low, high + 1)
            previous = high
        return cls(cumulative, tuple(selective))


def _blocks(seqs: tuple[int, ...]) -> list[str]:
    """Increasing seqs as blocks: runs of consecutive ones as ``FIRST-LAST``."""
    blocks: list[list[int]] = []
    for seq in seqs:
        if blocks and seq == blocks[-1][1] + 1:
            blocks[-1][1] = seq
        else:
            blocks.append([seq, seq])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in blocks]


_ACK = re.compile(r"[0-9]{1,10}(;[0-9]{1,10}(-[0-9]{1,10})?(,[0-9]{1,10}(-[0-9]{1,10})?)*)?")


@dataclass(frozen=True, slots=True)
class LineDone:
    """A line acknowledged whole (``delivered``) or given up; ``tries``: the most any
    of its pieces was sent; ``elapsed``: from queueing to the last piece's ack."""

    line: int
    tries: int
    delivered: bool
    elapsed: float = 0.0


@dataclass(slots=True)
class _Piece:
    seq: int
    line: int
    payload: str
    queued_at: float
    tries: int = 0
    sent_at: float = 0.0
    interval: float = 0.0
    due: float = 0.0
    #: Already hurried since its last sending (one fast retransmission per try).
    hurried: bool = False
    #: When it was last sent, in the sender's order of sending (a clock may not tell).
    order: int = 0


@dataclass(slots=True)
class _Line:
    pieces: int
    queued_at: float
    tries: int = 0


@dataclass
class Sender:
    """The sending half: numbers pieces, keeps the window, retransmits, reads acks."""

    config: ReliableConfig = field(default_factory=ReliableConfig)

    def __post_init__(self) -> None:
        self.next_seq = 1
        self._waiting: deque[_Piece] = deque()
        self._flight: dict[int, _Piece] = {}
        self._lines: dict[int, _Line] = {}
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = self.config.rto_initial
        #: The highest seq acknowledged so far, and when it was sent (fast retransmission).
        self._highest_acked = 0
        self._highest_acked_order = 0
        self._sends = 0
        #: Datagrams sent again, for the bench and the notebook.
        self.retransmissions = 0

    def queue(self, line: int, pieces: list[str], now: float) -> None:
        """Number the pieces of one line; :meth:`to_send` lets them out as the window allows."""
        if not self.has_room(len(pieces)):
            raise LocalProtocolError(
                f"more than {self.config.max_queued} pieces wait for acknowledgement"
            )
        self._lines[line] = _Line(len(pieces), now)
        for payload in pieces:
            self._waiting.append(_Piece(self.next_seq, line, payload, now))
            self.next_seq += 1

    def has_room(self, pieces: int) -> bool:
        """Whether ``pieces`` more may wait for the window (:attr:`ReliableConfig.max_queued`)."""
        return len(self._waiting) + pieces <= self.config.max_queued

    @property
    def unacknowledged(self) -> int:
        """Pieces not acknowledged yet (in flight or waiting for the window)."""
        return len(self._flight) + len(self._waiting)

    def _base(self) -> int:
        """The lowest seq not yet acknowledged: the window starts here."""
        if self._flight:
            return min(self._flight)
        return self._waiting[0].seq if self._waiting else self.next_seq

    def to_send(self, now: float) -> list[tuple[int, str]]:
        """The waiting pieces the window lets out now, as ``(seq, payload)``."""
        out = []
        limit = self._base() + self.config.window
        while self._waiting and self._waiting[0].seq < limit:
            piece = self._waiting.popleft()
            piece.interval = self.rto
            self._send(piece, now)
            self._flight[piece.seq] = piece
            out.append((piece.seq, piece.payload))
        return out

    def _send(self, piece: _Piece, now: float) -> None:
        piece.tries += 1
        piece.sent_at, piece.due, piece.hurried = now, now + piece.interval, False
        self._sends += 1
        piece.order = self._sends
        line = self._lines[piece.line]
        line.tries = max(line.tries, piece.tries)

    def due(self) -> float | None:
        """When the next retransmission is due (None: nothing in flight)."""
        return min((piece.due for piece in self._flight.values()), default=None)

    def retransmit(self, now: float) -> list[tuple[int, str]]:
        """Send again every piece whose timer ran out: after its k-th sending a piece waits
        RTO x 2^(k-1), RTO being the current estimate (exponential backoff, RFC 6298 §5.5)."""
        out = []
        for piece in sorted(self._flight.values(), key=lambda p: p.seq):
            if piece.due <= now:
                # Twice the wait of the try before, from the timeout as measured now: the
                # first sample (often after the first sends) brings a 1 s guess down.
                # (The exponent is capped: a day of tries would overflow a float.)
                backoff = 2 ** min(piece.tries, 30)
                piece.interval = min(self.rto * backoff, self.config.rto_max)
                self._send(piece, now)
                self.retransmissions += 1
                out.append((piece.seq, piece.payload))
        return out

    def check(self, ack: Ack) -> None:
        """Raise :class:`BogusAck` if ``ack`` names a seq never sent (it then changes nothing)."""
        highest = self.next_seq - 1 - len(self._waiting)
        if ack.cumulative > highest or any(seq > highest for seq in ack.selective):
            raise BogusAck(f"TEXT-ACK for seqs never sent (sent up to {highest}): {ack.encode()}")

    def on_ack(self, ack: Ack, now: float) -> list[LineDone]:
        """Forget what ``ack`` acknowledges; the lines now acknowledged whole, in order."""
        self.check(ack)
        acked = [p for seq, p in self._flight.items() if seq <= ack.cumulative]
        selective = set(ack.selective)
        acked += [p for seq, p in self._flight.items() if seq in selective]
        clean = [p for p in acked if p.tries == 1]  # Karn: a resent piece's ack is ambiguous
        if clean:
            self._sample(now - max(clean, key=lambda p: p.seq).sent_at)
        done = []
        for piece in sorted(acked, key=lambda p: p.seq):
            if piece.seq > self._highest_acked:
                self._highest_acked, self._highest_acked_order = piece.seq, piece.order
            del self._flight[piece.seq]
            line = self._lines[piece.line]
            line.pieces -= 1
            if line.pieces == 0:
                del self._lines[piece.line]
                done.append(LineDone(piece.line, line.tries, True, now - line.queued_at))
        self._hurry(now)
        return done

    def _hurry(self, now: float) -> None:
        """A piece sent before one acknowledged :data:`DUPTHRESH` seqs later is most likely
        lost, not late (RFC 5681 section 3.2, RFC 6675): due now, not at its timeout."""
        for piece in self._flight.values():
            if (
                not piece.hurried
                and piece.seq + DUPTHRESH <= self._highest_acked
                and piece.order < self._highest_acked_order
            ):
                piece.hurried, piece.due = True, now

    def _sample(self, rtt: float) -> None:
        """RFC 6298 section 2: smooth the round trip, and the timeout from it."""
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        rto = self.srtt + max(0.001, 4 * self.rttvar)
        self.rto = min(max(rto, self.config.rto_min), self.config.rto_max)

    def give_up(self) -> list[LineDone]:
        """The partner is gone: every line not acknowledged whole has failed."""
        done = [LineDone(line, state.tries, False) for line, state in sorted(self._lines.items())]
        self._lines.clear()
        self._flight.clear()
        self._waiting.clear()
        return done


@dataclass
class Receiver:
    """The receiving half: holds early pieces (a window's worth), drops duplicates."""

    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        #: Every seq up to here was delivered.
        self.cumulative = 0
        self._held: dict[int, str] = {}
        self.duplicates = 0
        self.beyond_window = 0

    def receive(self, seq: int, payload: str) -> tuple[list[str], str]:
        """Take one numbered piece; what may now be delivered, in order, and a verdict:
        ``"new"``, ``"duplicate"`` or ``"beyond window"`` (then dropped)."""
        if seq <= self.cumulative or seq in self._held:
            self.duplicates += 1
            return [], "duplicate"
        if seq > self.cumulative + self.window:
            self.beyond_window += 1
            return [], "beyond window"
        self._held[seq] = payload
        out = []
        while self.cumulative + 1 in self._held:
            self.cumulative += 1
            out.append(self._held.pop(self.cumulative))
        return out, "new"

    def ack(self) -> Ack:
        """What to acknowledge: everything up to CUM, and the first blocks held beyond it."""
        held = sorted(self._held)
        kept: list[int] = []
        blocks = 0
        for seq in held:
            if not kept or seq != kept[-1] + 1:
                blocks += 1
                if blocks > MAX_BLOCKS:
                    break
            kept.append(seq)
        return Ack(self.cumulative, tuple(kept))


def deliver(received: Iterable[tuple[int, str]], window: int = DEFAULT_WINDOW) -> list[str]:
    """What a receiver hands the reader from ``(seq, text)`` in arrival order: each
    seq once, in order, nothing past a gap that never fills (chapter 14's exercise)."""
    receiver = Receiver(window)
    out: list[str] = []
    for seq, text in received:
        out += receiver.receive(seq, text)[0]
    return out
