"""The peer's traversal ladder: what its timers and the relayed messages do on each rung.

Part of :class:`punchlab.peer.PeerCore`, kept apart so the core stays
readable: the rungs are states of :mod:`punchlab.peer_table`, the choice of
rung is :func:`punchlab.traversal.next_rung`, and this module is what a peer
does while on one (send its NAT report through the relay, open the birthday
sockets, pace the probes, keep trying the direct path while relayed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from punchlab.messages import (
    Address,
    Message,
    MessageType,
    RemoteProtocolError,
    decode,
)
from punchlab.peer_table import PeerState, Timer, Trigger
from punchlab.traversal import NatReport, Route, Rung, next_rung

if TYPE_CHECKING:
    from punchlab.peer import PeerCore

__all__ = ["TIMERS", "direct_retry_tick", "escalate", "first_due", "on_relay", "probe_tick"]

#: The ladder's own timers (the core arms them as the table says).
TIMERS = frozenset({Timer.ESCALATE, Timer.PROBE, Timer.DIRECT_RETRY, Timer.REPORT})

#: The NAT reports go once the direct punch has had a fair chance (most punches
#: connect in a few round trips and never need them), then again this often
#: until the partner says it has ours.
REPORT_AFTER = 0.3
REPORT_RETRY = 0.15

#: Probes leave in small batches, this often: paced, without a timer per probe.
PROBE_TICK = 0.02
#: The HELLOs of a birthday punch say which they are (a receiver reads no HELLO's
#: payload), so that a trace can fold each burst into one entry (punchlab.trace.FOLDED).
PROBE_PAYLOAD = "probe"
OPEN_PAYLOAD = "open"

#: The lowest port a NAT hands out (Linux's masquerade random range starts here).
FIRST_PROBE_PORT = 1024

_TRIGGERS = {
    Rung.PREDICT_AIM: Trigger.PREDICT,
    Rung.PREDICT_OPEN: Trigger.PREDICT,
    Rung.BIRTHDAY_OPEN: Trigger.PROBE,
    Rung.BIRTHDAY_PROBE: Trigger.PROBE,
    Rung.RELAY: Trigger.RELAY,
}
#: What may arrive through the relay.
_RELAYED_TYPES = frozenset(
    {
        MessageType.HELLO,
        MessageType.SUCCESS,
        MessageType.TEXT,
        MessageType.HEART_BEAT,
        MessageType.NAT,
        MessageType.PORTS_OPEN,
        MessageType.TEXT_ACK,
    }
)


def first_due(core: PeerCore, timer: Timer, now: float) -> float | None:
    """When a ladder timer first fires on entering a state that runs it."""
    config = core.config
    if timer is Timer.DIRECT_RETRY:
        return now + config.direct_retry_interval if core.route is Route.RELAYED else None
    if not core._climbs_ladder:
        return None
    if timer is Timer.PROBE:
        return now if core.rung is Rung.BIRTHDAY_PROBE and core._ports_open else None
    if timer is Timer.REPORT:
        return now + REPORT_AFTER * config.direct_timeout
    if core.state is PeerState.PUNCHING:
        return now + config.direct_timeout
    if core.state is PeerState.PROBING:
        # The probes take probe_limit / probe_rate once the ports are open.
        return now + config.probe_limit / config.probe_rate + 2 * config.rung_timeout
    return now + config.rung_timeout


def escalate(core: PeerCore, now: float) -> None:
    """The rung ran out: choose the next from what both sides know (the relay after that)."""
    del core._due[Timer.ESCALATE]
    rung = next_rung(core.nat, core.partner_nat) if core.state is PeerState.PUNCHING else Rung.RELAY
    core.rung = rung
    core._transition(_TRIGGERS[rung], now)
    if rung is Rung.BIRTHDAY_OPEN:
        _open_ports(core)


def _open_ports(core: PeerCore) -> None:
    """The hard side: a HELLO from each of k new sockets to the partner, then say so."""
    assert core.introduced_address is not None
    count = core.config.birthday_sockets
    core.sockets = frozenset(range(1, count + 1))
    hello = core._to_peer(MessageType.HELLO, OPEN_PAYLOAD)
    for via in sorted(core.sockets):
        core._send(hello, core.introduced_address, via)
    core._send_relayed(core._to_peer(MessageType.PORTS_OPEN, str(count)))


def probe_tick(core: PeerCore, now: float) -> None:
    """The easy side: the next few HELLOs to random ports of the partner's IP."""
    config = core.config
    assert core.introduced_address is not None
    batch = max(1, round(config.probe_rate * PROBE_TICK))
    hello = core._to_peer(MessageType.HELLO, PROBE_PAYLOAD)
    ip = core.introduced_address[0]
    for _ in range(min(batch, config.probe_limit - core.probes)):
        core._send(hello, (ip, core._rng.randrange(FIRST_PROBE_PORT, 65536)))
        core.probes += 1
    if core.probes >= config.probe_limit:
        del core._due[Timer.PROBE]
    else:
        core._due[Timer.PROBE] = now + batch / config.probe_rate


def direct_retry_tick(core: PeerCore, now: float) -> None:
    """While relayed: a HELLO straight to the partner (and to its private endpoints,
    behind the same NAT); its SUCCESS moves the chat over."""
    assert core.peer_address is not None
    hello = core._to_peer(MessageType.HELLO)
    for address in (core.peer_address, *core.partner_local):
        core._send(hello, address)
    core._due[Timer.DIRECT_RETRY] = now + core.config.direct_retry_interval


def report_tick(core: PeerCore, now: float) -> None:
    """Our NAT report, again until the partner has it (nothing to say: no report; the
    partner, not knowing ours, will choose the relay, as we will)."""
    if core.nat is None or not core.nat.known:
        del core._due[Timer.REPORT]
        return
    send_report(core)
    if core._partner_has_report:
        del core._due[Timer.REPORT]
    else:
        core._due[Timer.REPORT] = now + REPORT_RETRY


def send_report(core: PeerCore) -> None:
    """Tell the partner (through the relay) what we know of our NAT, and whether we have its."""
    payload = (core.nat or NatReport()).encode()
    if core.partner_nat is not None:
        payload += ";seen=yes"
    core._send_relayed(core._to_peer(MessageType.NAT, payload))


def on_relay(core: PeerCore, message: Message, address: Address, now: float) -> None:
    """A message the server relayed from the partner: checked, credited, then handled."""
    if address != core.server_address:
        core._ignore(address, "not from server", "RELAY from another address")
        return
    if message.token is None or message.token not in core._tokens:
        core._ignore(address, "unexpected source", "RELAY for no introduction of ours")
        return
    if not message.payload:
        return
    try:
        inner = decode(message.payload.encode("utf-8", "replace"))
    except RemoteProtocolError as exc:
        core._ignore(address, exc.reason, f"relayed: {exc}")
        return
    if inner.type not in _RELAYED_TYPES:
        core._ignore(address, "unexpected type", f"{inner.type} cannot be relayed")
        return
    # An empty RELAY back earns us credit at the server for the next one.
    core._send(Message(MessageType.RELAY, "", token=message.token), core.server_address)
    core._relayed = True
    try:
        if inner.type is MessageType.NAT:
            _on_nat(core, inner, address)
        elif inner.type is MessageType.PORTS_OPEN:
            _on_ports_open(core, inner, address, now)
        else:
            core._dispatch(inner, address, now)
    finally:
        core._relayed = False


def _on_nat(core: PeerCore, message: Message, address: Address) -> None:
    if not core._is_from_peer(message, address, adopt=False):
        return
    first = core.partner_nat is None
    core.partner_nat = NatReport.parse(message.payload)
    if "seen=yes" in message.payload.split(";"):
        core._partner_has_report = True
    if first and core.state is PeerState.PUNCHING:
        send_report(core)  # now saying we have theirs


def _on_ports_open(core: PeerCore, message: Message, address: Address, now: float) -> None:
    if not core._is_from_peer(message, address, adopt=False):
        return
    core._ports_open = True
    if core.state is PeerState.PROBING and core.rung is Rung.BIRTHDAY_PROBE:
        core._due.setdefault(Timer.PROBE, now)
