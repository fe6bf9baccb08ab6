"""Log lines under a flood: a few at once, then a steady trickle that says what it skipped."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LogThrottle"]


@dataclass(slots=True)
class _Budget:
    allowance: float
    updated: float
    suppressed: int = 0


class LogThrottle:
    """A token bucket of log lines per key (a kind of line, a source address).

    ``allow(key, now)`` answers ``None`` when the line should not be written,
    or the number of lines of that key that were skipped since the last one
    written, so the log stays readable and still counts a flood.
    """

    def __init__(self, burst: int = 10, per_second: float = 2.0, max_keys: int = 10_000) -> None:
        if burst < 1 or per_second <= 0 or max_keys < 1:
            raise ValueError("burst, per_second and max_keys must be positive")
        self.burst = burst
        self.per_second = per_second
        self.max_keys = max_keys
        self._budgets: dict[tuple[str, ...], _Budget] = {}

    def allow(self, key: tuple[str, ...], now: float) -> int | None:
        budget = self._budgets.get(key)
        if budget is None:
            if len(self._budgets) >= self.max_keys:
                self._budgets.clear()  # a flood of distinct keys: start counting afresh
            budget = self._budgets[key] = _Budget(float(self.burst), now)
        elapsed = max(0.0, now - budget.updated)
        budget.allowance = min(float(self.burst), budget.allowance + elapsed * self.per_second)
        budget.updated = now
        if budget.allowance < 1.0:
            budget.suppressed += 1
            return None
        budget.allowance -= 1.0
        suppressed, budget.suppressed = budget.suppressed, 0
        return suppressed
