"""What every driver does after feeding a core: send, trace, hand out events.

Both the asyncio driver and the simulator call :func:`pump` and keep their
core's timer with :class:`CoreTimer`, so that the two record the same things
in the same way and fire timers by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from punchlab.messages import Address, DatagramIgnored
from punchlab.trace import EventKind, Trace

__all__ = ["CoreTimer", "SansIOCore", "pump"]


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
        if cause is not None and isinstance(event, DatagramIgnored):
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


class CoreTimer:
    """The one timer a driver keeps armed for ``core.get_timer()``, on any clock.

    ``schedule(due, callback)`` arms the driver's clock (asyncio's
    ``call_at``, the simulator's scheduler) and may return a function that
    cancels it; a superseded timer that fires anyway is ignored. ``fire(now)``
    is called with ``max(due, clock())``: a clock may run a timer a hair
    early, and a core told a time before its deadline would do nothing and
    ask for the same timer again.
    """

    def __init__(
        self,
        core: SansIOCore,
        *,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], Callable[[], object] | None],
        fire: Callable[[float], None],
    ) -> None:
        self.core = core
        self._clock = clock
        self._schedule = schedule
        self._fire = fire
        #: When the armed timer is due (None: none is armed).
        self.due: float | None = None
        self._cancel: Callable[[], object] | None = None
        self._generation = 0

    def arm(self) -> None:
        """Arm for the core's next deadline, unless already armed for that moment."""
        due = self.core.get_timer()
        if due == self.due:
            return  # most datagrams change nothing
        self.cancel()
        if due is not None:
            self.due = due
            generation = self._generation
            self._cancel = self._schedule(due, lambda: self._fired(generation))

    def cancel(self) -> None:
        self._generation += 1
        self.due = None
        if self._cancel is not None:
            self._cancel()
            self._cancel = None

    def _fired(self, generation: int) -> None:
        if generation != self._generation or self.due is None:
            return  # superseded by a later arm
        due, self.due, self._cancel = self.due, None, None
        self._fire(max(due, self._clock()))
