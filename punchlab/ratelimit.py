"""Token buckets, shared by everything that must not answer faster than a bound."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Bucket", "RateTable", "refill"]


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


def refill(bucket: Bucket, now: float, per_second: float, burst: int) -> bool:
    """Add what ``bucket`` earned since it was last looked at; whether one token is there."""
    if now > bucket.updated:
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
    return bucket.tokens >= 1.0


class RateTable:
    """One bucket per key, at most ``max_keys`` of them (the least recently used go first)."""

    def __init__(self, per_second: float, burst: int, max_keys: int = 10_000) -> None:
        if per_second <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate, burst and table size must be positive")
        self.per_second, self.burst, self.max_keys = per_second, burst, max_keys
        self._buckets: OrderedDict[object, Bucket] = OrderedDict()

    def take(self, key: object, now: float) -> bool:
        """Spend one token of ``key``'s bucket; False when it has none left."""
        return self.take_many(key, 1.0, now)

    def take_many(self, key: object, amount: float, now: float) -> bool:
        """Spend ``amount`` tokens of ``key``'s bucket (bytes, say); False, spending none,
        when it has fewer."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        refill(bucket, now, self.per_second, self.burst)
        if bucket.tokens < amount:
            return False
        bucket.tokens -= amount
        return True

    def __len__(self) -> int:
        return len(self._buckets)
