"""The course's questions and exercises, chapter by chapter, answered by the simulator.

Each question factory takes its parameters as callables (``lambda: NAT_KIND``)
that are read when the student checks, so a chapter whose parameter the student
changed is answered for the new value. Each exercise has a factory (the
:class:`~punchlab.course.Exercise` a chapter checks), a stub the chapter shows
and a reference solution here, a module-level function with the very name the
student writes, self-contained so its source can stand in a solution cell.

:data:`EXERCISES` lists the factories by id (``"01-filtering"``), the id the
chapters' cell tags carry (``exercise:01-filtering``); :data:`REFERENCES` lists
the reference solutions by the same ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from punchlab.course import (
    Case,
    Choice,
    Exercise,
    FreeText,
    Number,
    Question,
    Solution,
    filtering_exercise,
    mallory_question,
)
from punchlab.exercises_ipv6 import gets_in, gets_in_exercise, gets_in_hidden_cases
from punchlab.exercises_keepalive import (
    heartbeat_interval,
    keepalive_exercise,
    keepalive_hidden_cases,
)
from punchlab.exercises_ladder import choose_rung, choose_rung_exercise, choose_rung_hidden_cases
from punchlab.exercises_one_nat import (
    campus_route,
    campus_route_exercise,
    campus_route_hidden_cases,
    campus_route_question,
)
from punchlab.exercises_reliable import deliver, deliver_exercise, deliver_hidden_cases
from punchlab.messages import Address, Message, MessageType, encode, format_address
from punchlab.netlab.lab import side_addresses
from punchlab.peer import PeerConfig
from punchlab.policy import PUNCHLAB
from punchlab.scenes import (
    ask_for_bob,
    campus,
    introduced,
    lossy_registration,
    mystery_punch,
    natcheck,
    registered,
)
from punchlab.sim import (
    BEHAVIOURS,
    Behaviour,
    NatBox,
    PortAllocation,
    nat_config,
    punch,
    success_matrix,
)
from punchlab.stun.discovery import TestRun
from punchlab.trace import EventKind, Trace

__all__ = [
    "EXERCISES",
    "HIDDEN_CASES",
    "PORT_SPACE",
    "REFERENCES",
    "allows",
    "campus_address_question",
    "campus_route_question",
    "chat_lines_question",
    "classify",
    "classify_exercise",
    "connect_question",
    "diagnose",
    "filtering_exercise",
    "first_hello_question",
    "hello_delays",
    "hello_schedule_exercise",
    "initiate_chat_question",
    "lab_registration_question",
    "mallory_question",
    "matrix_question",
    "observe",
    "partner_address",
    "partner_address_exercise",
    "port_question",
    "probes_needed",
    "read_the_tests",
    "registration_attempts_question",
    "round_trips_question",
    "server_sees_question",
    "stun_filter_question",
    "stun_port_question",
    "unknown_peer_question",
]

Kind = Callable[[], str]


# -- chapter 1: what a NAT does ----------------------------------------------------------


def port_solution(kind: str) -> Solution:
    scene = registered(kind)
    net, nat = scene.net, scene.nat_a
    assert nat is not None, "no NAT to map through"
    (mapping,) = nat.mappings(net.now)
    inside = format_address(mapping.inside)
    return Solution(
        mapping.outside_port,
        f"NAT A ({kind}) mapped {inside} to {nat.outside_ip}:{mapping.outside_port}.",
    )


def port_question(kind: Kind) -> Question:
    """Chapter 1: 'Which public port will the NAT use for Alice?'."""
    return Question(
        "Alice sends from 10.0.1.2:5000 to the server. Which public port will NAT A use for her?",
        Number(),
        lambda: port_solution(kind()),
    )


# -- chapter 2: registration -------------------------------------------------------------


def server_sees_solution(kind_a: str, kind_b: str) -> Solution:
    scene = registered(kind_a, kind_b)
    alice = scene.alice
    (registration,) = [r for r in scene.server.registrations if r.peer_id == alice.id]
    seen = format_address(registration.address)
    why = (
        f"The server stores the source of Alice's REGISTRATION: {seen}, NAT A's public "
        f"address, not her own {format_address(alice.address)}."
    )
    return Solution(seen, why)


def server_sees_question(kind_a: Kind, kind_b: Kind) -> Question:
    """Chapter 2: 'What address will the server see for Alice?' (typed as ip:port)."""
    return Question(
        "What address will the server see for Alice? Type it as ip:port.",
        FreeText(),
        lambda: server_sees_solution(kind_a(), kind_b()),
    )


def registration_attempts_solution(seed: int, loss: float) -> Solution:
    lossy, _carol = lossy_registration(seed, loss)
    sent = lossy.trace.filter(actors=["Carol"], types=["REGISTRATION"], kinds=["sent"])
    count = len(list(sent))
    return Solution(count, f"Carol sent {count} REGISTRATION datagram(s) before her ID came back.")


def registration_attempts_question(seed: Callable[[], int], loss: Callable[[], float]) -> Question:
    """Chapter 2: how many REGISTRATIONs Carol sends on a lossy link before she is registered."""
    return Question(
        "On a link that loses half of all datagrams, how many REGISTRATION datagrams will "
        "Carol send before she gets her ID?",
        Number(),
        lambda: registration_attempts_solution(seed(), loss()),
    )


# -- chapter 3: the rendezvous -----------------------------------------------------------

_CARRIES = (
    "Alice's private address",
    "Alice's public address",
    "Bob's public address",
    "the server's address",
)


def initiate_chat_solution(kind_a: str, kind_b: str) -> Solution:
    scene = introduced(kind_a, kind_b)
    net, alice, bob = scene.net, scene.alice, scene.bob
    assert bob is not None
    sent = net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"])
    payload = next(iter(sent)).payload
    seen = {r.peer_id: format_address(r.address) for r in net.servers[0].registrations}
    known = {
        format_address(alice.address): _CARRIES[0],
        seen[alice.id]: _CARRIES[1],
        seen[bob.id]: _CARRIES[2],
    }
    carried = known.get(payload, _CARRIES[3])
    return Solution(carried, f"INITIATE_CHAT carried {payload}: {carried}.")


def initiate_chat_question(kind_a: Kind, kind_b: Kind) -> Question:
    """Chapter 3: 'What will Bob's INITIATE_CHAT carry?'."""
    return Question(
        "Alice asks the server to talk to Bob. What will the INITIATE_CHAT the server sends "
        "Bob carry?",
        Choice(*_CARRIES),
        lambda: initiate_chat_solution(kind_a(), kind_b()),
    )


def unknown_peer_solution(wanted: str) -> Solution:
    scene = registered("port-restricted-cone")
    net, carol = scene.net, scene.alice
    asked = net.now
    carol.connect(wanted)
    net.run_for(0.1)
    sent = net.trace.filter(actors=["server"], kinds=["sent"], time_range=(asked, net.now))
    count = sum(1 for event in sent if event.msg_type != "HTTP")
    error = carol.errors[-1] if carol.errors else "no error"
    return Solution(count, f"The server sent {count} UDP datagram(s); the HTTP answer: {error}.")


def unknown_peer_question(wanted: Callable[[], str]) -> Question:
    """Chapter 3: how many UDP datagrams the server sends for an unknown identifier."""
    return Question(
        "Carol asks the server to connect her to an identifier nobody registered. "
        "How many UDP datagrams will the server send because of her request?",
        Number(),
        lambda: unknown_peer_solution(wanted()),
    )


def partner_address(datagram: bytes) -> tuple[str, int]:
    """The partner's public (ip, port) an INITIATE_CHAT datagram carries (a reference)."""
    import json

    text = json.loads(datagram)["payload"]
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


def partner_address_cases(
    kinds: tuple[str, ...] = ("none", "full-cone", "port-restricted-cone", "symmetric"),
    bob_kind: str = "port-restricted-cone",
) -> list[Case]:
    """Alice behind each kind of NAT asks for Bob; the datagram Bob gets, rebuilt from the trace.

    The expected answer is where the server saw Alice's REGISTRATION come from.
    """
    cases = []
    for kind in kinds:
        scene = introduced(kind, bob_kind)
        net, alice, bob = scene.net, scene.alice, scene.bob
        assert bob is not None
        sent = next(iter(net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"])))
        datagram = encode(Message(MessageType.INITIATE_CHAT, sent.payload, token=bob.core.token))
        (seen,) = [r.address for r in net.servers[0].registrations if r.peer_id == alice.id]
        hint = "The payload is the text 'ip:port'; the port is a number."
        cases.append(Case(f"Alice behind {kind}, Bob behind {bob_kind}", (datagram,), seen, hint))
    return cases


def partner_address_hidden_cases() -> list[Case]:
    """For the autograder: other pairs of NATs, and an IPv6 address in brackets (Go's form)."""
    ipv6 = encode(Message(MessageType.INITIATE_CHAT, "[2001:db8::7]:40001", token="0" * 16))
    hint = "An IPv6 address comes in brackets, as Go writes it: the port follows the last colon."
    return [
        *partner_address_cases(("restricted-cone", "symmetric"), "symmetric"),
        *partner_address_cases(("port-restricted-cone",), "full-cone"),
        Case("Alice at an IPv6 address", (ipv6,), ("2001:db8::7", 40001), hint),
    ]


def partner_address_exercise() -> Exercise:
    """Write ``partner_address(datagram) -> (ip, port)``: what Bob reads from INITIATE_CHAT."""
    return Exercise("Read the introduction", "partner_address", partner_address_cases)


# -- chapter 4: punching -----------------------------------------------------------------


#: Chapters 4 to 7 ask about the punch itself; the traversal ladder comes in chapter 10.
PUNCH_ALONE = PeerConfig(ladder=False)


def round_trips_solution(kind_a: str, kind_b: str, seed: int) -> Solution:
    result = punch(kind_a, kind_b, seed=seed, config=PUNCH_ALONE)
    if result.time_to_connect is None:
        return Solution(0, f"{kind_a} and {kind_b} never connect: no round trip is enough.")
    rtt = 2 * result.network.base_latency("A", "B")
    trips = round(result.time_to_connect / rtt, 1)
    return Solution(
        trips,
        f"Both sides were connected {result.time_to_connect * 1000:.0f} ms after A asked; "
        f"one round trip from A to B takes {rtt * 1000:.0f} ms.",
    )


def round_trips_question(kind_a: Kind, kind_b: Kind, seed: Callable[[], int]) -> Question:
    """Chapter 4: 'How many round trips until both sides are connected?'."""
    return Question(
        "From the moment A asks the server, how many round trips between A and B until both "
        "sides are connected? (Give or take half a round trip; 0 if they never connect.)",
        Number(tolerance=0.5),
        lambda: round_trips_solution(kind_a(), kind_b(), seed()),
    )


def first_hello_solution(kind_a: str, kind_b: str, bob_lan_latency: float) -> Solution:
    net = ask_for_bob(registered(kind_a, kind_b, bob_lan_latency=bob_lan_latency)).net
    hellos = list(net.trace.filter(types=["HELLO"]))
    first = next(e for e in hellos if e.actor == "Alice" and e.kind == EventKind.SENT)
    fate = [e for e in hellos if e.packet == first.packet and e.kind == EventKind.DROPPED]
    if fate:
        return Solution("yes", f"{fate[0].actor} dropped it: {fate[0].reason}.")
    return Solution("no", "It got through: Bob's NAT let it in.")


def first_hello_question(
    kind_a: Kind, kind_b: Kind, bob_lan_latency: Callable[[], float]
) -> Question:
    """Chapter 4: 'Will Alice's first HELLO be dropped?'."""
    return Question(
        "Bob's introduction reaches him late. Will Alice's first HELLO be dropped?",
        Choice("yes", "no"),
        lambda: first_hello_solution(kind_a(), kind_b(), bob_lan_latency()),
    )


def hello_delays(n: int) -> list[float]:
    """The first ``n`` waits, in seconds, between one HELLO and the next (a reference)."""
    from punchlab.peer import PeerConfig
    from punchlab.policy import PUNCHLAB

    config = PeerConfig()
    delays: list[float] = []
    now, interval = 0.0, config.hello_first_retry
    for _ in range(n):
        later, interval = PUNCHLAB.next_hello(now, interval, config)
        delays.append(round(later - now, 6))
        now = later
    return delays


def _schedule(n: int) -> list[float]:
    """The simulator's own schedule: the peer's policy stepped ``n`` times."""
    config = PeerConfig()
    now, interval = 0.0, config.hello_first_retry
    delays: list[float] = []
    for _ in range(n):
        later, interval = PUNCHLAB.next_hello(now, interval, config)
        delays.append(later - now)
        now = later
    return delays


def _close(expected: object, got: object) -> bool:
    try:
        pairs = list(zip(expected, got, strict=True))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return all(abs(float(e) - float(g)) < 1e-6 for e, g in pairs)


def hello_schedule_cases() -> list[Case]:
    config = PeerConfig()
    first, most = config.hello_first_retry, config.hello_max_interval
    return [
        Case("one wait", (1,), _schedule(1), f"The first retry comes {first} s after the HELLO."),
        Case("three waits", (3,), _schedule(3), "Each wait is twice the one before."),
        Case("eight waits", (8,), _schedule(8), f"The waits stop growing at {most} s."),
        Case("none", (0,), _schedule(0), "No waits asked for: an empty list."),
    ]


def hello_schedule_exercise() -> Exercise:
    """Write ``hello_delays(n)``: the first n waits between HELLOs, as punchlab's peer waits."""
    return Exercise("The HELLO retry schedule", "hello_delays", hello_schedule_cases, same=_close)


# -- chapter 6: chatting -----------------------------------------------------------------


def chat_lines_solution(kind_c: str, kind_d: str, lines: int, seed: int) -> Solution:
    result = punch(kind_c, kind_d, seed=seed, texts=lines, config=PUNCH_ALONE)
    got = result.texts_a_to_b
    return Solution(got, f"{kind_c} to {kind_d}: {result.summary()}")


def chat_lines_question(
    kind_c: Kind, kind_d: Kind, lines: Callable[[], int], seed: Callable[[], int]
) -> Question:
    """Chapter 6: how many of Carol's lines Dave receives."""
    return Question(
        "Carol connects to Dave, then sends him lines of chat. How many of them will Dave receive?",
        Number(),
        lambda: chat_lines_solution(kind_c(), kind_d(), lines(), seed()),
    )


def connect_solution(kind_a: str, kind_b: str) -> Solution:
    result = punch(kind_a, kind_b, seed=0, config=PUNCH_ALONE)
    return Solution("yes" if result.connected else "no", result.summary())


def connect_question(kind_a: Kind, kind_b: Kind, prompt: str | None = None) -> Question:
    """Chapters 5, 6 and 8: 'Will a NAT of this kind and one of that kind connect?'."""
    return Question(
        prompt or "Will the two peers connect and chat?",
        Choice("yes", "no"),
        lambda: connect_solution(kind_a(), kind_b()),
    )


# -- chapter 5: which NATs can talk -----------------------------------------------------


def matrix_solution(seed_compatible: bool) -> Solution:
    matrix = success_matrix(
        list(BEHAVIOURS.values()),
        seed_compatible=seed_compatible,
        config=None if seed_compatible else PUNCH_ALONE,
    )
    count = sum(row.count(True) for row in matrix.as_table())
    total = len(matrix.kinds) ** 2
    both_eim = sum(
        cell.connected for (a, b), cell in matrix.cells.items() if a[:3] == b[:3] == "EIM"
    )
    return Solution(
        count,
        f"{count} of {total} connect. Of the 9 pairs where both NATs map "
        f"endpoint-independently, {both_eim} connect.",
    )


def matrix_question(seed_compatible: Callable[[], bool] = lambda: False) -> Question:
    """Chapter 5: 'How many cells of the 9 x 9 matrix connect?'."""
    return Question(
        "Nine NATs (every RFC 4787 mapping with every filtering) on each side make 81 "
        "pairs. How many of the 81 connect?",
        Number(),
        lambda: matrix_solution(seed_compatible()),
    )


#: The test servers of the classification exercise: two addresses, two ports.
PRIMARY: Address = ("203.0.113.10", 3478)
OTHER_PORT: Address = ("203.0.113.10", 3479)
OTHER_ADDRESS: Address = ("203.0.113.20", 3478)


def observe(
    mapping: str, filtering: str, seed: int = 0, allocation: str = "preserve"
) -> dict[str, object]:
    """What RFC 5780's tests see of a NAT: the simulator's NatBox, probed.

    Alice, at 10.0.0.2:5000, sends to the primary server, to its other port
    and to another address; each answer's public port is recorded. Then, on
    a fresh NAT where Alice has sent only to the primary server, the other
    port and the other address each try to reach her.
    """
    config = nat_config(
        "full-cone",
        mapping=Behaviour(mapping),
        filtering=Behaviour(filtering),
        allocation=PortAllocation(allocation),
    )
    inside = ("10.0.0.2", 5000)
    box = NatBox("NAT", "198.51.100.1", config, random.Random(seed))
    remotes = (PRIMARY, OTHER_PORT, OTHER_ADDRESS)
    ports = {remote: box.outbound(inside, remote, now=0.0)[1] for remote in remotes}
    fresh = NatBox("NAT", "198.51.100.1", config, random.Random(seed))
    port = fresh.outbound(inside, PRIMARY, now=0.0)[1]
    reaches = {
        remote: not isinstance(fresh.inbound(remote, port, now=1.0), str)
        for remote in (OTHER_PORT, OTHER_ADDRESS)
    }
    return {
        "port seen by primary": ports[PRIMARY],
        "port seen by other port": ports[OTHER_PORT],
        "port seen by other address": ports[OTHER_ADDRESS],
        "other port gets in": reaches[OTHER_PORT],
        "other address gets in": reaches[OTHER_ADDRESS],
    }


def classify(observation: dict[str, object]) -> tuple[str, str]:
    """The NAT's (mapping, filtering) from what the tests saw (a reference)."""
    primary = observation["port seen by primary"]
    if observation["port seen by other address"] == primary:
        mapping = "endpoint-independent"
    elif observation["port seen by other port"] == primary:
        mapping = "address-dependent"
    else:
        mapping = "address-and-port-dependent"
    if observation["other address gets in"]:
        filtering = "endpoint-independent"
    elif observation["other port gets in"]:
        filtering = "address-dependent"
    else:
        filtering = "address-and-port-dependent"
    return (mapping, filtering)


def _combinations() -> Iterator[tuple[str, str]]:
    for mapping in Behaviour:
        for filtering in Behaviour:
            yield mapping.value, filtering.value


def classify_cases(allocation: str = "preserve", seed: int = 0) -> list[Case]:
    """Every mapping with every filtering; the expected answer is the simulated NAT's config."""
    hints = {
        "endpoint-independent": "the same public port for every destination",
        "address-dependent": "a new public port for a new address, not for a new port",
        "address-and-port-dependent": "a new public port for every new address or port",
    }
    filters = {
        "endpoint-independent": "anyone, once a mapping exists",
        "address-dependent": "any port of an address Alice sent to",
        "address-and-port-dependent": "only the exact address and port Alice sent to",
    }
    return [
        Case(
            f"mapping {mapping}, filtering {filtering}" + _allocated(allocation),
            (observe(mapping, filtering, seed, allocation),),
            (mapping, filtering),
            f"Mapping {mapping} means {hints[mapping]}; filtering {filtering} lets in "
            f"{filters[filtering]}.",
        )
        for mapping, filtering in _combinations()
    ]


def _allocated(allocation: str) -> str:
    return "" if allocation == "preserve" else f", {allocation} ports"


def classify_hidden_cases() -> list[Case]:
    """For the autograder: the same NATs allocating ports at random or in sequence."""
    return classify_cases("random", seed=1) + classify_cases("sequential", seed=2)


def classify_exercise() -> Exercise:
    """Write ``classify(observation) -> (mapping, filtering)`` like RFC 5780's tests."""
    return Exercise(
        "Classify a mystery NAT",
        "classify",
        classify_cases,
        same=_same_pair,
    )


def _same_pair(expected: object, got: object) -> bool:
    return isinstance(got, tuple | list) and tuple(got) == expected


# -- chapter 5: port prediction's odds ---------------------------------------------------

#: The outside ports a simulated NAT picks from at random (``NatBox.FIRST_PORT`` to 65535).
PORT_SPACE = 65536 - NatBox.FIRST_PORT


def probes_needed(open_ports: int, chance: float, ports: int = 64512) -> int:
    """Fewest probes, each to a new random port, that hit an open one with ``chance`` (a reference).

    ``open_ports`` of the ``ports`` are open; after ``i`` misses, ``ports - i``
    are left, ``open_ports`` of them open.
    """
    miss = 1.0
    for probes in range(1, ports + 1):
        miss *= (ports - open_ports - probes + 1) / (ports - probes + 1)
        if 1 - miss >= chance:
            return probes
    return ports


def _within_one_percent(expected: object, got: object) -> bool:
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    assert isinstance(expected, int)
    return abs(got - expected) <= max(1, 0.01 * expected)


def birthday_cases(ports: int = PORT_SPACE) -> list[Case]:
    """How many probes for a chance of a hit, with the port space of the simulator's NATs."""
    draw = "Each probe goes to a port not tried before: after i misses, ports - i are left."
    cases = [
        Case("256 open, a 50% chance", (256, 0.5, ports), probes_needed(256, 0.5, ports), draw),
        Case("256 open, a 90% chance", (256, 0.9, ports), probes_needed(256, 0.9, ports), draw),
        Case("256 open, a 98% chance", (256, 0.98, ports), probes_needed(256, 0.98, ports), draw),
        Case("1 open, a 50% chance", (1, 0.5, ports), probes_needed(1, 0.5, ports), draw),
    ]
    every = "With every port open, the first probe hits."
    cases.append(Case("every port open", (ports, 0.99, ports), 1, every))
    return cases


def birthday_hidden_cases() -> list[Case]:
    ports = PORT_SPACE
    return [
        Case(f"{k} open, a {c:.0%} chance", (k, c, ports), probes_needed(k, c, ports), "")
        for k, c in ((16, 0.9), (1024, 0.99), (64, 0.5))
    ]


def birthday_exercise() -> Exercise:
    """Write ``probes_needed(open_ports, chance, ports)``: the birthday method's odds."""
    return Exercise(
        "Port prediction's odds", "probes_needed", birthday_cases, same=_within_one_percent
    )


# -- chapter 6: find the bug in a broken peer --------------------------------------------


def diagnose(trace: "Trace") -> str:  # noqa: UP037 (a solution cell has no Trace to name)
    """Which punching switch of Alice's peer is off, from the trace alone (a reference)."""
    sent = [e for e in trace if e.actor == "Alice" and e.kind == "sent"]
    got = [e for e in trace if e.actor == "Alice" and e.kind == "delivered"]
    asked = next(e.time for e in sent if "start-communication" in e.payload)
    if min(e.time for e in sent if e.msg_type == "HELLO") - asked > 1.0:
        return "backs_off"
    hello_from = {e.src for e in got if e.msg_type == "HELLO"}
    if {e.dst for e in sent if e.msg_type == "TEXT"} - hello_from:
        return "adopts_peer_reflexive"
    first = min(e.time for e in got if e.msg_type == "HELLO")
    if not any(e.msg_type == "HELLO" and e.time == first for e in sent):
        return "answers_hello_with_hello"
    return "none"


_SYMPTOMS = {
    "none": "Compare with a healthy peer: nothing is late, lost or left unanswered.",
    "backs_off": "Look at when Alice's first HELLO leaves, counted from her request.",
    "adopts_peer_reflexive": "Compare where Alice's TEXTs go with where Bob's HELLOs came from.",
    "answers_hello_with_hello": "Look at what Alice sends the moment Bob's first HELLO arrives.",
}

_MYSTERIES = (
    ("none", "port-restricted-cone", "port-restricted-cone", 0),
    ("backs_off", "port-restricted-cone", "port-restricted-cone", 0),
    ("answers_hello_with_hello", "port-restricted-cone", "port-restricted-cone", 0),
    ("adopts_peer_reflexive", "restricted-cone", "symmetric", 0),
)

_HIDDEN_MYSTERIES = (
    ("none", "restricted-cone", "symmetric", 1),
    ("backs_off", "restricted-cone", "restricted-cone", 1),
    ("answers_hello_with_hello", "full-cone", "symmetric", 1),
    ("adopts_peer_reflexive", "EIM/ADF", "APDM/EIF", 1),
)


def _mystery_cases(mysteries: tuple[tuple[str, str, str, int], ...]) -> list[Case]:
    cases = []
    for number, (broken, kind_a, kind_b, seed) in enumerate(mysteries, start=1):
        scene = mystery_punch(None if broken == "none" else broken, kind_a, kind_b, seed=seed)
        name = f"peer {number}: Alice behind {kind_a}, Bob behind {kind_b}"
        cases.append(Case(name, (scene.net.trace,), broken, _SYMPTOMS[broken]))
    return cases


def mystery_cases() -> list[Case]:
    """Chapter 6's four mystery peers: one healthy, three with one switch off."""
    return _mystery_cases(_MYSTERIES)


def mystery_hidden_cases() -> list[Case]:
    return _mystery_cases(_HIDDEN_MYSTERIES)


def mystery_exercise() -> Exercise:
    """Write ``diagnose(trace)``: which switch of Alice's peer is off, or ``"none"``."""
    return Exercise("Find the bug in a broken peer", "diagnose", mystery_cases)


# -- chapter 7: the classroom ------------------------------------------------------------

_CAMPUS_HANDS_OUT = ("Alice's private address", "the campus NAT's public address")


def campus_address_solution(kind: str) -> Solution:
    room = campus(kind, hairpinning=False)
    sent = room.net.trace.filter(actors=["server"], types=["INITIATE_CHAT"], kinds=["sent"])
    payload = next(iter(sent)).payload
    host = payload.rpartition(":")[0]
    handed = _CAMPUS_HANDS_OUT[1] if host == room.nat.outside_ip else _CAMPUS_HANDS_OUT[0]
    why = f"The server saw both students at {room.nat.outside_ip}; it sent Bob {payload}."
    return Solution(handed, why)


def campus_address_question(kind: Kind) -> Question:
    """Chapter 7: 'Which address will the server hand Bob for Alice, both behind one NAT?'."""
    return Question(
        "Alice and Bob sit behind the same campus NAT; the server is outside. Which address "
        "will the server give Bob for Alice?",
        Choice(*_CAMPUS_HANDS_OUT),
        lambda: campus_address_solution(kind()),
    )


# -- chapter 8: real NATs ----------------------------------------------------------------


def lab_registration_solution(kind: str) -> Solution:
    plan = side_addresses(1, kind)
    if plan.gateway is None:
        return Solution(plan.public, f"Without a NAT, Alice's own address is {plan.public}.")
    why = (
        f"Alice's own address is {plan.peer}; the server sees the source address her NAT "
        f"wrote, {plan.public}."
    )
    return Solution(plan.public, why)


def lab_registration_question(kind: Kind) -> Question:
    """Chapter 8: 'From which IP address does the server see Alice's REGISTRATION?'."""
    return Question(
        "In the lab, from which IP address will the server see Alice's REGISTRATION?",
        FreeText(),
        lambda: lab_registration_solution(kind()),
    )


# -- chapter 9: what kind of NAT am I behind? ---------------------------------------------


def stun_port_solution(kind: str) -> Solution:
    tests = natcheck(kind).result.tests
    first, second = tests[0].mapped, tests[1].mapped
    same = "the same" if first == second else "a different one"
    where = f"test I saw {_at(first)}, test II {_at(second)}"
    return Solution(same, f"Behind {kind}, {where}.")


def _at(address: Address | None) -> str:
    return "nothing" if address is None else format_address(address)


def stun_port_question(kind: Kind) -> Question:
    """Chapter 9: 'Will mapping test II see the same public address as test I?'."""
    return Question(
        "Mapping tests I and II leave from the same socket, to the server's two IP "
        "addresses. Will the server see the same public address both times?",
        Choice("the same", "a different one"),
        lambda: stun_port_solution(kind()),
    )


def stun_filter_solution(kind: str) -> Solution:
    result = natcheck(kind).result
    (test,) = [t for t in result.tests if t.name == "filtering test II"]
    answer = "yes" if test.mapped is not None else "no"
    return Solution(answer, f"Behind {kind}: {test.describe()}.")


def stun_filter_question(kind: Kind) -> Question:
    """Chapter 9: 'Will the answer from the server's other IP and port get in?'."""
    return Question(
        "Filtering test II asks the server to answer from its other IP address and "
        "other port, which this socket has never sent to. Will that answer get in?",
        Choice("yes", "no"),
        lambda: stun_filter_solution(kind()),
    )


def read_the_tests(tests: "list[TestRun]") -> tuple[str, str]:  # noqa: UP037 (a solution cell)
    """RFC 5780's verdicts from the tests' evidence alone (a reference)."""
    seen = {test.name: test.mapped for test in tests}
    if seen["mapping test II"] == seen["mapping test I"]:
        mapping = "endpoint-independent"
    elif seen.get("mapping test III") == seen["mapping test II"]:
        mapping = "address-dependent"
    else:
        mapping = "address-and-port-dependent"
    if seen["filtering test II"] is not None:
        filtering = "endpoint-independent"
    elif seen.get("filtering test III") is not None:
        filtering = "address-dependent"
    else:
        filtering = "address-and-port-dependent"
    return mapping, filtering


def read_the_tests_cases(allocation: str | None = None, seed: int = 0) -> list[Case]:
    """Every mapping x filtering NAT in the simulator, its tests, and its true behaviours."""
    cases = []
    for name, config in BEHAVIOURS.items():
        result = natcheck(name, allocation=allocation, seed=seed).result
        expected = (config.mapping.value, config.filtering.value)
        hint = (
            f"Mapping {expected[0]}: compare the public address each mapping test saw. "
            f"Filtering {expected[1]}: which filtering tests got an answer at all?"
        )
        label = f"NAT {name}" + ("" if allocation is None else f", {allocation} ports")
        cases.append(Case(label, (result.tests,), expected, hint))
    return cases


def read_the_tests_hidden_cases() -> list[Case]:
    return read_the_tests_cases("sequential", seed=1)


def read_the_tests_exercise() -> Exercise:
    """Write ``read_the_tests(tests)``: classify a NAT from RFC 5780's evidence."""
    return Exercise("Read the tests", "read_the_tests", read_the_tests_cases, same=_same_pair)


# -- the registry ------------------------------------------------------------------------


def allows(filtering: str, contacted: set[tuple[str, int]], source: tuple[str, int]) -> bool:
    """Whether a packet from ``source`` gets in, after Alice sent to ``contacted`` (a reference)."""
    if filtering == "endpoint-independent":
        return True
    if filtering == "address-dependent":
        return source[0] in {address for address, _ in contacted}
    return source in contacted


#: Each exercise's factory, by the id its chapter's cell tags carry (``exercise:ID``).
EXERCISES: dict[str, Callable[[], Exercise]] = {
    "01-filtering": filtering_exercise,
    "03-partner-address": partner_address_exercise,
    "04-hello-schedule": hello_schedule_exercise,
    "05-classify-nat": classify_exercise,
    "05-port-prediction": birthday_exercise,
    "06-find-the-bug": mystery_exercise,
    "09-read-the-tests": read_the_tests_exercise,
    "10-choose-the-rung": choose_rung_exercise,
    "11-heartbeat-interval": keepalive_exercise,
    "12-campus-route": campus_route_exercise,
    "13-gets-in": gets_in_exercise,
    "14-deliver": deliver_exercise,
}

#: More cases for the nbgrader course's hidden tests, by the same id.
HIDDEN_CASES: dict[str, Callable[[], list[Case]]] = {
    "03-partner-address": partner_address_hidden_cases,
    "05-classify-nat": classify_hidden_cases,
    "05-port-prediction": birthday_hidden_cases,
    "06-find-the-bug": mystery_hidden_cases,
    "09-read-the-tests": read_the_tests_hidden_cases,
    "10-choose-the-rung": choose_rung_hidden_cases,
    "11-heartbeat-interval": keepalive_hidden_cases,
    "12-campus-route": campus_route_hidden_cases,
    "13-gets-in": gets_in_hidden_cases,
    "14-deliver": deliver_hidden_cases,
}

#: Each exercise's reference solution, by the same id: a function with the name the
#: student writes, whose source (``inspect.getsource``) is a complete solution cell.
REFERENCES: dict[str, Callable[..., Any]] = {
    "01-filtering": allows,
    "03-partner-address": partner_address,
    "04-hello-schedule": hello_delays,
    "05-classify-nat": classify,
    "05-port-prediction": probes_needed,
    "06-find-the-bug": diagnose,
    "09-read-the-tests": read_the_tests,
    "10-choose-the-rung": choose_rung,
    "11-heartbeat-interval": heartbeat_interval,
    "12-campus-route": campus_route,
    "13-gets-in": gets_in,
    "14-deliver": deliver,
}
