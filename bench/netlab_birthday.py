"""Birthday-paradox punching through a real symmetric NAT, against 1 - (1 - k/N)^n.

The baseline is the formula itself, for the same k and N = 64512 (Linux's
masquerade random draws outside ports from 1024-65535): each probe count gets
the measured share of runs that hit by then, the formula, and the difference in
binomial standard errors of the formula (|z| above 3 would say the kernel's
ports are not the uniform draw the formula assumes). Also the median first hit
against the formula's median, ln(1/2) / ln(1 - k/N). Needs root, iproute2,
nftables and conntrack.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from punchlab.netlab import LabUnavailable
from punchlab.netlab.birthday import DEFAULT_RATE, PORTS, BirthdayRun, measure_birthday


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--open-ports", type=int, default=256, metavar="K")
    parser.add_argument("--probes", type=int, nargs="+", default=[64, 174, 1024])
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="probes/s, 0: no pacing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    def progress(run: BirthdayRun) -> None:
        print(f"[{run.number}/{args.runs}] {run.summary()}", flush=True)

    started = time.monotonic()
    try:
        result = measure_birthday(
            args.runs, args.probes, args.open_ports, args.rate, args.seed, progress
        )
    except LabUnavailable as exc:
        print(f"netlab birthday benchmark skipped: {exc}")
        return 0
    seconds = time.monotonic() - started
    print(result.text())
    k, runs = args.open_ports, len(result.runs)
    figures: dict[str, object] = {
        "runs": runs,
        "open_ports": k,
        "port_range_size": PORTS,
        "rate_per_s": args.rate,
        "seed": args.seed,
        "seconds": seconds,
        "first_hits": result.first_hits,
        # A hit that was no probe through the outside port mapped to its socket: 0.
        "unexplained_hits": sum(
            not run.hit_is_real(hit) for run in result.runs for hit in run.hits
        ),
        "strays": sum(run.strays for run in result.runs),
    }
    for n, _, measured, predicted in result.rows():
        error = math.sqrt(predicted * (1 - predicted) / runs) if 0 < predicted < 1 else 0.0
        z = (measured - predicted) / error if error else 0.0
        figures[f"measured_{n}"] = measured
        figures[f"formula_{n}"] = predicted
        figures[f"z_{n}"] = z
        print(f"n = {n}: measured {measured:.3f}, formula {predicted:.3f}, z = {z:+.2f}")
    hits = [h for h in result.first_hits if h is not None]
    formula_median = math.log(0.5) / math.log(1 - k / PORTS)
    figures["formula_median_first_hit"] = formula_median
    # The median over all runs (a miss counts as beyond the cap) when at least half hit.
    if len(hits) * 2 >= runs:
        ordered = sorted(hits) + [math.inf] * (runs - len(hits))
        median = statistics.median_low(ordered)
        figures["median_first_hit"] = median
        figures["median_vs_formula"] = median / formula_median
        print(
            f"median first hit: probe {median} = {median / formula_median:.2f} x the "
            f"formula's {formula_median:.0f}"
        )
    print(f"{runs} runs in {seconds:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
