"""Chapter 12's questions and exercise (one NAT for the class), answered by the simulator.

The form is chapter 10's (punchlab.exercises_ladder): factories take their
parameters as callables, answers come from a simulated run, and the
reference solution is a self-contained function with the name the student
writes.
"""

from __future__ import annotations

from collections.abc import Callable

from punchlab.course import Case, Choice, Exercise, Question, Solution
from punchlab.display import text_table
from punchlab.messages import format_address
from punchlab.scenes import campus
from punchlab.sim import Network, punch
from punchlab.traversal import Route

__all__ = [
    "ROUTE_ANSWERS",
    "campus_route",
    "campus_route_cases",
    "campus_route_exercise",
    "campus_route_hidden_cases",
    "campus_route_question",
    "campus_route_solution",
    "cgn_route_question",
    "class_registrations",
]

#: What a student may answer for a pair's route: each route, or "none".
ROUTE_ANSWERS = (*(route.value for route in Route), "none")


def class_registrations(students: int = 4, seed: int = 0) -> str:
    """The server's table after a class behind one campus NAT registered: one public IP."""
    net = Network(seed=seed)
    server = net.add_server()
    nat = net.add_nat("campus NAT", "port-restricted-cone")
    peers = [net.add_peer(f"student {n}", behind=nat, port=5000) for n in range(1, students + 1)]
    for peer in peers:
        peer.register()
    net.run_for(1.0)
    rows = [["student", "own address", "the server sees", "local it claimed"]]
    for peer in peers:
        assert peer.id is not None
        registration = server.core.lookup(peer.id)
        assert registration is not None
        claimed = ", ".join(format_address(a) for a in registration.local) or "-"
        rows.append(
            [peer.name, format_address(peer.address), format_address(registration.address), claimed]
        )
    return text_table(rows)


def campus_route_solution(kind: str, hairpinning: bool, private: bool = True) -> Solution:
    room = campus(kind, hairpinning=hairpinning, private=private)
    drops = room.net.trace.filter(types=["HELLO"], kinds=["dropped"])
    reasons = sorted({event.reason for event in drops if event.reason})
    why = f"HELLOs dropped: {', '.join(reasons)}." if reasons else "No HELLO was dropped."
    if room.route is Route.PRIVATE:
        why += " The HELLOs to each other's private address needed no NAT at all."
    elif room.route is Route.RELAYED:
        why += " They still talk, through the server's relay (chapter 10)."
    answer = room.route.value if room.route is not None else "none"
    settings = f"hairpinning {'on' if hairpinning else 'off'}, private endpoints "
    settings += "on" if private else "off"
    return Solution(answer, f"{kind}, {settings}: {why}")


def campus_route_question(
    kind: Callable[[], str],
    hairpinning: Callable[[], bool],
    private: Callable[[], bool] = lambda: True,
) -> Question:
    """Chapters 7 and 12: 'Which way will two students behind one campus NAT connect?'."""
    return Question(
        "Alice and Bob sit behind the same campus NAT. Which route will they connect by?",
        Choice(*ROUTE_ANSWERS),
        lambda: campus_route_solution(kind(), hairpinning(), private()),
    )


def cgn_route_solution(place: str, kind_a: str, kind_b: str) -> Solution:
    result = punch(kind_a, kind_b, cgn=place, discover=True, seed=0)
    answer = result.route.value if result.connected and result.route is not None else "none"
    return Solution(answer, result.summary())


def cgn_route_question(
    place: Callable[[], str], kind_a: Callable[[], str], kind_b: Callable[[], str]
) -> Question:
    """Chapter 12: 'Two homes behind carrier-grade NATs: which route will they connect by?'."""
    return Question(
        "Two homes sit behind carrier-grade NATs. Which route will their peers connect by?",
        Choice(*ROUTE_ANSWERS),
        lambda: cgn_route_solution(place(), kind_a(), kind_b()),
    )


# -- the exercise: which route will a campus pair take? -------------------------------------


def campus_route(kind: str, hairpinning: bool, private: bool) -> str:
    """The route two students behind one campus NAT connect by (with the traversal ladder).

    ``private``: whether the peers offer and try their private endpoints. The
    NAT hairpins or not; a hairpinned datagram is filtered like any other, and
    a NAT that maps per destination gives the hairpinned HELLO a new port.
    """
    if private:
        return "private"
    if not hairpinning:
        return "relayed"
    if kind == "symmetric":
        return "relayed"
    return "direct"


def _campus_cases(settings: list[tuple[str, bool, bool]]) -> list[Case]:
    """Each case's expected route from a simulated campus (punchlab.scenes.campus)."""
    hint = "Do they try each other's private address? Does the NAT turn a HELLO round?"
    cases = []
    for kind, hairpinning, private in settings:
        expected = campus_route_solution(kind, hairpinning, private).answer
        name = (
            f"{kind}, hairpinning {'on' if hairpinning else 'off'}, "
            f"private endpoints {'on' if private else 'off'}"
        )
        cases.append(Case(name, (kind, hairpinning, private), expected, hint))
    return cases


def campus_route_cases() -> list[Case]:
    return _campus_cases(
        [
            ("port-restricted-cone", False, True),
            ("port-restricted-cone", False, False),
            ("port-restricted-cone", True, False),
            ("symmetric", True, False),
            ("symmetric", False, True),
        ]
    )


def campus_route_hidden_cases() -> list[Case]:
    return _campus_cases(
        [
            ("full-cone", False, False),
            ("full-cone", True, False),
            ("restricted-cone", True, True),
            ("symmetric", False, False),
        ]
    )


def campus_route_exercise() -> Exercise:
    """Write ``campus_route(kind, hairpinning, private)``: the route a campus pair takes."""
    return Exercise("Which route will a campus pair take?", "campus_route", campus_route_cases)
