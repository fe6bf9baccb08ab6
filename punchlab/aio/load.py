"""Many peers at once, for load tests and benchmarks.

Each simulated client is a real :class:`PeerCore` on its own UDP socket,
driven by the same runner as :class:`punchlab.aio.Peer`, so the clients retry
a lost REGISTRATION exactly as real peers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from punchlab.aio.runner import CoreRunner
from punchlab.messages import Address
from punchlab.peer import Failed, PeerConfig, PeerCore, Registered
from punchlab.trace import Trace

__all__ = ["LoadResult", "introduce_many", "register_many"]


@dataclass(frozen=True)
class LoadResult:
    identifiers: list[str]
    failures: list[str]
    seconds: float
    #: Each identifier's registration secret, which start-communication asks for.
    secrets: dict[str, str] = field(default_factory=dict)


async def register_many(
    server_udp: Address, count: int, *, host: str = "127.0.0.1", timeout: float = 30.0
) -> LoadResult:
    """``count`` peers register at the same moment; returns their identifiers."""
    loop = asyncio.get_running_loop()
    done: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    secrets: dict[str, str] = {}
    config = PeerConfig(registration_attempts=10, heartbeat_interval=None)
    runners: list[tuple[CoreRunner, PeerCore]] = []
    trace = Trace()  # shared and unread: tracing is part of the work being measured
    identifiers: list[str] = []
    failures: list[str] = []
    try:  # every socket opened is closed, also when opening the next one fails
        for index in range(count):
            core = PeerCore(server_udp, config)

            def on_event(
                event: object, cause: bytes | None, index: int = index, core: PeerCore = core
            ) -> None:
                if isinstance(event, Registered):
                    if core.secret is not None:
                        secrets[event.peer_id] = core.secret
                    done.put_nowait(("ok", event.peer_id))
                elif isinstance(event, Failed):
                    done.put_nowait(("failed", f"peer {index}: {event.reason}"))

            runner = await CoreRunner.open(
                core, host, 0, actor=f"load{index}", trace=trace, on_event=on_event
            )
            runners.append((runner, core))
        started = loop.time()
        for runner, core in runners:
            core.register(loop.time())
            runner.pump()
        async with asyncio.timeout(timeout):
            while len(identifiers) + len(failures) < count:
                outcome, value = await done.get()
                (identifiers if outcome == "ok" else failures).append(value)
        elapsed = loop.time() - started
    finally:
        for runner, _ in runners:
            runner.close()
    return LoadResult(identifiers, failures, elapsed, secrets)


async def introduce_many(
    url: str,
    pairs: list[tuple[str, str]],
    *,
    concurrency: int = 500,
    secrets: Mapping[str, str] | None = None,
) -> tuple[list[int], float]:
    """POST start-communication for every pair at once; returns the statuses and the time.

    ``secrets`` (from :func:`register_many`) proves each initiator's identity.
    """
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(initiator: str, peer: str) -> int:
            body = {"peerInitiator": initiator, "peer": peer}
            if secrets is not None and initiator in secrets:
                body["secret"] = secrets[initiator]
            async with session.post(f"{url}/start-communication", json=body) as response:
                await response.read()
                return response.status

        started = loop.time()
        statuses = await asyncio.gather(*(one(a, b) for a, b in pairs))
        return list(statuses), loop.time() - started
