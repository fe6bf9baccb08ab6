"""Chapter 11's questions and exercise (timeouts and keepalives), answered by the simulator.

Kept apart from :mod:`punchlab.exercises` (which registers them), in the
form of chapter 10's: question factories take their parameters as callables,
answers come from a simulated run (:func:`punchlab.sim.keepalive.timed_chat`),
and the reference solution is a self-contained function with the name the
student writes. The exercise's check runs the student's heart-beat interval
on the simulator and says, per case, whether a line was lost (and where) or
the heart-beats cost too many datagrams.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from punchlab.course import Case, CaseResult, Choice, Exercise, Question, Report, Solution
from punchlab.peer import PeerConfig
from punchlab.sim.keepalive import ChatTimeline, timed_chat

__all__ = [
    "BEATS_PER_TIMEOUT",
    "KeepaliveCase",
    "heartbeat_interval",
    "judge_interval",
    "keepalive_cases",
    "keepalive_exercise",
    "keepalive_hidden_cases",
    "late_line_question",
    "liveness_question",
    "silent_chat",
]

#: The chapter's chat: a line each way early on, then silence past the NAT's timeout.
SILENT_SCHEDULE = ((5.0, "A", "hi Bob"), (10.0, "B", "hi Alice"), (45.0, "A", "still there?"))
#: Where the late line goes out (seconds after connecting), and the run's end.
LATE_AT, SILENT_DURATION = 45.0, 50.0


def silent_chat(nat: str, peer_beats: bool, *, peer_timeout: float = 600.0) -> ChatTimeline:
    """The chapter's chat through two ``nat`` boxes that forget after 30 s.

    Server heart-beats run every 3 s either way; ``peer_beats`` turns the
    peers' beats to each other on or off. The liveness timeout is long unless
    given, so that only the NATs decide.
    """
    config = PeerConfig(peer_heartbeat=peer_beats, peer_timeout=peer_timeout)
    return timed_chat(SILENT_SCHEDULE, duration=SILENT_DURATION, nat=nat, config=config)


def late_line_solution(nat: str, peer_beats: bool) -> Solution:
    late = silent_chat(nat, peer_beats).lines[-1]
    answer = "yes" if late.delivered else "no"
    return Solution(answer, f"On the simulator Alice's line at {late.at:.0f} s: {late.outcome()}.")


def late_line_question(
    nat: Callable[[], str], peer_beats: Callable[[], bool], prompt: str | None = None
) -> Question:
    """Chapter 11: 'After 45 s of silence, does Alice's line reach Bob?'."""
    return Question(
        prompt
        or "Both NATs forget after 30 s. Alice and Bob said hello at 5 s and 10 s, then fell "
        "silent; Alice writes again at 45 s. Does her line reach Bob?",
        Choice("yes", "no"),
        lambda: late_line_solution(nat(), peer_beats()),
    )


LIVENESS_CHOICES = ("the NAT closes the hole first", "Alice declares Bob gone first")


def liveness_solution(peer_timeout: float) -> Solution:
    timeline = silent_chat("port-restricted-cone", False, peer_timeout=peer_timeout)
    ((_, closed),) = timeline.open_spans["B"]
    gone = timeline.gone_at["A"]
    answer = LIVENESS_CHOICES[0] if gone is None or gone > closed else LIVENESS_CHOICES[1]
    when = "never" if gone is None else f"at {gone:.3f} s"
    return Solution(
        answer,
        f"NAT B closed Alice's permission at {closed:.3f} s; Alice declared Bob gone {when}.",
    )


def liveness_question(peer_timeout: Callable[[], float]) -> Question:
    """Chapter 11: which fires first, the NAT's timeout or the peer's liveness timeout?"""
    return Question(
        "Peer heart-beats off, both NATs forget after 30 s, and punchlab's liveness timeout "
        "(PeerConfig.peer_timeout) is as set above. Bob never writes. Which happens first?",
        Choice(*LIVENESS_CHOICES),
        lambda: liveness_solution(peer_timeout()),
    )


# -- the exercise: choose a heart-beat interval ----------------------------------------------

#: The datagram budget: at most this many heart-beats per peer per (shorter) timeout.
BEATS_PER_TIMEOUT = 10
#: The shortest silence a case checks, in seconds.
SILENCE = 300.0


def heartbeat_interval(nat_timeout: float, peer_timeout: float, loss: float) -> float:
    """Seconds between heart-beats: keep the NATs' holes and the partner's patience (a reference).

    Any beat refreshes the sender's own NAT as it leaves (outbound refresh,
    RFC 4787 REQ-6), lost later or not, so the NAT asks only for a beat
    within its timeout. The partner must *hear* one within its liveness
    timeout: send enough that all of them being lost is a one-in-a-thousand
    event, plus one for the beat that lands just late.
    """
    import math

    nat_bound = nat_timeout / 2
    needed = 1 if loss <= 0 else max(1, math.ceil(math.log(1e-3) / math.log(loss)))
    return min(nat_bound, peer_timeout / (needed + 1))


@dataclass(frozen=True)
class KeepaliveCase:
    """One network the student's interval must keep a silent chat alive through."""

    nat_timeout: float
    peer_timeout: float
    loss: float
    seed: int = 0

    @property
    def silence(self) -> float:
        """How long both peers stay silent: past either timeout, and long enough
        (many liveness windows) that a lossy link shows what it does to beats."""
        return max(1.5 * max(self.nat_timeout, self.peer_timeout), SILENCE)

    @property
    def budget(self) -> int:
        """The most heart-beats one peer may send to its partner during the silence."""
        window = min(self.nat_timeout, self.peer_timeout)
        return math.floor(BEATS_PER_TIMEOUT * (self.silence + 5.0) / window) + 1

    def __repr__(self) -> str:
        return (
            f"an interval that keeps every line through {self.silence:.0f} s of silence "
            f"with at most {self.budget} heart-beats per peer"
        )


def _number(got: object) -> float | None:
    if isinstance(got, bool) or not isinstance(got, int | float):
        return None
    value = float(got)
    return value if math.isfinite(value) and value > 0 else None


@functools.lru_cache(maxsize=256)
def judge_interval(case: KeepaliveCase, interval: float) -> str:
    """Why ``interval`` fails ``case`` on the simulator ("" when it passes)."""
    runs = case.silence + 5.0
    if runs / interval > case.budget:  # decided before running a flood of beats
        return (
            f"too many datagrams: a heart-beat every {interval:g} s is about "
            f"{math.floor(runs / interval)} per peer in {runs:.0f} s, the budget is {case.budget} "
            f"({BEATS_PER_TIMEOUT} per {min(case.nat_timeout, case.peer_timeout):g} s)"
        )
    timeline = _silent_run(case, interval)
    if timeline.nat_drops:  # the root cause, before any liveness timeout it leads to
        when, nat, kind, reason = timeline.nat_drops[0]
        return f"{nat} dropped a {kind} at {when:.1f} s: {reason}"
    gone = [f"{side} declared its partner gone at {when:.1f} s" for side, when in
            timeline.gone_at.items() if when is not None]  # fmt: skip
    if gone:
        heard = f"it heard no beat for {case.peer_timeout:g} s"
        return f"the liveness timeout fired: {gone[0]} ({heard})"
    for line in timeline.lines:
        if not line.delivered and line.why != "lost on link at internet":
            silence = f"after {case.silence:.0f} s of silence"
            return f"the line {line.text!r} {silence} was {line.outcome()}"
    beats = max(len(timeline.peer_beats[side]) for side in ("A", "B"))
    if beats > case.budget:
        return f"too many datagrams: {beats} heart-beats from one peer, the budget is {case.budget}"
    return ""


def _silent_run(case: KeepaliveCase, interval: float) -> ChatTimeline:
    """Connect, stay silent past both timeouts, then three lines each way (loss may eat some)."""
    config = PeerConfig(heartbeat_interval=interval, peer_timeout=case.peer_timeout)
    start = case.silence
    schedule = [
        (start + offset, side, f"{side} after the silence #{number}")
        for number, offset in enumerate((0.0, 1.0, 2.0), start=1)
        for side in ("A", "B")
    ]
    return timed_chat(
        schedule,
        duration=start + 5.0,
        nat_timeout=case.nat_timeout,
        config=config,
        loss=case.loss,
        seed=case.seed,
    )


def _same(expected: object, got: object) -> bool:
    """Whether the student's interval passes the case on the simulator."""
    interval = _number(got)
    if not isinstance(expected, KeepaliveCase) or interval is None:
        return False
    return judge_interval(expected, interval) == ""


def _why(expected: object, got: object) -> str:
    interval = _number(got)
    if interval is None:
        return "return a positive number of seconds."
    assert isinstance(expected, KeepaliveCase)
    return f"with a beat every {interval:g} s, {judge_interval(expected, interval)}."


def _case(nat: float, peer: float, loss: float, seed: int = 0) -> Case:
    name = f"NAT timeout {nat:g} s, liveness timeout {peer:g} s, {loss:.0%} loss"
    return Case(name, (nat, peer, loss), KeepaliveCase(nat, peer, loss, seed))


def keepalive_cases() -> list[Case]:
    return [
        _case(30.0, 30.0, 0.0),
        _case(120.0, 30.0, 0.0),
        _case(30.0, 600.0, 0.3),
        _case(60.0, 30.0, 0.1),
        _case(20.0, 30.0, 0.3, seed=1),
    ]


def keepalive_hidden_cases() -> list[Case]:
    return [
        _case(45.0, 30.0, 0.2, seed=2),
        _case(300.0, 60.0, 0.0),
        _case(15.0, 30.0, 0.1, seed=3),
        _case(120.0, 120.0, 0.3, seed=4),
    ]


#: "No function given": look it up where the check was called.
_LOOK_UP: Any = object()


class KeepaliveExercise(Exercise):
    """The check names, for each failing case, what went wrong on the simulator."""

    def check(self, function: object = _LOOK_UP) -> Report:
        """As :meth:`Exercise.check`, each failing case's hint saying what the simulator saw."""
        if function is _LOOK_UP:  # as Exercise.check does, from the caller's namespace
            function = sys._getframe(1).f_globals.get(self.function_name, _LOOK_UP)
            if function is _LOOK_UP:
                name = f"`{self.function_name}`"
                return self._not_attempted(
                    f"{name} is not defined yet: run the cell that defines it."
                )
        report = super().check(function)
        if report.status != "failed":
            return report
        results = tuple(
            (_explained(result) if not passed else result, passed)
            for result, passed in report.results
        )
        return Report(report.title, report.function_name, report.status, results, report.note)


def _explained(result: CaseResult) -> CaseResult:
    if result.error is not None:
        return result
    return replace(result, case=replace(result.case, hint=_why(result.case.expected, result.got)))


def keepalive_exercise() -> Exercise:
    """Write ``heartbeat_interval(nat_timeout, peer_timeout, loss)``, judged by the simulator."""
    return KeepaliveExercise(
        "Choose a heart-beat interval", "heartbeat_interval", keepalive_cases, same=_same
    )
