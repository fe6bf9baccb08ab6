"""The course's chapter questions and exercises: answers from the simulator, references pass."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from punchlab.course import Exercise
from punchlab.exercises import (
    EXERCISES,
    HIDDEN_CASES,
    REFERENCES,
    campus_address_question,
    campus_route_question,
    chat_lines_question,
    classify,
    connect_question,
    first_hello_question,
    hello_delays,
    initiate_chat_question,
    lab_registration_question,
    matrix_question,
    observe,
    port_question,
    registration_attempts_question,
    round_trips_question,
    server_sees_question,
    stun_filter_question,
    stun_port_question,
    unknown_peer_question,
)
from punchlab.exercises_keepalive import late_line_question, liveness_question

PRC = "port-restricted-cone"


def stub(*args: Any) -> Any:
    raise NotImplementedError


# -- the registry ------------------------------------------------------------------------


def test_every_exercise_has_a_reference_under_the_same_id() -> None:
    assert set(EXERCISES) == set(REFERENCES)
    assert len(EXERCISES) >= 4
    for exercise_id, factory in EXERCISES.items():
        exercise = factory()
        assert isinstance(exercise, Exercise)
        assert REFERENCES[exercise_id].__name__ == exercise.function_name, exercise_id


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_the_reference_passes_and_the_stub_is_not_attempted(exercise_id: str) -> None:
    exercise = EXERCISES[exercise_id]()
    report = exercise.check(REFERENCES[exercise_id])
    assert report.passed, str(report)
    unwritten = exercise.check(stub)
    assert unwritten.status == "not attempted"
    assert "not attempted yet" in str(unwritten)


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_a_references_source_is_a_solution_cell_on_its_own(exercise_id: str) -> None:
    """What the nbgrader builder does with it: run the source alone, then check."""
    reference = REFERENCES[exercise_id]
    namespace: dict[str, Any] = {}
    # dont_inherit: a notebook cell has no ``from __future__ import annotations``.
    cell = compile(inspect.getsource(reference), "<solution cell>", "exec", dont_inherit=True)
    exec(cell, namespace)
    assert EXERCISES[exercise_id]().check(namespace[reference.__name__]).passed


def test_a_wrong_answer_names_the_failing_case() -> None:
    report = EXERCISES["04-hello-schedule"]().check(lambda n: [0.02 * 2**i for i in range(n)])
    assert report.status == "failed"
    assert "Failing case: eight waits" in str(report)
    assert "stop growing at 0.5 s" in str(report)
    classified = EXERCISES["05-classify-nat"]().check(lambda o: ("endpoint-independent",) * 2)
    assert classified.status == "failed"
    assert "Failing case: mapping endpoint-independent, filtering address-dependent" in str(
        classified
    )
    assert "filtering address-dependent lets in any port of an address" in str(classified)
    read = EXERCISES["03-partner-address"]().check(lambda d: "198.51.100.1:5000")
    assert read.status == "failed"


def test_the_schedule_is_the_peers() -> None:
    assert hello_delays(7) == [0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5]
    assert hello_delays(0) == []


def test_observations_tell_every_combination_apart() -> None:
    seen = {
        (mapping, filtering): observe(mapping, filtering)
        for mapping in ("endpoint-independent", "address-dependent", "address-and-port-dependent")
        for filtering in ("endpoint-independent", "address-dependent", "address-and-port-dependent")
    }
    assert all(classify(observation) == pair for pair, observation in seen.items())
    symmetric = observe("address-and-port-dependent", "address-and-port-dependent")
    assert symmetric["port seen by primary"] != symmetric["port seen by other port"]
    assert not symmetric["other port gets in"] and not symmetric["other address gets in"]


# -- the chapters' questions -------------------------------------------------------------


def test_chapter_1_the_port_follows_the_nat_kind() -> None:
    kind = [PRC]
    question = port_question(lambda: kind[0])
    assert question.check(5000).right
    kind[0] = "symmetric"
    assert not question.check(5000).right
    assert question.solve().answer != 5000


def test_chapter_2_the_server_sees_the_public_address() -> None:
    question = server_sees_question(lambda: PRC, lambda: "symmetric")
    assert question.check("198.51.100.1:5000").right
    assert not question.check("10.0.1.2:5000").right
    attempts = registration_attempts_question(lambda: 3, lambda: 0.5)
    assert attempts.check(2).right
    assert registration_attempts_question(lambda: 3, lambda: 0.0).solve().answer == 1


def test_chapter_3_the_introduction_carries_alices_public_address() -> None:
    question = initiate_chat_question(lambda: PRC, lambda: PRC)
    assert question.check("Alice's public address").right
    assert "198.51.100.1:5000" in question.solve().explanation
    assert unknown_peer_question(lambda: "no-such-peer").check(0).right


def test_chapter_4_round_trips_and_the_first_hello() -> None:
    trips = round_trips_question(lambda: PRC, lambda: PRC, lambda: 0)
    assert trips.solve().answer == 2.0
    assert trips.check(2.4).right and not trips.check(3).right
    never = round_trips_question(lambda: PRC, lambda: "symmetric", lambda: 0)
    assert never.solve().answer == 0
    latency = [0.03]
    first = first_hello_question(lambda: PRC, lambda: PRC, lambda: latency[0])
    assert first.check("yes").right
    assert "filtered by NAT" in first.check("yes").text
    latency[0] = 0.001
    assert first.check("no").right


def test_chapters_5_and_6_connections_and_the_matrix() -> None:
    assert (
        chat_lines_question(lambda: "full-cone", lambda: PRC, lambda: 3, lambda: 1).check(3).right
    )
    assert (
        chat_lines_question(lambda: PRC, lambda: "symmetric", lambda: 5, lambda: 1).check(0).right
    )
    assert connect_question(lambda: PRC, lambda: "symmetric").check("no").right
    assert connect_question(lambda: "restricted-cone", lambda: "symmetric").check("yes").right
    matrix = matrix_question()
    assert matrix.check(45).right
    assert "endpoint-independently, 9 connect" in matrix.solve().explanation
    original = matrix_question(lambda: True)
    assert original.check(9).right


def test_chapter_7_one_campus_nat_connects_privately_or_needs_hairpinning() -> None:
    hairpinning, private = [False], [True]
    question = campus_route_question(lambda: PRC, lambda: hairpinning[0], lambda: private[0])
    assert question.check("private").right
    assert "no hairpinning" in question.solve().explanation
    private[0] = False
    assert question.check("relayed").right
    hairpinning[0] = True
    assert question.solve().answer in ("direct", "peer-reflexive")
    handed = campus_address_question(lambda: PRC)
    assert handed.check("the campus NAT's public address").right
    assert not handed.check("Alice's private address").right


def test_chapter_8_the_server_sees_the_lab_nats_public_address() -> None:
    kind = [PRC]
    question = lab_registration_question(lambda: kind[0])
    assert question.check("203.0.113.11").right
    assert not question.check("10.0.1.2").right
    kind[0] = "none"
    assert question.check("203.0.113.21").right


@pytest.mark.parametrize("exercise_id", sorted(HIDDEN_CASES))
def test_the_reference_passes_the_hidden_cases_too(exercise_id: str) -> None:
    visible = EXERCISES[exercise_id]()
    cases = HIDDEN_CASES[exercise_id]()
    assert cases and {c.name for c in cases}.isdisjoint(c.name for c in visible.cases())
    hidden = Exercise("hidden", visible.function_name, lambda: cases, same=visible.same)
    assert hidden.check(REFERENCES[exercise_id]).passed


def test_chapter_9_the_stun_tests_follow_the_mystery_nat() -> None:
    kind = ["ADM/APDF"]
    port = stun_port_question(lambda: kind[0])
    answer_in = stun_filter_question(lambda: kind[0])
    assert port.check("a different one").right and answer_in.check("no").right
    kind[0] = "EIM/EIF"
    assert port.check("the same").right and answer_in.check("yes").right
    assert "no answer" not in answer_in.solve().explanation


def test_chapter_11_a_silent_partner_is_forgotten_unless_it_beats() -> None:
    assert late_line_question(lambda: "port-restricted-cone", lambda: False).check("no").right
    assert late_line_question(lambda: "port-restricted-cone", lambda: True).check("yes").right
    # A full cone kept open by the server's heart-beats lets anyone in.
    assert late_line_question(lambda: "full-cone", lambda: False).check("yes").right
    first = liveness_question(lambda: 30.0)
    assert first.check("the NAT closes the hole first").right
    assert "Alice declared Bob gone at 40.0" in first.solve().explanation
    assert liveness_question(lambda: 600.0).check("the NAT closes the hole first").right


def test_chapter_11_a_wrong_interval_is_told_what_the_simulator_saw() -> None:
    exercise = EXERCISES["11-heartbeat-interval"]()
    patience = str(exercise.check(lambda nat, peer, loss: 40.0))
    assert "liveness timeout fired" in patience and "heard no beat for 30 s" in patience
    flood = str(exercise.check(lambda nat, peer, loss: 0.5))
    assert "too many datagrams" in flood
    # Beats slower than the NAT timeout: the mapping itself expires, the line is dropped.
    right = REFERENCES["11-heartbeat-interval"]
    nat_blind = str(exercise.check(lambda n, p, loss: 35.0 if p > 100 else right(n, p, loss)))
    assert "600 s" in nat_blind.splitlines()[1]
    assert "dropped a HEART-BEAT at 35.0 s: mapping expired" in nat_blind
    # Ignoring loss: the partner's liveness timeout hears none of a few lost beats.
    lossy = exercise.check(lambda nat, peer, loss: min(nat, peer) / 2)
    assert not lossy.passed and all(r.case.args[2] > 0 for r in lossy.failures)
    assert "positive number of seconds" in str(exercise.check(lambda *_: "soon"))
