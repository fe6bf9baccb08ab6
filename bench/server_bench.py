"""Server throughput against bare baselines measured in the same run.

- registrations per second against a bare asyncio UDP echo server (the most
  Python asyncio does here with one datagram in, one out);
- HTTP start-communication requests per second against a bare aiohttp handler
  that parses the same JSON and answers the same shape;
- memory per registered peer (tracemalloc, 20,000 registrations in the core);
- 2,000 peers registering at once with their retries, then 500 concurrent
  introductions.

Servers run in a child process, so the load generator does not share their
event loop; where there are two CPUs or more, the load generator and the
servers are pinned to different ones, so that neither the baseline nor
punchlab depends on where the scheduler happened to put them. The echo
server and the load generator read with the same buffer as punchlab's server
(the largest UDP datagram), and the UDP windows alternate echo, punchlab, echo,
punchlab...: the ratio is the median of each pair, so a slow moment of a
shared machine does not fall on one side only. The registration rate limit
is lifted for the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tracemalloc
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from punchlab.aio import RendezvousServer
from punchlab.aio.load import introduce_many, register_many
from punchlab.aio.runner import RECEIVE_BUFFER
from punchlab.messages import Message, MessageType, encode
from punchlab.server import RendezvousCore, ServerLimits

#: A server that throttles nothing: the benchmarks measure its work, not its limits.
UNLIMITED = ServerLimits(
    registrations_per_second=1e12,
    registration_burst=10**12,
    max_registrations_per_ip=10**9,
    introductions_per_second=1e12,
    introduction_burst=10**12,
    pair_introductions_per_second=1e12,
    pair_introduction_burst=10**12,
)
REGISTRATION = encode(Message(MessageType.REGISTRATION, ""))


# -- servers, each in its own process ------------------------------------------------------


#: CPUs this run may use, read before anything is pinned (children inherit pins).
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _pin(cpu: int | None) -> None:
    """Keep this process on one CPU (None: the machine has fewer than two)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


#: Load generator on one CPU, servers on another, when there are two.
GENERATOR_CPU, SERVER_CPU = (CPUS[0], CPUS[1]) if len(CPUS) >= 2 else (None, None)


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        transport.max_size = RECEIVE_BUFFER  # read as punchlab's server does
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def _serve(kind: str, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    if kind == "punchlab":
        server = RendezvousServer("127.0.0.1", 0, 0, limits=UNLIMITED)
        await server.start()
        assert server.udp_address is not None
        pipe.send((server.udp_address, server.url))
    elif kind == "echo":
        transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
        pipe.send((transport.get_extra_info("sockname"), None))
    else:  # bare aiohttp

        async def handler(request: web.Request) -> web.Response:
            body = json.loads(await request.read())
            _ = body["peerInitiator"], body["peer"]
            return web.json_response({"public": "127.0.0.1:5000", "token": "0" * 16})

        app = web.Application()
        app.router.add_post("/start-communication", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        pipe.send((None, f"http://{host}:{port}"))
    await loop.run_in_executor(None, pipe.recv)  # until the parent says stop


def _child(kind: str, cpu: int | None, pipe: Connection) -> None:
    _pin(cpu)
    asyncio.run(_serve(kind, pipe))


class Child:
    def __init__(self, kind: str) -> None:
        self.pipe, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_child, args=(kind, SERVER_CPU, child_end), daemon=True
        )

    def __enter__(self) -> tuple[Any, Any]:
        self.process.start()
        if not self.pipe.poll(30):
            raise RuntimeError("server process did not start")
        return self.pipe.recv()

    def __exit__(self, *exc: object) -> None:
        self.pipe.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# -- load generators -------------------------------------------------------------------------


async def udp_rate(target: tuple[str, int], seconds: float, clients: int = 64) -> float:
    """Closed loop: each client sends the next REGISTRATION when the answer arrives."""
    loop = asyncio.get_running_loop()
    answered = 0
    deadline = loop.time() + seconds

    class Client(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            transport.max_size = RECEIVE_BUFFER  # read as the servers do
            transport.sendto(REGISTRATION, target)
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            nonlocal answered
            answered += 1
            if loop.time() < deadline:
                self.transport.sendto(REGISTRATION, target)

        def error_received(self, exc: Exception) -> None:
            pass

    transports = []
    for _ in range(clients):
        transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
        transports.append(transport)
    started = loop.time()
    await asyncio.sleep(seconds)  # the measurement window itself
    rate = answered / (loop.time() - started)
    for transport in transports:
        transport.close()
    return rate


async def http_rate(
    url: str, pair: tuple[str, str, str], seconds: float, clients: int = 32
) -> float:
    """start-communication answers per second; ``pair`` is (initiator, peer, initiator's secret)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    count = 0
    body = {"peerInitiator": pair[0], "peer": pair[1], "secret": pair[2]}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def worker() -> None:
            nonlocal count
            while loop.time() < deadline:
                async with session.post(f"{url}/start-communication", json=body) as response:
                    await response.read()
                    if response.status == 200:
                        count += 1

        started = loop.time()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return count / (loop.time() - started)


async def two_ids(udp: tuple[str, int]) -> tuple[str, str, str]:
    """Two registered identifiers and the first one's secret."""
    result = await register_many(udp, 2)
    a, b = result.identifiers
    return a, b, result.secrets[a]


# -- measurements ----------------------------------------------------------------------------


def memory_per_peer(count: int = 20_000) -> float:
    core = RendezvousCore(limits=UNLIMITED)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for index in range(count):
        core.receive_datagram(
            REGISTRATION, (f"10.{index >> 16}.{index >> 8 & 255}.{index & 255}", 5000), 0.0
        )
        core.datagrams_to_send(0.0)
        while core.next_event() is not None:
            pass
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(core) == count
    return grown / count


async def alternate(
    baseline: Callable[[], Awaitable[float]], mine: Callable[[], Awaitable[float]], rounds: int
) -> tuple[float, float, float]:
    """Baseline, punchlab, baseline, punchlab...: medians of each and of the pairs' ratios."""
    base_rates: list[float] = []
    my_rates: list[float] = []
    for _ in range(rounds):
        base_rates.append(await baseline())
        my_rates.append(await mine())
    ratio = statistics.median(m / b for m, b in zip(my_rates, base_rates, strict=True))
    return statistics.median(base_rates), statistics.median(my_rates), ratio


async def measure(
    seconds: float, rounds: int, load_peers: int, introductions: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    with Child("echo") as (echo_udp, _), Child("punchlab") as (udp, url):
        (
            figures["echo_datagrams_per_s"],
            figures["registrations_per_s"],
            figures["registrations_vs_echo"],
        ) = await alternate(
            lambda: udp_rate(tuple(echo_udp), seconds),
            lambda: udp_rate(tuple(udp), seconds),
            rounds,
        )
        pair = await two_ids(tuple(udp))
        with Child("aiohttp") as (_, bare_url):
            (
                figures["bare_aiohttp_per_s"],
                figures["start_communication_per_s"],
                figures["start_communication_vs_bare_aiohttp"],
            ) = await alternate(
                lambda: http_rate(bare_url, ("a", "b", ""), seconds),
                lambda: http_rate(url, pair, seconds),
                rounds,
            )
    with Child("punchlab") as (udp, url):
        result = await register_many(tuple(udp), load_peers, timeout=120)
        figures["load_peers"] = load_peers
        figures["load_registered"] = len(set(result.identifiers))
        figures["load_failures"] = len(result.failures)
        figures["load_seconds"] = result.seconds
        ids = result.identifiers
        pairs = list(zip(ids[0::2], ids[1::2], strict=False))[:introductions]
        statuses, took = await introduce_many(
            url, pairs, concurrency=introductions, secrets=result.secrets
        )
        figures["introductions"] = len(pairs)
        figures["introductions_ok"] = statuses.count(200)
        figures["introductions_seconds"] = took
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each rate window")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="windows for each server, alternating with its baseline",
    )
    parser.add_argument("--peers", type=int, default=2000, help="peers registering at once")
    parser.add_argument("--introductions", type=int, default=500)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    _pin(GENERATOR_CPU)
    figures = asyncio.run(measure(args.seconds, args.rounds, args.peers, args.introductions))
    figures["memory_bytes_per_peer"] = memory_per_peer()
    print(
        f"baseline: bare asyncio UDP echo        {figures['echo_datagrams_per_s']:10,.0f} "
        "datagrams/s"
    )
    print(
        f"punchlab registrations                 {figures['registrations_per_s']:10,.0f} /s"
        f" = {figures['registrations_vs_echo']:.2f} x echo"
    )
    print(
        f"baseline: bare aiohttp JSON handler    {figures['bare_aiohttp_per_s']:10,.0f} requests/s"
    )
    print(
        f"punchlab start-communication           {figures['start_communication_per_s']:10,.0f} /s"
        f" = {figures['start_communication_vs_bare_aiohttp']:.2f} x bare aiohttp"
    )
    print(f"memory per registered peer             {figures['memory_bytes_per_peer']:10,.0f} bytes")
    print(
        f"{args.peers} peers at once: {figures['load_registered']:.0f} registered "
        f"({figures['load_failures']:.0f} failed) in {figures['load_seconds']:.2f} s; "
        f"{figures['introductions_ok']:.0f}/{figures['introductions']:.0f} introductions "
        f"in {figures['introductions_seconds']:.2f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        figures["load_registered"] == args.peers
        and figures["introductions_ok"] == figures["introductions"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
