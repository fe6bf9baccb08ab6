"""Acknowledged chat in the simulator: what acks buy at 30% loss, and what they cost.

A sends 100 lines to B, one every 50 ms, over a 20 ms internet that loses
each datagram with probability ``--loss`` (the punch happens first on a clean
link: the chat is the experiment). Each seed runs twice: plain TEXT as the Go
program sends it (the baseline, measured in the same run) and punchlab's
acknowledged TEXT (punchlab.reliable). For each: lines B's reader got (and
whether in order and once), datagrams on the wire (TEXT, resent TEXT,
TEXT-ACK) per line sent, and each delivered line's latency from A's send to
B's reader (median and p95, over all seeds' lines). Ratios are against the
baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from punchlab.sim.chat import ChatRun, chat


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def figures(runs: list[ChatRun], lines: int) -> dict[str, float]:
    latencies = [latency for run in runs for latency in run.latencies]
    return {
        "arrived_mean": statistics.fmean(run.arrived for run in runs),
        "arrived_min": min(run.arrived for run in runs),
        "in_order_once": sum(run.exactly_once_in_order for run in runs),
        "datagrams_per_line": statistics.fmean(run.datagrams for run in runs) / lines,
        "text_per_line": statistics.fmean(run.text_datagrams for run in runs) / lines,
        "acks_per_line": statistics.fmean(run.ack_datagrams for run in runs) / lines,
        "latency_median_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * percentile(latencies, 0.95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds (default 20)")
    parser.add_argument("--lines", type=int, default=100, help="lines per run (default 100)")
    parser.add_argument("--loss", type=float, default=0.3, help="loss per datagram (0.3)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    out: dict[str, float] = {"seeds": args.seeds, "lines": args.lines, "loss": args.loss}
    print(f"{args.lines} lines at {args.loss:.0%} loss, {args.seeds} seeds, 20 ms one way")
    print(f"{'':14}{'arrived':>9}{'min':>5}{'in order+once':>15}{'dgrams/line':>13}"
          f"{'TEXT/line':>11}{'ACK/line':>10}{'median ms':>11}{'p95 ms':>9}")  # fmt: skip
    for name, reliable in (("baseline", False), ("acked", True)):
        runs = [
            chat(args.lines, seed=s, loss=args.loss, reliable=reliable) for s in range(args.seeds)
        ]
        found = figures(runs, args.lines)
        print(
            f"{'no acks' if not reliable else 'with acks':14}{found['arrived_mean']:9.1f}"
            f"{found['arrived_min']:5.0f}{found['in_order_once']:>10.0f}/{args.seeds:<4}"
            f"{found['datagrams_per_line']:13.2f}{found['text_per_line']:11.2f}"
            f"{found['acks_per_line']:10.2f}{found['latency_median_ms']:11.0f}"
            f"{found['latency_p95_ms']:9.0f}"
        )
        out.update({f"{name}_{key}": value for key, value in found.items()})
    for key in ("arrived_mean", "datagrams_per_line", "latency_median_ms", "latency_p95_ms"):
        out[f"ratio_{key}"] = out[f"acked_{key}"] / out[f"baseline_{key}"]
    print(
        f"acks: {out['ratio_arrived_mean']:.2f}x the lines, {out['ratio_datagrams_per_line']:.2f}x "
        f"the datagrams, {out['ratio_latency_median_ms']:.1f}x the median latency, "
        f"{out['ratio_latency_p95_ms']:.1f}x the p95"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
