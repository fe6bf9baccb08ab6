"""Birthday curve: 10,000 simulated punches through a symmetric NAT, measured against the formula.

Prints the wall time of ``birthday_curve`` and, as a baseline measured in the
same run, a pure-Python loop drawing as many random ports as the trials drew
(the NAT's allocations plus the easy side's probes), with the ratio: what the
NAT model costs over the random numbers alone.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from punchlab.sim import NatBox, birthday_curve


def bare_port_draws(count: int, seed: int = 0) -> float:
    """Seconds a plain loop takes to draw ``count`` ports from the NAT's outside range."""
    draw = random.Random(seed).randrange
    started = time.perf_counter()
    for _ in range(count):
        draw(NatBox.FIRST_PORT, 65536)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--open-ports", type=int, default=256)
    parser.add_argument("--probes", type=int, nargs="+", default=[174, 1024])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    curve = birthday_curve(args.open_ports, args.probes, args.trials, args.seed)
    wall = time.perf_counter() - started
    max_probes = max(curve.probes)
    probes_sent = sum(max_probes if hit is None else hit for hit in curve.first_hits)
    ports_drawn = curve.trials * curve.open_ports + probes_sent
    baseline = bare_port_draws(ports_drawn, args.seed)
    print(curve.text())
    print(
        f"simulation: {curve.trials:,} trials in {wall:.2f} s"
        f" ({curve.trials * curve.open_ports:,} mappings, {probes_sent:,} probes)"
    )
    print(f"baseline: {ports_drawn:,} random ports drawn in a plain loop in {baseline:.2f} s")
    print(f"ratio: {wall / baseline:.2f} times the baseline")
    if args.json:
        figures = {
            "trials": curve.trials,
            "open_ports": curve.open_ports,
            "port_range": curve.port_range,
            "seed": curve.seed,
            "probes": list(curve.probes),
            "measured": list(curve.success),
            "formula": list(curve.formula()),
            "probes_sent": probes_sent,
            "ports_drawn": ports_drawn,
            "wall_seconds": wall,
            "baseline_seconds": baseline,
            "ratio": wall / baseline,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
