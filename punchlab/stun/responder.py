"""The server side of STUN: a Binding answer for each request, no IO.

With one address the server answers Binding requests (what registration
already does, in STUN's words: the server-reflexive address). With a second
IP address and a second port it is an RFC 5780 server: it listens on all four
combinations, tells the client the other one in OTHER-ADDRESS, and answers
CHANGE-REQUEST from the IP and port asked for. The driver owns the sockets:
:meth:`StunResponder.answer` says which local address an answer leaves from.

Never an amplifier (RFC 5780 section 9.1 and RFC 8489 section 16): an answer
is at most :data:`MAX_AMPLIFICATION` times its request (optional attributes
are left out to fit), each source IP gets a bounded rate, and PADDING and
RESPONSE-PORT, which exist to make answers bigger or aim them elsewhere, are
refused with 420 like any other unknown comprehension-required attribute.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from punchlab.addresses import share_key
from punchlab.messages import Address
from punchlab.ratelimit import RateTable
from punchlab.stun.codec import (
    BINDING,
    Attr,
    Cls,
    MalformedStun,
    StunMessage,
    encode,
    encode_address,
    error_code,
    parse,
    read_change_request,
    unknown_attributes,
)

__all__ = ["MAX_AMPLIFICATION", "Reply", "StunEndpoints", "StunRefused", "StunResponder"]

#: No answer is larger than this many times its request.
MAX_AMPLIFICATION = 4

#: What a server understands; any other type below 0x8000 gets 420 (RFC 8489 section 7.3.1).
_UNDERSTOOD = {Attr.CHANGE_REQUEST, Attr.MAPPED_ADDRESS, Attr.XOR_MAPPED_ADDRESS}

SOFTWARE = b"punchlab"


@dataclass(frozen=True)
class StunEndpoints:
    """Where the server listens: its primary address, and (for RFC 5780) the other IP and port."""

    primary: Address
    alternate: Address | None = None

    @property
    def full(self) -> bool:
        """Two IPs and two ports: CHANGE-REQUEST can be honoured."""
        return self.alternate is not None

    def all(self) -> list[Address]:
        """Every local address to listen on: one, or the four combinations."""
        if self.alternate is None:
            return [self.primary]
        (ip, port), (alt_ip, alt_port) = self.primary, self.alternate
        return [(ip, port), (ip, alt_port), (alt_ip, port), (alt_ip, alt_port)]

    def swap(self, arrived_on: Address, change_ip: bool, change_port: bool) -> Address:
        """The local address that differs from ``arrived_on`` in IP and/or port as asked."""
        assert self.alternate is not None
        (ip, port), (alt_ip, alt_port) = self.primary, self.alternate
        here_ip, here_port = arrived_on
        new_ip = (alt_ip if here_ip == ip else ip) if change_ip else here_ip
        new_port = (alt_port if here_port == port else port) if change_port else here_port
        return (new_ip, new_port)


def _specified(address: Address) -> bool:
    """Whether a local address names this host (not 0.0.0.0, ::, or port 0)."""
    return address[1] != 0 and not ipaddress.ip_address(address[0]).is_unspecified


@dataclass(frozen=True)
class Reply:
    """An answer: these bytes, to ``destination``, from the local address ``via``."""

    data: bytes
    destination: Address
    via: Address
    message: StunMessage


@dataclass(frozen=True)
class StunRefused:
    """No answer at all, and why (counted; the driver may log it, throttled)."""

    reason: str


@dataclass
class StunResponder:
    """Answers Binding requests; counts what it refused."""

    endpoints: StunEndpoints
    #: Answers per second to one source (an IPv4 address or an IPv6 /64), and the burst.
    per_second: float = 20.0
    burst: int = 40
    #: Answers per second to everyone together: spoofing many sources buys no more.
    total_per_second: float = 2000.0
    total_burst: int = 4000
    #: False plays a server that ignores CHANGE-REQUEST (many public ones do), for teaching.
    honours_change_request: bool = True
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rates = RateTable(self.per_second, self.burst)
        self._total = RateTable(self.total_per_second, self.total_burst, max_keys=1)

    def answer(
        self, data: bytes, source: Address, arrived_on: Address, now: float
    ) -> Reply | StunRefused:
        """The reply to one datagram that arrived on ``arrived_on`` from ``source``."""
        try:
            request = parse(data)
        except MalformedStun as exc:
            return self._refuse(f"malformed STUN: {exc}")
        if request.cls is not Cls.REQUEST or request.method != BINDING:
            return self._refuse("not a Binding request")
        if not self._rates.take(share_key(source[0]), now) or not self._total.take("all", now):
            return self._refuse("rate limited")
        unknown = sorted(
            {kind for kind, _ in request.attributes if kind < 0x8000 and kind not in _UNDERSTOOD}
        )
        if unknown:
            return self._error(request, source, arrived_on, 420, "Unknown Attribute", unknown, data)
        change = request.get(Attr.CHANGE_REQUEST)
        change_ip = change_port = False
        if change is not None:
            try:
                change_ip, change_port = read_change_request(change)
            except MalformedStun as exc:
                return self._error(request, source, arrived_on, 400, str(exc), [], data)
            if not self.endpoints.full:
                # RFC 5780 section 6.1: without an alternate address and port a server
                # answers any CHANGE-REQUEST (even one asking for no change) with 420.
                kinds = [Attr.CHANGE_REQUEST.value]
                return self._error(
                    request, source, arrived_on, 420, "Unknown Attribute", kinds, data
                )
        via = arrived_on
        if (change_ip or change_port) and self.honours_change_request:
            via = self.endpoints.swap(arrived_on, change_ip, change_port)
        return self._success(request, source, arrived_on, via, data)

    def _refuse(self, reason: str) -> StunRefused:
        key = reason.split(":")[0]
        self.counts[key] = self.counts.get(key, 0) + 1
        return StunRefused(reason)

    def _success(
        self, request: StunMessage, source: Address, arrived_on: Address, via: Address, data: bytes
    ) -> Reply | StunRefused:
        """A success answer, optional attributes dropped from the end until it fits the bound."""
        other = self.endpoints.swap(arrived_on, True, True) if self.endpoints.full else None
        needed: list[tuple[int, bytes]]
        optional: list[tuple[int, bytes]]
        if request.cookie:
            # RFC 5780 section 6.1: both mapped addresses, then what the tests need.
            needed = [
                (Attr.XOR_MAPPED_ADDRESS, encode_address(source, xor=True, message=request)),
                (Attr.MAPPED_ADDRESS, encode_address(source)),
            ]
            optional = [(Attr.SOFTWARE, SOFTWARE)]
            if _specified(via):  # a wildcard bind does not know its own address
                optional.insert(0, (Attr.RESPONSE_ORIGIN, encode_address(via)))
            if other is not None:
                optional.insert(0, (Attr.OTHER_ADDRESS, encode_address(other)))
        else:
            # RFC 3489 section 11.2: a classic client reads only these (no XOR, no cookie).
            needed = [(Attr.MAPPED_ADDRESS, encode_address(source))]
            optional = [(Attr.SOURCE_ADDRESS, encode_address(via))] if _specified(via) else []
            if other is not None:
                optional.insert(0, (Attr.CHANGED_ADDRESS, encode_address(other)))
        return self._fit(request, Cls.SUCCESS, needed, optional, source, via, len(data))

    def _error(
        self,
        request: StunMessage,
        source: Address,
        arrived_on: Address,
        code: int,
        reason: str,
        unknown: list[int],
        data: bytes,
    ) -> Reply | StunRefused:
        self.counts[f"error {code}"] = self.counts.get(f"error {code}", 0) + 1
        needed = [(int(Attr.ERROR_CODE), error_code(code, reason))]
        if unknown:
            needed.append((int(Attr.UNKNOWN_ATTRIBUTES), unknown_attributes(unknown)))
        return self._fit(request, Cls.ERROR, needed, [], source, arrived_on, len(data))

    def _fit(
        self,
        request: StunMessage,
        cls: Cls,
        needed: list[tuple[int, bytes]],
        optional: list[tuple[int, bytes]],
        source: Address,
        via: Address,
        request_bytes: int,
    ) -> Reply | StunRefused:
        """The answer with as many optional attributes as fit :data:`MAX_AMPLIFICATION`."""
        limit = MAX_AMPLIFICATION * request_bytes
        fingerprint = request.fingerprinted
        while True:
            attributes = tuple(needed + optional)
            message = StunMessage(cls, request.transaction_id, attributes, request.cookie)
            data = encode(message, fingerprint=fingerprint)
            if len(data) <= limit:
                break
            if optional:
                optional.pop()
            elif fingerprint:
                fingerprint = False
            else:
                return self._refuse("answer larger than the amplification bound")
        self.counts["answered"] = self.counts.get("answered", 0) + 1
        return Reply(data, source, via, message)
