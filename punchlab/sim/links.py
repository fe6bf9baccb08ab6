"""What a network segment does to a datagram: delay, jitter, loss, duplicates, reordering."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["LinkConfig"]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """One segment's behaviour; all randomness comes from the network's seeded generator.

    ``reorder`` is the chance that a datagram is held back by an extra
    ``reorder_delay`` so that later ones overtake it.
    """

    latency: float = 0.001
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float | None = None

    def __post_init__(self) -> None:
        delays = (self.latency, self.jitter, self.reorder_delay or 0.0)
        if not all(0.0 <= delay < float("inf") for delay in delays):
            raise ValueError("latency, jitter and reorder_delay must be finite and not negative")
        for name in ("loss", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1")

    def delays(self, rng: random.Random) -> list[float]:
        """Delays of the copies that arrive: none if lost, two if duplicated."""
        if self.loss and rng.random() < self.loss:
            return []
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        out = []
        for _ in range(copies):
            delay = self.latency
            if self.jitter:
                delay += rng.uniform(0.0, self.jitter)
            if self.reorder and rng.random() < self.reorder:
                delay += self.reorder_delay if self.reorder_delay is not None else 2 * self.latency
            out.append(delay)
        return out
