"""The simulator's virtual clock (Scheduler) and link behaviour (LinkConfig)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from punchlab.sim.engine import Scheduler
from punchlab.sim.links import LinkConfig

# -- Scheduler -----------------------------------------------------------------------------


def recorder(scheduler: Scheduler, log: list[tuple[str, float]], label: str) -> Callable[[], None]:
    return lambda: log.append((label, scheduler.now))


def test_events_run_in_time_order() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    scheduler.at(3.0, recorder(scheduler, log, "c"))
    scheduler.at(1.0, recorder(scheduler, log, "a"))
    scheduler.at(2.5, recorder(scheduler, log, "b"))
    scheduler.run()
    assert log == [("a", 1.0), ("b", 2.5), ("c", 3.0)]
    assert scheduler.now == 3.0


def test_ties_run_in_insertion_order() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    for label in "edcba":
        scheduler.at(1.0, recorder(scheduler, log, label))
    scheduler.at(0.5, recorder(scheduler, log, "first"))
    scheduler.run()
    assert [label for label, _ in log] == ["first", "e", "d", "c", "b", "a"]


def test_after_is_relative_to_now_and_callbacks_can_schedule_more() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []

    def first() -> None:
        log.append(("first", scheduler.now))
        scheduler.after(0.25, recorder(scheduler, log, "second"))

    scheduler.after(1.0, first)
    scheduler.run()
    assert log == [("first", 1.0), ("second", 1.25)]


def test_at_in_the_past_runs_at_now() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    scheduler.run(until=5.0)
    assert scheduler.now == 5.0
    scheduler.at(2.0, recorder(scheduler, log, "late"))
    assert scheduler.next_time() == 5.0
    scheduler.at(5.5, recorder(scheduler, log, "later"))
    scheduler.run()
    assert log == [("late", 5.0), ("later", 5.5)]


def test_clock_never_goes_backwards() -> None:
    scheduler = Scheduler()
    times: list[float] = []

    def go_back() -> None:
        times.append(scheduler.now)
        scheduler.at(scheduler.now - 10.0, lambda: times.append(scheduler.now))

    scheduler.at(3.0, go_back)
    scheduler.run()
    assert times == [3.0, 3.0]


def test_run_until_advances_the_clock_even_when_the_queue_empties() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    scheduler.at(1.0, recorder(scheduler, log, "a"))
    scheduler.run(until=10.0)
    assert log == [("a", 1.0)]
    assert scheduler.now == 10.0
    # With nothing queued at all.
    scheduler.run(until=12.5)
    assert scheduler.now == 12.5


def test_run_until_leaves_later_events_queued() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    scheduler.at(1.0, recorder(scheduler, log, "a"))
    scheduler.at(2.0, recorder(scheduler, log, "at the edge"))
    scheduler.at(7.0, recorder(scheduler, log, "b"))
    scheduler.run(until=2.0)
    assert log == [("a", 1.0), ("at the edge", 2.0)]
    assert scheduler.now == 2.0
    assert scheduler.next_time() == 7.0
    scheduler.run(until=5.0)
    assert scheduler.now == 5.0
    assert len(log) == 2
    scheduler.run()
    assert log[-1] == ("b", 7.0)
    assert scheduler.next_time() is None


def test_run_until_in_the_past_does_not_rewind() -> None:
    scheduler = Scheduler()
    scheduler.run(until=4.0)
    scheduler.run(until=1.0)
    assert scheduler.now == 4.0


def test_run_stops_as_soon_as_stop_is_true() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    for i in range(1, 6):
        scheduler.at(float(i), recorder(scheduler, log, str(i)))
    scheduler.run(until=100.0, stop=lambda: len(log) >= 2)
    assert [label for label, _ in log] == ["1", "2"]
    # Stopped early: the clock stays where the condition became true, not at ``until``.
    assert scheduler.now == 2.0
    assert scheduler.next_time() == 3.0


def test_run_with_stop_already_true_runs_nothing() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    scheduler.at(1.0, recorder(scheduler, log, "a"))
    scheduler.run(until=10.0, stop=lambda: True)
    assert log == []
    assert scheduler.processed == 0
    assert scheduler.now == 0.0


def test_run_with_stop_never_true_still_reaches_until() -> None:
    scheduler = Scheduler()
    scheduler.at(1.0, lambda: None)
    scheduler.run(until=3.0, stop=lambda: False)
    assert scheduler.now == 3.0


def test_max_events_bounds_the_work() -> None:
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []

    def forever() -> None:
        log.append(("tick", scheduler.now))
        scheduler.after(1.0, forever)

    scheduler.at(0.0, forever)
    scheduler.run(max_events=5)
    assert len(log) == 5
    assert scheduler.processed == 5
    assert scheduler.now == 4.0
    scheduler.run(until=100.0, max_events=3)
    assert len(log) == 8
    assert scheduler.processed == 8


def test_processed_counts_every_event_run() -> None:
    scheduler = Scheduler()
    assert scheduler.processed == 0
    for i in range(4):
        scheduler.at(float(i), lambda: None)
    assert scheduler.step()
    assert scheduler.processed == 1
    scheduler.run(until=1.5)
    assert scheduler.processed == 2
    scheduler.run()
    assert scheduler.processed == 4
    assert not scheduler.step()
    assert scheduler.processed == 4


# -- LinkConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": -0.001},
        {"jitter": -1.0},
        {"loss": 1.01},
        {"loss": -0.1},
        {"duplicate": 2.0},
        {"duplicate": -0.5},
        {"reorder": 1.5},
        {"reorder": -0.01},
    ],
)
def test_invalid_link_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LinkConfig(**kwargs)


def test_boundary_link_configs_are_accepted_and_mean_what_they_say() -> None:
    rng = random.Random(0)
    perfect = LinkConfig(latency=0.0, jitter=0.0, loss=0.0, duplicate=0.0, reorder=0.0)
    assert all(perfect.delays(rng) == [0.0] for _ in range(100))
    assert all(
        LinkConfig(loss=1.0, duplicate=1.0, reorder=1.0).delays(rng) == [] for _ in range(100)
    )
    doubled = LinkConfig(latency=0.01, duplicate=1.0, reorder=1.0)
    assert all(doubled.delays(rng) == [0.03, 0.03] for _ in range(100))  # late by 2 x latency


def test_total_loss_delivers_nothing() -> None:
    rng = random.Random(1)
    link = LinkConfig(latency=0.01, loss=1.0)
    assert all(link.delays(rng) == [] for _ in range(1000))


def test_no_loss_delivers_exactly_one_copy_at_the_latency() -> None:
    rng = random.Random(2)
    link = LinkConfig(latency=0.02, loss=0.0)
    assert all(link.delays(rng) == [0.02] for _ in range(1000))


def test_duplicate_one_gives_two_copies() -> None:
    rng = random.Random(3)
    link = LinkConfig(latency=0.03, duplicate=1.0)
    assert all(link.delays(rng) == [0.03, 0.03] for _ in range(1000))


def test_jitter_stays_between_latency_and_latency_plus_jitter() -> None:
    rng = random.Random(4)
    link = LinkConfig(latency=0.01, jitter=0.005)
    delays = [d for _ in range(1000) for d in link.delays(rng)]
    assert len(delays) == 1000
    assert all(0.01 <= d <= 0.015 for d in delays)
    assert len(set(delays)) > 900  # really random, not a constant


def test_reorder_adds_the_reorder_delay() -> None:
    rng = random.Random(5)
    link = LinkConfig(latency=0.01, reorder=1.0, reorder_delay=0.5)
    assert all(link.delays(rng) == [pytest.approx(0.51)] for _ in range(100))


def test_reorder_delay_defaults_to_twice_the_latency() -> None:
    rng = random.Random(6)
    link = LinkConfig(latency=0.01, reorder=1.0)
    assert all(link.delays(rng) == [pytest.approx(0.03)] for _ in range(100))


def test_reorder_delay_zero_is_respected() -> None:
    rng = random.Random(7)
    link = LinkConfig(latency=0.01, reorder=1.0, reorder_delay=0.0)
    assert link.delays(rng) == [pytest.approx(0.01)]


def test_partial_reorder_holds_back_some_datagrams() -> None:
    rng = random.Random(8)
    link = LinkConfig(latency=0.01, reorder=0.5, reorder_delay=1.0)
    delays = [link.delays(rng)[0] for _ in range(10000)]
    held = sum(1 for d in delays if d == pytest.approx(1.01))
    assert sum(1 for d in delays if d == pytest.approx(0.01)) + held == len(delays)
    assert 0.45 <= held / len(delays) <= 0.55


def test_loss_fraction_matches_the_probability() -> None:
    rng = random.Random(2024)
    link = LinkConfig(latency=0.01, loss=0.3)
    results = [link.delays(rng) for _ in range(10000)]
    lost = sum(1 for r in results if r == [])
    assert 0.28 <= lost / len(results) <= 0.32
    assert all(r == [] or r == [0.01] for r in results)


def test_duplicate_fraction_matches_the_probability() -> None:
    rng = random.Random(99)
    link = LinkConfig(latency=0.01, duplicate=0.2)
    counts = [len(link.delays(rng)) for _ in range(10000)]
    assert set(counts) == {1, 2}
    assert 0.18 <= counts.count(2) / len(counts) <= 0.22


def test_same_seed_gives_the_same_delays() -> None:
    link = LinkConfig(latency=0.02, jitter=0.01, loss=0.2, duplicate=0.1, reorder=0.1)

    def draw(seed: int) -> list[list[float]]:
        rng = random.Random(seed)
        return [link.delays(rng) for _ in range(500)]

    assert draw(11) == draw(11)
    assert draw(11) != draw(12)
