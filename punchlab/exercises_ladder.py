"""Chapter 10's questions and exercise (when punching gets hard), answered by the simulator.

Kept apart from :mod:`punchlab.exercises` (which registers them) so one
chapter's questions live together; the form is the same: factories take
their parameters as callables, answers come from a simulated run, and the
reference solution is a self-contained function with the name the student
writes.
"""

from __future__ import annotations

from collections.abc import Callable

from punchlab.course import Case, Choice, Exercise, Number, Question, Solution
from punchlab.sim import punch
from punchlab.sim.birthday import birthday_curve
from punchlab.sim.nat import NatConfig
from punchlab.traversal import Allocation, NatReport, Route, next_rung

__all__ = [
    "RUNG_NAMES",
    "birthday_explorer",
    "birthday_odds_text",
    "birthday_question",
    "choose_rung",
    "choose_rung_cases",
    "choose_rung_exercise",
    "choose_rung_hidden_cases",
    "route_question",
]

Kind = Callable[[], "str | NatConfig"]

#: The routes a student may answer, in the ladder's order.
ROUTE_CHOICES = tuple(route.value for route in Route)


def route_solution(kind_a: str | NatConfig, kind_b: str | NatConfig) -> Solution:
    result = punch(kind_a, kind_b, seed=0, discover=True)
    if result.route is None:
        return Solution("none", result.summary())
    return Solution(result.route.value, result.summary())


def route_question(kind_a: Kind, kind_b: Kind, prompt: str | None = None) -> Question:
    """Chapter 10: 'Which way will these two peers connect?'."""
    return Question(
        prompt or "Which route will the two peers connect by?",
        Choice(*ROUTE_CHOICES),
        lambda: route_solution(kind_a(), kind_b()),
    )


def birthday_solution(open_ports: int, probes: int) -> Solution:
    curve = birthday_curve(open_ports, (probes,), trials=2000, seed=0)
    measured = round(100 * curve.success[0])
    return Solution(
        measured,
        f"{curve.trials} simulated punches: {measured}% hit within {probes} probes "
        f"(the formula says {100 * curve.formula()[0]:.1f}%).",
    )


def birthday_question(open_ports: Callable[[], int], probes: Callable[[], int]) -> Question:
    """Chapter 10: 'How often does a birthday punch hit within n probes?' (in percent)."""
    return Question(
        "The hard side opens this many ports and the easy side sends this many probes. "
        "In what percentage of punches does a probe hit an open port? (within 3 points)",
        Number(tolerance=3.0),
        lambda: birthday_solution(open_ports(), probes()),
    )


# -- the exercise: choose the rung ------------------------------------------------------------

#: What :func:`choose_rung` returns, one name per rung of punchlab.traversal.Rung.
RUNG_NAMES = ("predict-aim", "predict-open", "birthday-probe", "birthday-open", "relay")


def choose_rung(mine: dict[str, object] | None, partner: dict[str, object] | None) -> str:
    """The next rung once the direct punch failed, from both sides' NAT reports.

    A report is ``{"mapping": ..., "allocation": ...}`` (None: nothing known).
    "hard" means a dependent mapping; only one hard side can be punched.
    """
    if not mine or not partner:
        return "relay"
    hard = ("address-dependent", "address-and-port-dependent")
    me_hard, them_hard = mine.get("mapping") in hard, partner.get("mapping") in hard
    known = mine.get("mapping") is not None and partner.get("mapping") is not None
    if not known or me_hard == them_hard:
        return "relay"
    counting = (mine if me_hard else partner).get("allocation") == "sequential"
    if me_hard:
        return "predict-open" if counting else "birthday-open"
    return "predict-aim" if counting else "birthday-probe"


_RUNG_NAME = {
    "aim HELLOs at the partner's next ports": "predict-aim",
    "keep sending HELLOs; the partner aims at our next port": "predict-open",
    "probe random ports of the partner": "birthday-probe",
    "open many sockets toward the partner": "birthday-open",
    "talk through the server's relay": "relay",
}

_EIM = "endpoint-independent"
_ADM = "address-dependent"
_APDM = "address-and-port-dependent"


def _report(mapping: str | None, allocation: Allocation | None) -> NatReport:
    port, step = (40002, 1) if allocation is Allocation.SEQUENTIAL else (None, None)
    return NatReport(mapping, allocation, port, step)


def _as_dict(report: NatReport | None) -> dict[str, object] | None:
    if report is None:
        return None
    return {"mapping": report.mapping, "allocation": report.allocation and report.allocation.value}


def _rung_cases(pairs: list[tuple[str, NatReport | None, NatReport | None]]) -> list[Case]:
    """Each case's expected rung from the peer's own ladder (punchlab.traversal.next_rung)."""
    hint = "Which side maps per destination? Does its NAT count ports up? Is anything unknown?"
    return [
        Case(name, (_as_dict(mine), _as_dict(partner)), _RUNG_NAME[next_rung(mine, partner)], hint)
        for name, mine, partner in pairs
    ]


def choose_rung_cases() -> list[Case]:
    easy = _report(_EIM, Allocation.SAME)
    random_hard = _report(_APDM, Allocation.RANDOM)
    counting_hard = _report(_APDM, Allocation.SEQUENTIAL)
    return _rung_cases(
        [
            ("I am a port-restricted cone, the partner symmetric (random)", easy, random_hard),
            ("I am symmetric (random), the partner a full cone", random_hard, easy),
            ("I am a cone, the partner symmetric but counting", easy, counting_hard),
            ("I count, the partner is a cone", counting_hard, easy),
            ("both symmetric", random_hard, counting_hard),
            ("the partner said nothing (a Go peer, or no RFC 5780 server)", easy, None),
        ]
    )


def choose_rung_hidden_cases() -> list[Case]:
    easy = _report(_EIM, Allocation.SAME)
    address_random = _report(_ADM, Allocation.RANDOM)
    address_counting = _report(_ADM, Allocation.SEQUENTIAL)
    return _rung_cases(
        [
            ("address-dependent and random, against a cone", address_random, easy),
            ("a cone, against an address-dependent counter", easy, address_counting),
            ("both cones (the direct punch was unlucky)", easy, easy),
            ("my own mapping unknown", NatReport(), easy),
        ]
    )


def choose_rung_exercise() -> Exercise:
    """Write ``choose_rung(mine, partner)``: the traversal ladder's choice, as the peer makes it."""
    return Exercise("Choose the next rung", "choose_rung", choose_rung_cases)


def birthday_odds_text(open_ports: int, probes: int, trials: int = 300) -> str:
    """One line: a fresh simulated measurement of the birthday odds beside the formula."""
    curve = birthday_curve(open_ports, (probes,), trials=trials, seed=1)
    return (
        f"{open_ports} ports open, {probes} probes: simulator {curve.success[0]:.0%} "
        f"({trials} punches), formula {curve.formula()[0]:.0%}"
    )


def birthday_explorer() -> object:
    """Two sliders (k open ports, probes) and the odds they give, measured afresh each move.

    The callback only computes (it may run on a kernel subshell's thread) and
    shows any error in the panel itself.
    """
    import html

    import ipywidgets as widgets

    ports = widgets.IntSlider(256, min=1, max=4096, description="k open")
    probes = widgets.IntSlider(174, min=1, max=2048, description="probes")
    answer = widgets.HTML()

    def show(_: object = None) -> None:
        try:
            answer.value = html.escape(birthday_odds_text(ports.value, probes.value))
        except Exception as exc:  # shown, not lost in a log
            answer.value = (
                f'<span style="color:#b00020">{html.escape(type(exc).__name__)}: '
                f"{html.escape(str(exc))}</span>"
            )

    for slider in (ports, probes):
        slider.observe(show, names="value")
    show()
    return widgets.VBox([ports, probes, answer])
