"""A discrete-event scheduler on a virtual clock.

Nothing here sleeps: time jumps from one scheduled event to the next, so a
minute of network life takes milliseconds, and the same seed replays the
same run exactly.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["Scheduler"]


class Scheduler:
    """A priority queue of callbacks ordered by virtual time, then by insertion."""

    def __init__(self) -> None:
        self.now = 0.0
        self.processed = 0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0

    def at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at virtual time ``when`` (never before ``now``)."""
        self._sequence += 1
        heapq.heappush(self._queue, (max(when, self.now), self._sequence, callback))

    def after(self, delay: float, callback: Callable[[], None]) -> None:
        self.at(self.now + delay, callback)

    def next_time(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def step(self) -> bool:
        """Run the earliest event; False when nothing is left."""
        if not self._queue:
            return False
        when, _, callback = heapq.heappop(self._queue)
        self.now = when
        self.processed += 1
        callback()
        return True

    def run(
        self,
        until: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        max_events: int | None = None,
    ) -> None:
        """Run events up to virtual time ``until``, until ``stop()`` is true, or out of events.

        The clock ends at ``until`` when given, even if the queue emptied
        earlier, so that "run for ten seconds" means what it says.
        """
        budget = max_events
        while self._queue:
            if stop is not None and stop():
                return
            if until is not None and self._queue[0][0] > until:
                break
            if budget is not None:
                if budget <= 0:
                    return
                budget -= 1
            self.step()
        if until is not None and (stop is None or not stop()):
            self.now = max(self.now, until)
