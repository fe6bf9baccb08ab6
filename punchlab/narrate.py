"""A peer's events told in words: one wording for the CLI, the scripted peer and the widgets.

Addresses in these events were parsed by the core, so they are safe to show;
reasons may quote the network, so they pass through :func:`printable`.
"""

from __future__ import annotations

from punchlab.display import format_duration, printable
from punchlab.messages import format_address
from punchlab.peer import (
    Connected,
    Disconnected,
    Failed,
    Introduced,
    IntroductionRefused,
    NatDiscovered,
    PeerAddressChanged,
    PeerEvent,
    RouteChanged,
    TextDelivered,
    TextFailed,
    TextSent,
)
from punchlab.traversal import Route, route_text

__all__ = ["LINE_SHOWN", "REASON_SHOWN", "line_state", "tell"]

#: How much of a reason (which may come from a server) is shown.
REASON_SHOWN = 500
#: How much of our own chat line a state report repeats.
LINE_SHOWN = 60


def tell(event: PeerEvent) -> str | None:
    """One sentence about ``event`` for a person, or None when it is not news to them."""
    if isinstance(event, Introduced):
        if event.initiator:
            return None  # the person asked for it and was told so already
        return f"A peer at {format_address(event.peer_address)} wants to talk: punching…"
    if isinstance(event, PeerAddressChanged):
        if event.private:
            return (
                f"The peer answers from its own address {format_address(event.new)}: "
                "you are behind the same NAT, so no NAT stands between you."
            )
        return (
            f"The peer answers from {format_address(event.new)}, not "
            f"{format_address(event.old)}: its NAT picked a new port."
        )
    if isinstance(event, Connected):
        # One figure, measured once, by the peer's core.
        where = format_address(event.peer_address)
        how = route_text(event.route, event.probes)
        if event.route is Route.RELAYED:
            where = "the peer through the server's relay"
        return f"Connected to {where} in {format_duration(event.elapsed)}, route: {how}."
    if isinstance(event, RouteChanged):
        where = format_address(event.peer_address)
        if event.old is Route.RELAYED:
            return (
                f"The direct path opened: now talking to {where} ({event.new.value}), not relayed."
            )
        return f"A cheaper path answered: now talking to {where} ({event.new.value})."
    if isinstance(event, IntroductionRefused):
        return f"The server refused ({event.status}): {printable(event.reason, REASON_SHOWN)}."
    if isinstance(event, Failed | Disconnected):
        return printable(event.reason, REASON_SHOWN)
    if isinstance(event, NatDiscovered):
        return _nat_sentence(event)
    if isinstance(event, TextSent | TextDelivered | TextFailed):
        state = line_state(event)
        if isinstance(event, TextSent):
            return f"#{event.line} {state}: {printable(event.text, LINE_SHOWN)}"
        return f"#{event.line} {state}"
    return None


def line_state(event: TextSent | TextDelivered | TextFailed) -> str:
    """A sent line's state in a few words: sent, delivered (after N tries), failed after N tries.

    A partner that does not acknowledge (the Go program) leaves a line "sent"
    for ever: nobody can know whether it arrived.
    """
    if isinstance(event, TextSent):
        return "sent" if event.acknowledged else "sent (this peer does not acknowledge)"
    tries = f" after {event.tries} tries" if event.tries > 1 else ""
    if isinstance(event, TextDelivered):
        return f"delivered{tries}"
    return f"failed after {event.tries} {'try' if event.tries == 1 else 'tries'}: {event.reason}"


def _nat_sentence(event: NatDiscovered) -> str:
    """What the peer learned of its NAT, in RFC 4787's words (or why it could not tell)."""
    result = event.result
    if not result.complete:
        return f"Could not tell your NAT's behaviour: {printable(result.problem or '?', 200)}."
    if result.behind_nat is False:
        return "No NAT in front of you: the server sees your own address."
    return (
        f"Your NAT: {result.mapping} mapping, {result.filtering} filtering (RFC 4787), "
        "found by RFC 5780's tests."
    )
