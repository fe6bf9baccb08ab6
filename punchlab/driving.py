"""What every driver does after feeding a core: send, trace, hand out events.

Both the asyncio driver and the simulator call :func:`pump` so that the two
record the same things in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from punchlab.messages import Address
from punchlab.peer import DatagramIgnored
from punchlab.server import DatagramRejected
from punchlab.trace import EventKind, Trace

__all__ = ["SansIOCore", "pump"]

_REFUSALS = (DatagramRejected, DatagramIgnored)


class SansIOCore(Protocol):
    """The interface DESIGN.md section 2 gives both protocol cores."""

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> Any: ...


def pump(
    core: SansIOCore,
    now: float,
    *,
    send: Callable[[bytes, Address], None],
    on_event: Callable[[Any, bytes | None], None],
    trace: Trace,
    trace_time: float,
    actor: str,
    local_address: Address,
    cause: bytes | None = None,
) -> None:
    """Send what ``core`` queued and hand out its events.

    An event saying the core ignored input is traced with the datagram that
    caused it (``cause``), so the trace shows what was dropped and why.
    """
    for data, destination in core.datagrams_to_send(now):
        send(data, destination)
    while (event := core.next_event()) is not None:
        if cause is not None and isinstance(event, _REFUSALS):
            trace.datagram(
                EventKind.IGNORED,
                trace_time,
                actor,
                event.address,
                local_address,
                cause,
                reason=event.reason,
            )
        on_event(event, cause)
