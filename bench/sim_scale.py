"""Simulator scale: 1,000 pairs (2,000 peers, 2,000 NATs, one server) punching at once.

Prints wall time and simulated events per second, and the ratio against a
baseline measured in the same run: the bare scheduler running empty events,
the most a pure-Python discrete-event loop does on this machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from punchlab.sim import Scheduler, scale


def bare_scheduler_rate(events: int = 200_000) -> float:
    """Empty events per second through the same heap-based scheduler."""
    scheduler = Scheduler()
    for index in range(events):
        scheduler.at(index * 1e-6, lambda: None)
    started = time.perf_counter()
    scheduler.run()
    return events / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    baseline = bare_scheduler_rate()
    result = scale(args.pairs, seed=args.seed)
    print(f"baseline: bare scheduler {baseline:,.0f} empty events/s")
    print(f"simulation: {result.summary()}")
    print(f"ratio: {result.events_per_second / baseline:.3f} of the bare scheduler's rate")
    if args.json:
        figures = {
            "pairs": result.pairs,
            "connected_pairs": result.connected_pairs,
            "wall_seconds": result.wall_seconds,
            "virtual_seconds": result.virtual_seconds,
            "events": result.events,
            "events_per_second": result.events_per_second,
            "baseline_events_per_second": baseline,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result.connected_pairs == result.pairs else 1


if __name__ == "__main__":
    sys.exit(main())
