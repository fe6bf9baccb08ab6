"""Time from connect() to both peers connected, on loopback and in the simulator.

Prints the median and p95 of N tries of punchlab's schedule, a few tries of
the original algorithm (3 s HELLO ticker) for comparison, and both as a
multiple of a baseline measured in the same run: the round-trip time of one
datagram between two asyncio UDP sockets on loopback. In the simulator, two
peers behind port-restricted NATs on a 20 ms (+/- 2 ms jitter) internet, one
seed per run, as a multiple of the round trip between the two peers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from punchlab.aio import Peer, RendezvousServer
from punchlab.peer import PeerConfig
from punchlab.sim import punch


class _Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


class _Pinger(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(data)


async def loopback_rtt(samples: int = 200) -> float:
    """Median round trip of a datagram through the event loop, in seconds."""
    loop = asyncio.get_running_loop()
    echo_transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    target = echo_transport.get_extra_info("sockname")
    ping_transport, pinger = await loop.create_datagram_endpoint(
        _Pinger, local_addr=("127.0.0.1", 0)
    )
    times = []
    try:
        for _ in range(samples):
            pinger.reply = loop.create_future()
            started = time.perf_counter()
            ping_transport.sendto(b'{"type":"HEART-BEAT","payload":"..."}', target)
            async with asyncio.timeout(2):
                await pinger.reply
            times.append(time.perf_counter() - started)
    finally:
        echo_transport.close()
        ping_transport.close()
    return statistics.median(times)


async def one_connect(server: RendezvousServer, config: PeerConfig) -> float:
    async with (
        Peer(server.url, host="127.0.0.1", config=config, name="A") as a,
        Peer(server.url, host="127.0.0.1", config=config, name="B") as b,
    ):
        await a.register(timeout=5)
        peer_id = await b.register(timeout=5)
        started = time.perf_counter()
        await asyncio.gather(a.connect(peer_id, timeout=15), b.wait_connected(timeout=15))
        return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(tries: int, original_tries: int) -> dict[str, object]:
    rtt = await loopback_rtt()
    async with RendezvousServer("127.0.0.1", 0, 0) as server:
        ours = [await one_connect(server, PeerConfig()) for _ in range(tries)]
        original = [
            await one_connect(server, PeerConfig.seed_compatible()) for _ in range(original_tries)
        ]
    result: dict[str, object] = {
        "baseline_loopback_rtt_ms": rtt * 1000,
        "punchlab_tries": tries,
        "punchlab_median_ms": statistics.median(ours) * 1000,
        "punchlab_p95_ms": percentile(ours, 0.95) * 1000,
        "punchlab_median_in_rtt": statistics.median(ours) / rtt,
    }
    if original:
        result |= {
            "original_tries": original_tries,
            "original_median_ms": statistics.median(original) * 1000,
            "original_over_punchlab": statistics.median(original) / statistics.median(ours),
        }
    return result


def simulated(runs: int, nat: str = "port-restricted-cone") -> dict[str, object]:
    """Virtual time from A's request to both connected, over ``runs`` seeds."""
    times: list[float] = []
    rtt = 0.0
    for seed in range(runs):
        result = punch(nat, nat, seed=seed, latency=0.02, jitter=0.002, texts=1)
        if not result.connected or result.time_to_connect is None:
            raise RuntimeError(f"seed {seed}: the simulated pair did not connect")
        times.append(result.time_to_connect)
        rtt = 2 * result.network.base_latency("A", "B")
    return {
        "sim_runs": runs,
        "sim_rtt_ms": rtt * 1000,
        "sim_median_ms": statistics.median(times) * 1000,
        "sim_p95_ms": percentile(times, 0.95) * 1000,
        "sim_median_in_rtt": statistics.median(times) / rtt,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20, help="punchlab connects (default 20)")
    parser.add_argument(
        "--original-tries", type=int, default=3, help="original connects (3 s each)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--sim-runs", type=int, default=20, help="simulated connects (seeds)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.tries, args.original_tries))
    if args.sim_runs:
        result |= simulated(args.sim_runs)
    print(f"loopback datagram round trip (baseline): {result['baseline_loopback_rtt_ms']:.3f} ms")
    print(
        f"punchlab connect, {args.tries} tries: median {result['punchlab_median_ms']:.2f} ms, "
        f"p95 {result['punchlab_p95_ms']:.2f} ms = {result['punchlab_median_in_rtt']:.1f} x RTT"
    )
    if "original_median_ms" in result:
        print(
            f"original algorithm, {args.original_tries} tries: "
            f"median {result['original_median_ms']:.0f} ms "
            f"= {result['original_over_punchlab']:.0f} x punchlab"
        )
    if args.sim_runs:
        print(
            f"simulator, {args.sim_runs} seeds, port-restricted NATs: "
            f"median {result['sim_median_ms']:.1f} ms, p95 {result['sim_p95_ms']:.1f} ms "
            f"= {result['sim_median_in_rtt']:.2f} x the {result['sim_rtt_ms']:.0f} ms RTT "
            "between the peers"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
