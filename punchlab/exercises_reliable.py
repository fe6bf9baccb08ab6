"""Chapter 14's questions and exercise (UDP does not promise anything), answered by the simulator.

Kept apart from :mod:`punchlab.exercises` (which registers them), in the same
form: factories take their parameters as callables, answers come from a
simulated chat or from the peer's own receiver (:mod:`punchlab.reliable`),
and the reference solution is a self-contained function with the name the
student writes.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from punchlab.course import Case, Exercise, Number, Question, Solution
from punchlab.reliable import deliver as _peer_delivers
from punchlab.sim.chat import chat

__all__ = [
    "deliver",
    "deliver_cases",
    "deliver_exercise",
    "deliver_hidden_cases",
    "lines_question",
]


#: Runs the question averages over: one run's luck is not the answer.
RUNS = 10


def lines_solution(lines: int, loss: float) -> Solution:
    arrived = [chat(lines, seed=seed, loss=loss, reliable=False).arrived for seed in range(RUNS)]
    mean = sum(arrived) / RUNS
    return Solution(
        round(mean, 1),
        f"The simulator, {RUNS} runs (seeds 0 to {RUNS - 1}): {mean:g} lines on average "
        f"(from {min(arrived)} to {max(arrived)}). Each line is one datagram, lost with "
        f"probability {loss:g} on its own: about {lines * (1 - loss):g} is what to expect, "
        "and nobody is told which lines were lost.",
    )


def lines_question(lines: Callable[[], int], loss: Callable[[], float]) -> Question:
    """Chapter 14: 'Without acknowledgements, how many of these lines arrive?'."""
    return Question(
        "A sends this many chat lines as plain TEXT over an internet that loses this share "
        "of datagrams. How many does B's reader get, on average over ten runs? (within 5)",
        Number(tolerance=5.0),
        lambda: lines_solution(lines(), loss()),
    )


# -- the exercise: the receiver's side --------------------------------------------------------


def deliver(received: list[tuple[int, str]], window: int) -> list[str]:
    """What the reader gets from numbered lines ``(seq, text)`` in arrival order.

    Each seq once, in order from 1, nothing past a gap until it fills, and a
    line more than ``window`` seqs past the last one handed over is dropped
    (a receiver holds at most a window's worth, whatever a stranger sends).
    """
    delivered_up_to = 0
    held: dict[int, str] = {}
    out: list[str] = []
    for seq, text in received:
        if seq <= delivered_up_to or seq in held:
            continue  # a duplicate: already handed over, or already waiting
        if seq > delivered_up_to + window:
            continue  # beyond the window: dropped, the sender will try again
        held[seq] = text
        while delivered_up_to + 1 in held:
            delivered_up_to += 1
            out.append(held.pop(delivered_up_to))
    return out


def _cases(named: list[tuple[str, list[tuple[int, str]], int, str]]) -> list[Case]:
    """Each case's expected lines from the peer's own receiver (punchlab.reliable)."""
    return [
        Case(name, (received, window), _peer_delivers(received, window), hint)
        for name, received, window, hint in named
    ]


def deliver_cases() -> list[Case]:
    a, b, c, d = (1, "a"), (2, "b"), (3, "c"), (4, "d")
    return _cases(
        [
            ("in order, nothing lost", [a, b, c], 8, "Hand each line over as it comes."),
            ("a duplicate", [a, a, b], 8, "A seq already handed over is dropped."),
            ("reordered", [b, a, c], 8, "Hold 2 until 1 has come, then hand over both."),
            ("a gap that never fills", [a, c, d], 8, "Nothing after a gap, until it fills."),
            ("the gap fills last", [c, d, b, a], 8, "When 1 comes, everything held follows."),
            ("an old line sent again", [a, b, a], 8, "Its ack was lost: drop the copy."),
            ("a duplicate of a held line", [c, c, a, b], 8, "Hold each seq once."),
            ("beyond the window", [(5, "e"), a, b, c, d], 3, "5 > 0 + 3: drop it, never hold it."),
        ]
    )


def deliver_hidden_cases() -> list[Case]:
    """Lines 1..20 lost, duplicated and shuffled by a seeded generator, and edge cases."""
    rng = random.Random(14)
    named: list[tuple[str, list[tuple[int, str]], int, str]] = [
        ("nothing received", [], 8, "No lines, nothing to hand over."),
        ("only line 2", [(2, "b")], 8, "Line 1 never came: hold 2."),
        ("exactly at the window's edge", [(4, "d"), (1, "a"), (2, "b"), (3, "c")], 3, ""),
    ]
    for run in range(5):
        # The first three always arrive, so that each run has something to hand over.
        lines = [(seq, f"line {seq}") for seq in range(1, 21) if seq <= 3 or rng.random() > 0.3]
        lines += rng.sample(lines, k=len(lines) // 4)  # duplicates
        rng.shuffle(lines)
        named.append((f"a lossy, shuffled run ({run + 1})", lines, 8, "Compare seq by seq."))
    return _cases(named)


def deliver_exercise() -> Exercise:
    """Write ``deliver(received, window)``: the receiving side of the acknowledged chat."""
    return Exercise("Deliver in order, once", "deliver", deliver_cases)
