"""RFC 5780's tests, run as a sans-IO client: what kind of NAT is this host behind?

The client needs an RFC 5780 server (two IP addresses, two ports). It runs:

* **mapping** (RFC 5780 section 4.3), from one local socket: test I to the
  server's primary address; test II to its other IP, same port; test III to
  its other IP and other port. The same public address every time means
  endpoint-independent mapping; a new one for a new IP but not for a new port
  means address-dependent; a new one each time, address-and-port-dependent.
* **filtering** (section 4.4), from a fresh socket (the mapping tests opened
  the first one's filter to the other address): test I to the primary, then
  test II asks for the answer from the other IP and port, test III from the
  other port only. Which answers get in decides the filtering.
* **hairpinning** (section 4.5): the second socket sends a Binding request to
  its own public address; the NAT hairpins if the request comes back to it
  (as coturn's ``turnutils_natdiscovery -H`` does it). A NAT that maps per
  destination turns the request round from a new public port, which its own
  filter may then drop: "not seen" is all such a NAT lets the test say.

Like the peer and the server cores, it owns no socket and no clock: the
driver asks :meth:`NatDiscovery.datagrams_to_send` for ``(bytes, address,
socket)`` and feeds back what each socket receives. A negative answer (an
answer that never comes) takes the whole retransmission schedule, so the
filtering tests take a couple of seconds on a real network.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from punchlab.messages import Address, format_address
from punchlab.stun.codec import (
    Attr,
    Cls,
    MalformedStun,
    StunMessage,
    change_request,
    encode,
    parse,
)

__all__ = [
    "ADDRESS_AND_PORT_DEPENDENT",
    "ADDRESS_DEPENDENT",
    "ENDPOINT_INDEPENDENT",
    "DiscoveryResult",
    "NatDiscovery",
    "TestRun",
]

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"

#: The local sockets the tests use: mapping, then filtering and hairpinning.
MAPPING_SOCKET, FILTERING_SOCKET = 0, 1


@dataclass(frozen=True)
class _Ask:
    """One test's request: from socket ``via`` to ``destination``, maybe asking for a change."""

    name: str
    via: int
    destination: Address
    change: tuple[bool, bool] | None = None
    #: Hairpinning: the request itself must arrive on this socket (no answer is expected).
    arrives_on: int | None = None


@dataclass(frozen=True)
class TestRun:
    """What one test sent and what came back: the evidence a classification rests on."""

    name: str
    via: int
    destination: Address
    change: tuple[bool, bool] | None
    #: The public address the server saw (None: no answer after every retry).
    mapped: Address | None
    #: Where the answer (or, for hairpinning, the request) came from.
    origin: Address | None
    sends: int

    def describe(self) -> str:
        """One line for a terminal: what went where, and what came back."""
        asked = ""
        if self.change is not None:
            parts = [name for name, on in zip(("IP", "port"), self.change, strict=True) if on]
            asked = f" asking for an answer from another {' and '.join(parts)}"
        target = format_address(self.destination)
        if self.mapped is None and self.origin is None and self.name == "hairpinning":
            got = f"the request did not come back ({self.sends} tries)"
        elif self.mapped is None and self.origin is None:
            got = f"no answer after {self.sends} tries"
        elif self.mapped is None:
            got = f"the request arrived (from {format_address(self.origin)})"
        else:
            got = f"public address {format_address(self.mapped)}"
            if self.origin is not None:
                got += f", answered from {format_address(self.origin)}"
        return f"{self.name}: socket {self.via} -> {target}{asked}: {got}"


@dataclass
class DiscoveryResult:
    """The classification and its evidence; ``problem`` says why a part is unknown."""

    mapping: str | None = None
    filtering: str | None = None
    hairpinning: bool | None = None
    #: The public address of the mapping socket, as the server saw it.
    public: Address | None = None
    #: Whether the public address differs from the local one (None: not known).
    behind_nat: bool | None = None
    tests: list[TestRun] = field(default_factory=list)
    problem: str | None = None

    @property
    def complete(self) -> bool:
        return self.mapping is not None and self.filtering is not None


Plan = Generator[_Ask, "StunMessage | Address | None", None]


class NatDiscovery:
    """RFC 5780 behaviour discovery against ``server`` (its primary address).

    ``local`` tells, for a socket, the local address it is bound to (to say
    whether there is a NAT at all); a driver that cannot know it may pass a
    function returning None. Retransmissions follow RFC 8489 section 6.2.1
    (doubling from ``rto``), with fewer tries so a lost answer costs seconds.
    """

    def __init__(
        self,
        server: Address,
        *,
        local: Callable[[int], Address | None] = lambda via: None,
        rto: float = 0.2,
        attempts: int = 3,
        hairpinning: bool = True,
        filtering: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``filtering`` and ``hairpinning`` off: only the mapping tests (a peer choosing a
        rung of the traversal ladder needs no more, and they take no negative answers)."""
        if rto <= 0 or attempts < 1:
            raise ValueError("rto must be positive and attempts at least 1")
        self.server, self.local = server, local
        self.rto, self.attempts, self.hairpinning = rto, attempts, hairpinning
        self.filtering = filtering
        self._random_bytes = random_bytes
        self.result = DiscoveryResult()
        self.done = False
        self.ignored = 0
        self._plan: Plan = self._tests()
        self._ask: _Ask | None = None
        self._transaction = b""
        self._sends = 0
        self._due: float | None = None
        self._outgoing: list[tuple[bytes, Address, int]] = []
        self._started = False

    #: How many local sockets the driver must open.
    sockets = 2

    def start(self, now: float) -> None:
        """Send the first test's request."""
        if self._started:
            return
        self._started = True
        self._advance(next(self._plan), now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address, int]]:
        """What to send, each with the index of the local socket to send it from."""
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        return self._due

    def handle_timer(self, now: float) -> None:
        if self._due is None or now < self._due or self._ask is None:
            return
        if self._sends < self.attempts:
            self._send(now)
            return
        self._record(None, None)
        self._step(None, now)

    def receive_datagram(self, data: bytes, source: Address, via: int, now: float) -> None:
        """A datagram on local socket ``via``; anything but the awaited answer is ignored."""
        ask = self._ask
        try:
            message = parse(data)
        except MalformedStun:
            self.ignored += 1
            return
        if ask is None or message.transaction_id != self._transaction:
            self.ignored += 1
            return
        if ask.arrives_on is not None:
            if via != ask.arrives_on or message.cls is not Cls.REQUEST:
                self.ignored += 1
                return
            self._record(None, source)
            self._step(source, now)
            return
        if via != ask.via or message.cls not in (Cls.SUCCESS, Cls.ERROR):
            self.ignored += 1
            return
        try:
            mapped = message.mapped()
            message.address(Attr.OTHER_ADDRESS)  # read later: a bad one is bad input now
        except MalformedStun:
            self.ignored += 1
            return
        if message.cls is Cls.ERROR or mapped is None:
            self._record(None, source)
            self.result.problem = f"{ask.name}: the server answered with an error"
            self._finish()
            return
        # Where the answer really came from (RESPONSE-ORIGIN is only the server's word).
        self._record(mapped, source)
        self._step(message, now)

    # -- the tests, as one generator: each ``yield`` is a request and its answer -------------

    def _tests(self) -> Plan:
        first = yield _Ask("mapping test I", MAPPING_SOCKET, self.server)
        if not isinstance(first, StunMessage):
            self.result.problem = "the server did not answer (is it a STUN server?)"
            return
        other = first.address(Attr.OTHER_ADDRESS)
        self.result.public = self.result.tests[-1].mapped
        local = self.local(MAPPING_SOCKET)
        if local is not None and local[0] not in ("0.0.0.0", "::"):
            self.result.behind_nat = local != self.result.public
        if other is None:
            self.result.problem = "the server gave no OTHER-ADDRESS: it is not an RFC 5780 server"
            return
        if (why := other_address_problem(self.server, other)) is not None:
            self.result.problem = why
            return
        yield from self._mapping(other)
        if self.filtering:
            yield from self._filtering(other)
        if self.hairpinning:
            yield from self._hairpin()

    def _mapping(self, other: Address) -> Plan:
        public = self.result.public
        second = yield _Ask("mapping test II", MAPPING_SOCKET, (other[0], self.server[1]))
        if not isinstance(second, StunMessage):
            self.result.problem = "no answer from the server's other address"
            return
        seen = self.result.tests[-1].mapped
        if seen == public:
            self.result.mapping = ENDPOINT_INDEPENDENT
            return
        third = yield _Ask("mapping test III", MAPPING_SOCKET, other)
        if not isinstance(third, StunMessage):
            self.result.problem = "no answer from the server's other address and port"
            return
        same = self.result.tests[-1].mapped == seen
        self.result.mapping = ADDRESS_DEPENDENT if same else ADDRESS_AND_PORT_DEPENDENT

    def _filtering(self, other: Address) -> Plan:
        opened = yield _Ask("filtering test I", FILTERING_SOCKET, self.server)
        if not isinstance(opened, StunMessage):
            self.result.problem = "no answer to filtering test I"
            return
        both = yield _Ask("filtering test II", FILTERING_SOCKET, self.server, (True, True))
        if both is not None and not self._answered_from(other):
            return
        if both is not None:
            self.result.filtering = ENDPOINT_INDEPENDENT
            return
        port = yield _Ask("filtering test III", FILTERING_SOCKET, self.server, (False, True))
        if port is not None and not self._answered_from((self.server[0], other[1])):
            return
        strict = ADDRESS_AND_PORT_DEPENDENT
        self.result.filtering = ADDRESS_DEPENDENT if port is not None else strict

    def _answered_from(self, asked: Address) -> bool:
        """Whether the last answer came from the address CHANGE-REQUEST asked for.

        A server that ignores CHANGE-REQUEST (many public ones) answers from where
        the request went, and a naive client would report endpoint-independent
        filtering; one that changes only the port fools it about the IP.
        """
        origin = self.result.tests[-1].origin
        if origin == asked:
            return True
        came = "where the request went" if origin == self.server else _at(origin)
        self.result.problem = (
            f"the server ignored CHANGE-REQUEST (asked to answer from {format_address(asked)}, "
            f"it answered from {came}): filtering cannot be told"
        )
        return False

    def _hairpin(self) -> Plan:
        target = next(
            (t.mapped for t in self.result.tests if t.via == FILTERING_SOCKET and t.mapped), None
        )
        if target is None:
            return
        arrived = yield _Ask("hairpinning", FILTERING_SOCKET, target, arrives_on=FILTERING_SOCKET)
        self.result.hairpinning = arrived is not None

        # -- driving the generator -----------------------------------------------------------------

    def _advance(self, ask: _Ask, now: float) -> None:
        self._ask, self._sends = ask, 0
        self._transaction = self._random_bytes(12)
        self._send(now)

    def _send(self, now: float) -> None:
        ask = self._ask
        assert ask is not None
        attributes: tuple[tuple[int, bytes], ...] = ()
        if ask.change is not None:
            attributes = ((Attr.CHANGE_REQUEST, change_request(*ask.change)),)
        request = StunMessage(Cls.REQUEST, self._transaction, attributes)
        self._outgoing.append((encode(request), ask.destination, ask.via))
        self._due = now + self.rto * 2**self._sends
        self._sends += 1

    def _record(self, mapped: Address | None, origin: Address | None) -> None:
        ask = self._ask
        assert ask is not None
        self.result.tests.append(
            TestRun(ask.name, ask.via, ask.destination, ask.change, mapped, origin, self._sends)
        )

    def _step(self, answer: StunMessage | Address | None, now: float) -> None:
        self._due = None
        try:
            ask = self._plan.send(answer)
        except StopIteration:
            self._finish()
            return
        self._advance(ask, now)

    def _finish(self) -> None:
        self._ask, self._due, self.done = None, None, True


# -- checking what the server says -------------------------------------------------------


def other_address_problem(server: Address, other: Address) -> str | None:
    """Why an OTHER-ADDRESS cannot be the same server's other IP and port, or None.

    It comes from the network: a careless or hostile server could name its own
    primary IP (every NAT would then look endpoint-independent) or some third
    party, at which the tests would then aim their requests.
    """
    try:
        ip, server_ip = ipaddress.ip_address(other[0]), ipaddress.ip_address(server[0])
    except ValueError:
        return "the server's OTHER-ADDRESS is not an IP address"
    if ip.version != server_ip.version:
        return "the server's OTHER-ADDRESS is of another address family"
    if ip == server_ip or other[1] in (0, server[1]):
        return f"the server's OTHER-ADDRESS {format_address(other)} is not another IP and port"
    if ip.is_unspecified or ip.is_multicast or (ip.is_loopback and not server_ip.is_loopback):
        return f"the server's OTHER-ADDRESS {format_address(other)} is not a server's address"
    return None


def _at(address: Address | None) -> str:
    return "nowhere" if address is None else format_address(address)
