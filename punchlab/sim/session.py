"""Drive a simulated network from asyncio, so notebooks and widgets can ``await`` it.

Two ways to let virtual time pass:

- **step mode** (``speed=None``, the default): time moves only while someone
  awaits something (a registration, a connection, a line of chat), as fast as
  the machine allows. Runs are deterministic: the same clicks give the same
  trace, which is what the notebooks' stored outputs need.
- **paced mode** (``speed=1.0`` for real time, ``0.1`` for slow motion): a task
  on the running loop advances virtual time with the wall clock, so heart-beats
  flow and a live diagram fills up while you watch.

:class:`AsyncSimPeer` gives a simulated peer the same ``async`` API as
:class:`punchlab.aio.Peer`, so a widget does not care which one it drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from punchlab.errors import ConnectFailed, RegistrationFailed, ServerError, UnknownPeer
from punchlab.messages import Address
from punchlab.peer import PeerState
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer
from punchlab.trace import Trace

__all__ = ["AsyncSimPeer", "SimSession"]

log = logging.getLogger(__name__)

#: In step mode, how many simulator events run before yielding to the loop
#: (so widgets stay responsive during a long run).
EVENTS_PER_SLICE = 2000
#: In step mode, how far virtual time runs on after an action has finished,
#: so the other side catches up (a line arrives, the passive peer connects).
DELIVERY_WINDOW = 1.0


class SimSession:
    """One simulated network, driven on the running asyncio loop."""

    def __init__(self, network: Network, *, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (1.0 = real time) or None (step mode)")
        self.network = network
        self.speed = speed
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error_reported = False  # a waiter was told why the pacer died

    @property
    def now(self) -> float:
        return self.network.now

    def peer(self, sim_peer: SimPeer) -> AsyncSimPeer:
        return AsyncSimPeer(self, sim_peer)

    # -- paced mode ------------------------------------------------------------------------

    def start(self) -> None:
        """Start advancing virtual time with the wall clock (paced mode only)."""
        if self.speed is None:
            raise RuntimeError("a step-mode session moves only when awaited; give a speed")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pace())
            # Whoever waits must wake when the pacer dies, to hear why.
            self._task.add_done_callback(lambda _: self._changed.set())

    def _raise_if_pacer_died(self) -> None:
        """An error inside the simulation stops the pacer; waiters get it, not a timeout."""
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                self._error_reported = True
                raise RuntimeError(f"the simulation stopped: {error!r}") from error

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])  # its end, however it came, without raising it here
        if not task.cancelled() and task.exception() is not None and not self._error_reported:
            log.error("the paced simulation had stopped", exc_info=task.exception())

    async def _pace(self) -> None:
        assert self.speed is not None
        loop = asyncio.get_running_loop()
        real_start, virtual_start = loop.time(), self.network.now
        while True:
            target = virtual_start + (loop.time() - real_start) * self.speed
            self.network.run(target)
            self._changed.set()
            upcoming = self.network.scheduler.next_time()
            wait = 0.25 if upcoming is None else (upcoming - target) / self.speed
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, 0.0), 0.25)):
                    await self._wake.wait()

    def poke(self) -> None:
        """New work was scheduled: let the pacer look at it now."""
        self._wake.set()

    # -- waiting -----------------------------------------------------------------------------

    async def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Let up to ``timeout`` virtual seconds pass until ``condition()``; say whether it held."""
        if self.speed is None:
            deadline = self.network.now + timeout
            while not condition() and self.network.now < deadline:
                self.network.run(deadline, stop=condition, max_events=EVENTS_PER_SLICE)
                await asyncio.sleep(0)
            return condition()
        self.poke()
        try:
            async with asyncio.timeout(timeout / self.speed + 1.0):
                while not condition():
                    self._raise_if_pacer_died()
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return condition()
        return True

    async def advance(self, duration: float) -> None:
        """Let ``duration`` virtual seconds pass."""
        end = self.network.now + duration
        await self.run_until(lambda: self.network.now >= end, duration + 1e-9)


class AsyncSimPeer:
    """A simulated peer with :class:`punchlab.aio.Peer`'s ``async`` methods and errors."""

    def __init__(self, session: SimSession, sim_peer: SimPeer) -> None:
        self.session = session
        self.sim = sim_peer
        self._read = 0

    # what a widget reads
    @property
    def name(self) -> str:
        return self.sim.name

    @property
    def state(self) -> PeerState:
        return self.sim.state

    @property
    def id(self) -> str | None:
        return self.sim.id

    @property
    def peer_address(self) -> Address | None:
        return self.sim.peer_address

    @property
    def local_address(self) -> Address:
        return self.sim.address

    @property
    def trace(self) -> Trace:
        return self.sim.network.trace

    @property
    def server_url(self) -> str:
        return f"simulated server at {self.sim.server.address[0]}"

    def add_listener(self, callback: Callable[[Any], None]) -> None:
        self.sim.listeners.append(callback)

    async def register(self, timeout: float | None = None) -> str:
        self.sim.register()
        self.session.poke()
        await self.session.run_until(
            lambda: self.state is not PeerState.REGISTERING, timeout or 60.0
        )
        if self.state is not PeerState.REGISTERED or self.id is None:
            reason = self.sim.errors[-1] if self.sim.errors else "no answer from the server"
            raise RegistrationFailed(reason)
        return self.id

    async def connect(self, peer_id: str, timeout: float | None = None) -> None:
        if not isinstance(peer_id, str) or not peer_id.strip():
            raise ValueError("peer_id must be a non-empty identifier")
        refusals_before = len(self.sim.refusals)
        self.sim.connect(peer_id.strip())
        self.session.poke()

        def refused() -> bool:
            return len(self.sim.refusals) > refusals_before

        await self.session.run_until(
            lambda: refused() or self.state in (PeerState.CONNECTED, PeerState.FAILED),
            (timeout or 10.0) + 1.0,
        )
        if refused():
            refusal = self.sim.refusals[-1]
            if refusal.status == 404:  # the status, as the asyncio peer reads it
                raise UnknownPeer(refusal.reason)
            raise ServerError(f"the server answered {refusal.status}: {refusal.reason}")
        if self.session.speed is None:
            # Connected or not, the other side is still punching: let it get
            # there too, or (in step mode) its panel says "punching…" forever.
            await self.session.advance(DELIVERY_WINDOW)
        if self.state is not PeerState.CONNECTED:
            raise ConnectFailed(self._failure(f"not connected (state {self.state.value})"))

    async def wait_connected(self, timeout: float | None = None) -> None:
        ok = await self.session.run_until(
            lambda: self.state in (PeerState.CONNECTED, PeerState.FAILED), timeout or 10.0
        )
        if not ok or self.state is not PeerState.CONNECTED:
            raise ConnectFailed(self._failure(f"not connected after {timeout} s"))

    async def send_text(self, text: str) -> None:
        self.sim.send_text(text)
        self.session.poke()
        if self.session.speed is None:
            await self.session.advance(DELIVERY_WINDOW)

    async def receive_text(self, timeout: float | None = None) -> str:
        if not await self.session.run_until(
            lambda: len(self.sim.texts) > self._read, timeout or 10.0
        ):
            raise TimeoutError("no text arrived")
        self._read += 1
        return self.sim.texts[self._read - 1]

    async def close(self) -> None:
        if self.state is not PeerState.CLOSED:
            self.sim.close()

    def _failure(self, default: str) -> str:
        return self.sim.errors[-1] if self.sim.errors else default

    def __repr__(self) -> str:
        return f"<AsyncSimPeer {self.name} {self.state.value}>"
