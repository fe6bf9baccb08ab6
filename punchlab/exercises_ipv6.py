"""Chapter 13's questions and exercise (IPv6: no translation, still a firewall).

Kept apart from :mod:`punchlab.exercises` (which registers them), in the form
of chapter 10's :mod:`punchlab.exercises_ladder`: answers come from the
simulator (:mod:`punchlab.sim.ipv6`, :class:`punchlab.sim.firewall.Firewall`),
and the reference solution is a self-contained function with the name the
student writes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from punchlab.course import Case, Choice, Exercise, Question, Solution
from punchlab.sim.firewall import Firewall, firewall_config
from punchlab.sim.ipv6 import firewall_drops, punch_v6
from punchlab.traversal import Route

__all__ = [
    "first_hello_question",
    "gets_in",
    "gets_in_cases",
    "gets_in_exercise",
    "gets_in_hidden_cases",
    "v6_route_question",
]

Filtering = Callable[[], str]

#: The routes a student may answer, and "none".
ROUTE_CHOICES = (*(route.value for route in Route), "none")


def v6_route_solution(filtering_a: str, filtering_b: str) -> Solution:
    result = punch_v6(filtering_a, filtering_b)
    answer = result.route.value if result.route is not None else "none"
    return Solution(answer, result.summary())


def v6_route_question(filtering_a: Filtering, filtering_b: Filtering) -> Question:
    """'Two IPv6 peers behind these firewalls: which route will they connect by?'"""
    return Question(
        "Both peers have global IPv6 addresses, each behind a stateful firewall. "
        "Which route will they connect by?",
        Choice(*ROUTE_CHOICES),
        lambda: v6_route_solution(filtering_a(), filtering_b()),
    )


def first_hello_solution(filtering_b: str, lan_b: float) -> Solution:
    result = punch_v6("address-and-port-dependent", filtering_b, lan_b=lan_b)
    drops = [d for d in firewall_drops(result) if d[0] == "firewall B" and d[1] == "HELLO"]
    if drops:
        why = f"firewall B dropped {len(drops)} of A's HELLOs ({drops[0][2]}) before B punched"
        return Solution("no", f"{why}; then: {result.summary()}")
    return Solution("yes", f"firewall B dropped none of A's HELLOs; {result.summary()}")


def first_hello_question(filtering_b: Filtering, lan_b: Callable[[], float]) -> Question:
    """'Does A's first HELLO get through B's firewall?' (B's LAN slows its introduction)."""
    return Question(
        "B's Wi-Fi is slow, so B hears of the introduction after A's first HELLO has "
        "reached B's firewall. Does that first HELLO get in?",
        Choice("yes", "no"),
        lambda: first_hello_solution(filtering_b(), lan_b()),
    )


# -- the exercise: does it get in? ------------------------------------------------------------

Endpoint = tuple[str, int]
A = ("2001:db8:1::2", 5000)
SERVER = ("2001:db8::1", 8089)
B_IP = "2001:db8:1:1::2"


def gets_in(
    filtering: str,
    timeout: float,
    sent: list[tuple[float, int, tuple[str, int]]],
    arriving: tuple[float, tuple[str, int], int],
) -> bool:
    """Whether a datagram gets through B's stateful IPv6 firewall (a reference solution).

    ``sent``: what B sent out before, each ``(time, B's port, remote endpoint)``;
    ``arriving``: ``(time, source endpoint, B's port)``. A datagram B sent out of
    a port opens the way in, for ``timeout`` seconds: to anyone (endpoint-
    independent), to any port of its remote's address (address-dependent), or
    to its remote endpoint alone (address-and-port-dependent).
    """
    time, source, port = arriving

    def opens(remote: tuple[str, int]) -> bool:
        if filtering == "endpoint-independent":
            return True
        if filtering == "address-dependent":
            return remote[0] == source[0]
        return remote == source

    return any(
        from_port == port and when <= time < when + timeout and opens(remote)
        for when, from_port, remote in sent
    )


def _simulated(
    filtering: str,
    timeout: float,
    sent: list[tuple[float, int, Endpoint]],
    arriving: tuple[float, Endpoint, int],
) -> bool:
    """The answer from punchlab's own firewall: replay what B sent, then ask it."""
    box = Firewall("firewall B", _PREFIX, firewall_config(filtering, timeout))
    for time, port, remote in sorted(sent):
        if time <= arriving[0]:
            box.outbound((B_IP, port), remote, time)
    time, source, port = arriving
    return box.admit(source, (B_IP, port), time) == (B_IP, port)


_PREFIX = ipaddress.IPv6Network("2001:db8:1:1::/64")

_APD, _AD, _EI = "address-and-port-dependent", "address-dependent", "endpoint-independent"


def _case(name: str, hint: str, *args: object) -> Case:
    filtering, timeout, sent, arriving = args
    expected = _simulated(filtering, timeout, sent, arriving)  # type: ignore[arg-type]
    return Case(name, (filtering, timeout, sent, arriving), expected, hint)


def gets_in_cases() -> list[Case]:
    registered = [(0.0, 5000, SERVER)]
    punched = [*registered, (1.0, 5000, A)]
    hello = (1.1, A, 5000)
    return [
        _case("nothing sent yet: default deny", "No flow, nothing gets in.",
              _APD, 120.0, [], hello),
        _case("B registered, A's HELLO comes first", "Which endpoint did B send to?",
              _APD, 120.0, registered, hello),
        _case("B punched A first", "B sent to exactly this endpoint.", _APD, 120.0, punched, hello),
        _case("B punched A's address, another port", "APDF compares the port too.",
              _APD, 120.0, [*registered, (1.0, 5000, (A[0], 5001))], hello),
        _case("the same, address-dependent", "ADF compares the address only.",
              _AD, 120.0, [*registered, (1.0, 5000, (A[0], 5001))], hello),
        _case("B registered; endpoint-independent", "EIF lets anyone in once a flow exists.",
              _EI, 120.0, registered, hello),
        _case("the flow is 150 s old", "A way in lives `timeout` s after B's last datagram out.",
              _APD, 120.0, punched, (151.0, A, 5000)),
        _case("B beat the server, not A, for 150 s", "Each remote's way in times out on its own.",
              _APD, 120.0, [*punched, *((t, 5000, SERVER) for t in range(3, 150, 3))],
              (151.0, A, 5000)),
        _case("B punched from another port", "A flow belongs to one of B's ports.",
              _APD, 120.0, [(1.0, 5001, A)], hello),
    ]  # fmt: skip


def gets_in_hidden_cases() -> list[Case]:
    other = ("2001:db8:7::1", 5000)
    return [
        _case("refreshed at 100 s, arriving at 200 s", "B's later datagram refreshes the flow.",
              _APD, 120.0, [(0.0, 5000, A), (100.0, 5000, A)], (200.0, A, 5000)),
        _case("address-dependent, another host", "Another address was never contacted.",
              _AD, 120.0, [(0.0, 5000, A)], (1.0, other, 5000)),
        _case("endpoint-independent, expired", "Even EIF forgets a flow.",
              _EI, 30.0, [(0.0, 5000, SERVER)], (31.0, other, 5000)),
        _case("arriving exactly at the timeout", "At `last + timeout` the flow is gone.",
              _APD, 120.0, [(0.0, 5000, A)], (120.0, A, 5000)),
        _case("B sends after the datagram arrived", "Only what B sent before counts.",
              _APD, 120.0, [(5.0, 5000, A)], (4.0, A, 5000)),
        _case("a new flow forgets the old one", "After a timeout, the flow starts afresh.",
              _APD, 120.0, [(0.0, 5000, A), (200.0, 5000, SERVER)], (201.0, A, 5000)),
        _case("endpoint-independent, beating the server", "EIF needs only the flow alive.",
              _EI, 60.0, [(float(t), 5000, SERVER) for t in range(0, 100, 10)],
              (95.0, other, 5000)),
        _case("address-dependent, A's other port beaten", "ADF: any port of the address.",
              _AD, 60.0, [(0.0, 5000, A), (50.0, 5000, (A[0], 5001))], (100.0, A, 5000)),
    ]  # fmt: skip


def gets_in_exercise() -> Exercise:
    """Write ``gets_in(filtering, timeout, sent, arriving)``: does a datagram get through?"""
    return Exercise("Does it get through the firewall?", "gets_in", gets_in_cases)
