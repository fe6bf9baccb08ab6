"""Time to connect through real kernel NATs (the netlab), median of N runs.

With --delay (netem on every public link, both ways) the figure is also given
as a multiple of the round trip between the two NATs, the baseline here: two
public links each way, so RTT = 4 x delay. Needs root, iproute2 and nftables;
delay needs a kernel with the netem qdisc.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from punchlab.netlab import Lab, LabUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=20.0, metavar="MS")
    parser.add_argument("--nat", default="port-restricted-cone")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    delay = args.delay
    times: list[float] = []
    try:
        for number in range(1, args.runs + 1):
            try:
                with Lab(args.nat, args.nat, delay_ms=delay) as lab:
                    result = lab.punch()
            except LabUnavailable as exc:
                if delay and "netem" in str(exc):
                    print(f"note: {exc}; measuring without delay instead")
                    delay = 0.0
                    with Lab(args.nat, args.nat) as lab:
                        result = lab.punch()
                else:
                    raise
            if result.time_to_connect is None:
                print(f"run {number}: {result.summary()}")
                continue
            times.append(result.time_to_connect)
            print(f"run {number}/{args.runs}: {result.time_to_connect * 1000:.1f} ms", flush=True)
    except LabUnavailable as exc:
        print(f"netlab benchmark skipped: {exc}")
        return 0
    if not times:
        print("no run connected")
        return 1
    median = statistics.median(times)
    figures: dict[str, object] = {"runs": len(times), "delay_ms": delay, "median_ms": median * 1000}
    line = f"{args.nat} pair, {len(times)} runs, delay {delay} ms: median {median * 1000:.1f} ms"
    if delay:
        rtt = 4 * delay / 1000
        figures["median_in_rtt"] = median / rtt
        line += f" = {median / rtt:.2f} x the {rtt * 1000:.0f} ms RTT between the NATs"
    print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
