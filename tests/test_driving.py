"""CoreTimer: the one rule both drivers use to keep and fire a core's timer."""

from __future__ import annotations

from collections.abc import Callable

from punchlab.driving import CoreTimer


class Core:
    def __init__(self) -> None:
        self.deadline: float | None = None

    def receive_datagram(self, data: bytes, address: object, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        return []

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> None:
        return None


def make(clock: list[float]) -> tuple[Core, CoreTimer, list[Callable[[], None]], list[float]]:
    core = Core()
    armed: list[Callable[[], None]] = []
    fired: list[float] = []
    timer = CoreTimer(
        core, clock=lambda: clock[0], schedule=lambda due, cb: armed.append(cb), fire=fired.append
    )
    return core, timer, armed, fired


def test_a_new_deadline_supersedes_the_old_one_which_then_does_nothing() -> None:
    clock = [0.0]
    core, timer, armed, fired = make(clock)
    core.deadline = 5.0
    timer.arm()
    core.deadline = 2.0
    timer.arm()
    assert len(armed) == 2 and timer.due == 2.0
    clock[0] = 5.0
    armed[0]()  # the superseded one
    assert fired == []
    armed[1]()
    assert fired == [5.0]  # late: told the real time


def test_the_same_deadline_arms_once_and_an_early_fire_is_told_the_deadline() -> None:
    clock = [0.0]
    core, timer, armed, fired = make(clock)
    core.deadline = 3.0
    timer.arm()
    timer.arm()
    assert len(armed) == 1
    clock[0] = 2.999
    armed[0]()
    assert fired == [3.0]


def test_a_cancelled_timer_never_fires() -> None:
    clock = [0.0]
    core, timer, armed, fired = make(clock)
    core.deadline = 1.0
    timer.arm()
    timer.cancel()
    clock[0] = 2.0
    armed[0]()
    assert fired == [] and timer.due is None
