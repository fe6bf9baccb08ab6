"""The traversal ladder in the simulator: what each route costs in time and datagrams.

Five pairs of NATs, one per rung of the ladder (direct, peer-reflexive,
predicted, birthday, relayed), each punched with NAT discovery over N seeds
on a 20 ms internet. For each: the virtual time from A's request to both
connected (median and p90), the datagrams the two peers sent in that window
(HTTP left out), and how many seeds took the expected route. The baseline is
the direct pair, measured in the same run: every route is printed as a
multiple of it.

Also the simulator's own speed: events per second of a whole birthday punch
(``punch("port-restricted-cone", "symmetric", discover=True)``, setup
included) against the bare scheduler running as many empty events.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from punchlab.sim import PunchResult, Scheduler, punch
from punchlab.sim.nat import NatConfig, nat_config
from punchlab.trace import EventKind
from punchlab.traversal import Route

#: One pair of NATs per rung, and the route ``punch(..., discover=True)`` should take.
PAIRS: list[tuple[Route, str | NatConfig, str | NatConfig]] = [
    (Route.DIRECT, "port-restricted-cone", "port-restricted-cone"),
    (Route.PEER_REFLEXIVE, "symmetric", "restricted-cone"),
    (
        Route.PREDICTED,
        "port-restricted-cone",
        nat_config("symmetric", allocation="sequential"),
    ),
    (Route.BIRTHDAY, "port-restricted-cone", "symmetric"),
    (Route.RELAYED, "symmetric", "symmetric"),
]

#: The run whose speed is measured: the birthday rung, the most events per punch.
SPEED_PAIR = ("port-restricted-cone", "symmetric")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def label(kind: str | NatConfig) -> str:
    if isinstance(kind, NatConfig):
        return f"{kind.name} ({kind.allocation} ports)"
    return kind


def datagrams_until_connected(result: PunchResult) -> int:
    """Datagrams A and B sent from A's request until both were connected (no HTTP)."""
    assert result.time_to_connect is not None
    ends = [peer.connected_at for peer in result.network.peers if peer.name in ("A", "B")]
    end = max(t for t in ends if t is not None)
    start = end - result.time_to_connect
    slack = 1e-9  # the start is recomputed from floats
    sent = 0
    for event in result.trace.events:
        if (
            event.kind is EventKind.SENT
            and event.actor in ("A", "B")
            and event.msg_type != "HTTP"
            and start - slack <= event.time <= end + slack
        ):
            # A burst of probes may be folded into one entry that counts them.
            count: int = getattr(event, "count", 1)
            sent += count
    return sent


def measure_route(
    expected: Route, nat_a: str | NatConfig, nat_b: str | NatConfig, seeds: int
) -> dict[str, object]:
    times: list[float] = []
    datagrams: list[int] = []
    probes: list[int] = []
    taken: Counter[str] = Counter()
    for seed in range(seeds):
        result = punch(nat_a, nat_b, seed=seed, discover=True)
        taken[result.route.value if result.route is not None else "none"] += 1
        if not result.connected or result.time_to_connect is None:
            continue
        times.append(result.time_to_connect * 1000)
        datagrams.append(datagrams_until_connected(result))
        probes.append(result.probes)
    figures: dict[str, object] = {
        "nat_a": label(nat_a),
        "nat_b": label(nat_b),
        "expected_route": expected.value,
        "seeds": seeds,
        "connected": len(times),
        "took_expected_route": taken[expected.value],
        "routes_taken": dict(taken),
    }
    if times:
        figures |= {
            "median_ms": statistics.median(times),
            "p90_ms": percentile(times, 0.9),
            "median_datagrams": statistics.median(datagrams),
            "p90_datagrams": percentile([float(d) for d in datagrams], 0.9),
        }
        if expected is Route.BIRTHDAY:
            figures["median_probes"] = statistics.median(probes)
    return figures


def punch_rate(repeats: int, seed: int = 0) -> tuple[int, list[float]]:
    """Events of one whole birthday punch, and its events per second in each repetition."""
    rates = []
    events = 0
    for _ in range(repeats):
        started = time.perf_counter()
        result = punch(*SPEED_PAIR, seed=seed, discover=True)
        wall = time.perf_counter() - started
        events = result.network.scheduler.processed
        rates.append(events / wall)
    return events, rates


def bare_scheduler_rate(events: int, repeats: int) -> list[float]:
    """Empty events per second through the same scheduler, ``events`` at a time."""
    rates = []
    for _ in range(repeats):
        scheduler = Scheduler()
        for index in range(events):
            scheduler.at(index * 1e-6, lambda: None)
        started = time.perf_counter()
        scheduler.run()
        rates.append(events / (time.perf_counter() - started))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per pair (default 20)")
    parser.add_argument(
        "--repeats", type=int, default=10, help="repetitions of the speed measurement"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    routes = {
        expected.value: measure_route(expected, nat_a, nat_b, args.seeds)
        for expected, nat_a, nat_b in PAIRS
    }
    direct = routes[Route.DIRECT.value]
    if "median_ms" not in direct:
        print("the direct pair never connected: no baseline")
        return 1
    for figures in routes.values():
        if "median_ms" in figures:
            figures["time_vs_direct"] = figures["median_ms"] / direct["median_ms"]  # type: ignore[operator]
            figures["datagrams_vs_direct"] = (
                figures["median_datagrams"] / direct["median_datagrams"]  # type: ignore[operator]
            )

    print(
        f"baseline: direct, two port-restricted NATs, {args.seeds} seeds: "
        f"median {direct['median_ms']:.0f} ms, {direct['median_datagrams']:g} datagrams"
    )
    for name, figures in routes.items():
        head = (
            f"{name:>14}: {figures['nat_a']} <-> {figures['nat_b']}, "
            f"{figures['took_expected_route']}/{args.seeds} seeds took this route"
        )
        if figures["took_expected_route"] != args.seeds:
            head += f" (taken: {figures['routes_taken']})"
        if figures["connected"] != args.seeds:
            head += (
                f"; WARNING: only {figures['connected']}/{args.seeds} connected"
                " (TEXT through both ways in time), the others are left out of the figures"
            )
        print(head)
        if "median_ms" not in figures:
            print(f"{'':>16}no seed connected")
            continue
        probes = (
            f", median {figures['median_probes']:g} probes" if "median_probes" in figures else ""
        )
        print(
            f"{'':>16}median {figures['median_ms']:.0f} ms, p90 {figures['p90_ms']:.0f} ms"
            f" = {figures['time_vs_direct']:.2f} x direct; "
            f"median {figures['median_datagrams']:g} datagrams, p90 {figures['p90_datagrams']:g}"
            f" = {figures['datagrams_vs_direct']:.2f} x direct{probes}"
        )

    events, punch_rates = punch_rate(args.repeats)
    bare_rates = bare_scheduler_rate(events, args.repeats)
    punch_median, bare_median = statistics.median(punch_rates), statistics.median(bare_rates)
    speed = {
        "pair": list(SPEED_PAIR),
        "events_per_punch": events,
        "repeats": args.repeats,
        "punch_events_per_second": punch_median,
        "bare_events_per_second": bare_median,
        "ratio": punch_median / bare_median,
    }
    print(
        f"simulator speed: a whole birthday punch, {events:,} events: "
        f"median {punch_median:,.0f} events/s over {args.repeats} runs"
    )
    print(f"baseline: bare scheduler, {events:,} empty events: {bare_median:,.0f} events/s")
    print(f"ratio: {speed['ratio']:.3f} of the bare scheduler's rate")

    if args.json:
        out = {"seeds": args.seeds, "routes": routes, "speed": speed}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    # A seed that did not connect is reported above and in the JSON ("connected"),
    # not a failure of the benchmark: only a pair with no figures at all is.
    return 0 if all("median_ms" in f for f in routes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
