"""The course machinery: questions answered by the simulator, exercises that check themselves."""

from __future__ import annotations

from typing import Any

import pytest

from punchlab.course import (
    RIGHT_COLOUR,
    WRONG_COLOUR,
    Case,
    Choice,
    Exercise,
    FreeText,
    Number,
    Question,
    Solution,
    assert_passes,
    filtering_cases,
    filtering_exercise,
    mallory_question,
    nat_allows,
)

SERVER = ("203.0.113.10", 3478)


def reference_allows(
    filtering: str, contacted: set[tuple[str, int]], source: tuple[str, int]
) -> bool:
    """A correct student answer, written from RFC 4787 section 5."""
    if filtering == "endpoint-independent":
        return True
    if filtering == "address-dependent":
        return source[0] in {address for address, _ in contacted}
    return source in contacted


# -- questions ---------------------------------------------------------------------------


def test_a_choice_is_right_whatever_the_case_and_wrong_with_both_answers_named() -> None:
    question = Question("Open?", Choice("yes", "no"), lambda: "no", "Because {answer}.")
    right = question.check("  NO ")
    assert right.right and right.answered
    assert str(right) == "Right: no. Because no."
    wrong = question.check("yes")
    assert not wrong.right
    assert repr(wrong) == "Not quite: you answered yes; the simulator says no. Because no."
    assert Question("Who?", Choice("Alice", "Bob"), lambda: "Bob").check("bob").right


def test_an_answer_outside_the_options_or_missing_is_said_not_raised() -> None:
    question = Question("Open?", Choice("yes", "no"), lambda: "yes")
    outside = question.check("maybe")
    assert not outside.right and outside.answered
    assert outside.text.startswith("Not quite: 'maybe' is not one of the options (yes, no).")
    for nothing in (None, "", "   ", ...):
        verdict = question.check(nothing)
        assert not verdict.right and not verdict.answered
        assert verdict.text == "Not answered yet: pick one of yes, no."


def test_a_number_is_right_within_the_tolerance_only() -> None:
    question = Question("Round trips?", Number(tolerance=0.5), lambda: 3)
    assert question.check(3.5).right
    assert question.check("2.6").right  # a Text box gives a string
    too_far = question.check(3.6)
    assert not too_far.right
    assert too_far.text == "Not quite: you answered 3.6; the simulator says 3 (give or take 0.5)."
    assert not Question("Port?", Number(), lambda: 5000).check(5001).right
    assert "is not a number" in question.check("three").text
    assert "is not a number" in question.check(True).text


def test_free_text_is_compared_normalised_against_every_accepted_answer() -> None:
    question = Question("What helps?", FreeText(), lambda: ("port prediction", "a relay"))
    assert question.check("  Port   PREDICTION. ").right
    assert question.check('"a relay"').right
    assert not question.check("prediction").right
    strict = Question("Exact?", FreeText(normalise=lambda text: text), lambda: "Relay")
    assert not strict.check("relay").right


def test_the_explanation_comes_from_a_callable_or_a_solution() -> None:
    question = Question("Port?", Number(), lambda: 49152, lambda port: f"The run chose {port}.")
    assert question.check(49152).text == "Right: 49152. The run chose 49152."
    solved = Question("Port?", Number(), lambda: Solution(7, "Seen in the trace."))
    assert solved.check(8).text.endswith("the simulator says 7. Seen in the trace.")


def test_the_answer_is_computed_again_when_a_parameter_changes() -> None:
    nat = ["restricted-cone"]
    question = mallory_question(lambda: nat[0])
    assert question.check("no").right
    assert "dropped Mallory's packet: filtered by NAT" in question.check("no").text
    nat[0] = "full-cone"
    verdict = question.check("no")
    assert not verdict.right
    assert "the simulator says yes" in verdict.text
    assert "got through" in verdict.text


def test_mallory_gets_through_only_a_full_cone() -> None:
    answers = {
        kind: mallory_question(lambda kind=kind: kind).solve().answer
        for kind in ("full-cone", "restricted-cone", "port-restricted-cone", "symmetric")
    }
    assert answers == {
        "full-cone": "yes",
        "restricted-cone": "no",
        "port-restricted-cone": "no",
        "symmetric": "no",
    }


def test_a_right_answer_outside_the_options_is_the_authors_bug_and_raises() -> None:
    question = Question("Open?", Choice("yes", "no"), lambda: True)
    with pytest.raises(ValueError, match="not one of the options"):
        question.check("yes")


# -- the question's widget ---------------------------------------------------------------


def test_the_check_button_says_right_or_not_quite_in_words_and_colour() -> None:
    question = mallory_question()
    panel = question.panel
    panel.check_button.click()
    assert panel.result_text == "Not answered yet: pick one of yes, no."
    panel.input.value = "no"
    panel.check_button.click()
    assert panel.result_text.startswith("Right: no.")
    assert RIGHT_COLOUR in panel.result.value
    panel.input.value = "yes"
    panel.check_button.click()
    assert panel.result_text.startswith("Not quite: you answered yes")
    assert WRONG_COLOUR in panel.result.value
    assert question.widget is panel.widget  # one answer box per question


def test_the_widget_shows_a_students_text_escaped() -> None:
    question = Question("Say <it>", FreeText(), lambda: "relay")
    panel = question.panel
    assert "Say &lt;it&gt;" in panel.prompt.value
    panel.input.value = "<b>bold</b>\x1b[2J\u202e"
    panel.check_button.click()
    shown = panel.result.value
    assert "<b>" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert "&lt;b&gt;bold&lt;/b&gt;\\x1b[2J\\u202e" in shown
    assert panel.result_text.startswith("Not quite: you answered '<b>bold</b>\\x1b[2J\\u202e'")


def test_an_exception_in_the_answer_callable_is_shown_with_its_type() -> None:
    def broken() -> object:
        raise RuntimeError("no such <NAT>\x1b[2J")

    panel = Question("Open?", Choice("yes", "no"), broken).panel
    panel.input.value = "yes"
    panel.check_button.click()
    assert panel.result_text == "Could not check: RuntimeError: no such <NAT>\\x1b[2J"
    assert "&lt;NAT&gt;\\x1b" in panel.result.value
    assert WRONG_COLOUR in panel.result.value


def test_a_cell_ending_with_a_question_displays_its_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    question = mallory_question()
    question._ipython_display_()
    assert shown == [question.widget]


# -- exercises ---------------------------------------------------------------------------


def test_a_stub_none_or_ellipsis_is_not_attempted_and_does_not_raise() -> None:
    exercise = filtering_exercise()

    def stub(filtering: str, contacted: set[Any], source: Any) -> bool:
        raise NotImplementedError

    for unwritten in (stub, lambda *args: None, lambda *args: ..., None, ...):
        report = exercise.check(unwritten)
        assert not report.attempted and not report.passed
        assert str(report).startswith("A NAT's filtering decision: not attempted yet.")
    assert "is still the stub" in str(exercise.check(stub))
    assert "should be a function, not int" in str(exercise.check(3))


def test_check_without_argument_finds_the_function_in_the_notebooks_namespace() -> None:
    namespace: dict[str, Any] = {"exercise": filtering_exercise()}
    exec("report = exercise.check()", namespace)
    assert "`allows` is not defined yet" in str(namespace["report"])
    namespace["allows"] = reference_allows
    exec("report = exercise.check()", namespace)
    assert namespace["report"].passed


def test_a_wrong_case_is_reported_with_expected_got_and_hint() -> None:
    def allows(filtering: str, contacted: set[Any], source: Any) -> bool:
        """The two stricter filters swapped: a common first attempt."""
        swapped = {"address-dependent": "address-and-port-dependent"}
        swapped["address-and-port-dependent"] = "address-dependent"
        return reference_allows(swapped.get(filtering, filtering), contacted, source)

    report = filtering_exercise().check(allows)
    assert report.status == "failed"
    assert str(report) == (
        "A NAT's filtering decision: not yet, 10 of 12 cases right.\n"
        "Failing case: address-dependent, the server's address, another port\n"
        "  allows('address-dependent', "
        "{('192.0.2.7', 6000), ('203.0.113.10', 3478)}, ('203.0.113.10', 9999))\n"
        "  expected True, got False\n"
        "  Hint: Address-dependent filtering compares the IP address only: any port of an "
        "address Alice sent to gets in.\n"
        "Also failing: address-and-port-dependent, the server's address, another port"
    )


def test_an_exception_in_the_students_function_is_a_failed_case() -> None:
    def allows(filtering: str, contacted: set[Any], source: Any) -> bool:
        if filtering == "address-dependent":
            return {}[source]  # type: ignore[no-any-return]
        return reference_allows(filtering, contacted, source)

    report = filtering_exercise().check(allows)
    assert report.status == "failed" and len(report.failures) == 4
    assert "got raised KeyError: ('203.0.113.10', 3478)" in str(report)


def test_a_right_function_passes_every_case() -> None:
    report = filtering_exercise().check(reference_allows)
    assert report.passed
    assert str(report) == "A NAT's filtering decision: all 12 cases right."
    assert_passes(report)


def test_assert_passes_raises_with_the_report_text() -> None:
    exercise = filtering_exercise()
    wrong = exercise.check(lambda *args: True)
    with pytest.raises(AssertionError) as raised:
        assert_passes(wrong)
    assert str(raised.value) == str(wrong)
    with pytest.raises(AssertionError, match="not attempted yet"):
        exercise.check(None).raise_for_failure()


def test_each_case_gets_its_own_copy_of_the_arguments() -> None:
    def greedy(filtering: str, contacted: set[Any], source: Any) -> bool:
        answer = reference_allows(filtering, contacted, source)
        contacted.add(("198.51.100.99", 1))
        contacted.add(source)
        return answer

    assert filtering_exercise().check(greedy).passed


def test_expected_values_are_the_simulators_and_recomputed_at_each_check() -> None:
    assert nat_allows("address-dependent", {SERVER}, (SERVER[0], 1))
    assert not nat_allows("address-and-port-dependent", {SERVER}, (SERVER[0], 1))
    assert nat_allows("endpoint-independent", {SERVER}, ("192.0.2.200", 1))
    assert not nat_allows("address-dependent", {SERVER}, ("192.0.2.200", 1))
    assert {case.name.split(",")[0] for case in filtering_cases()} == {
        "endpoint-independent",
        "address-dependent",
        "address-and-port-dependent",
    }
    limit = [2]
    exercise = Exercise("Double", "double", lambda: [Case("small", (limit[0],), limit[0] * 2)])
    assert exercise.check(lambda n: n * 2 if n < 3 else 0).passed
    limit[0] = 5
    assert "expected 10, got 0" in str(exercise.check(lambda n: n * 2 if n < 3 else 0))


def test_cases_that_share_an_argument_each_get_a_fresh_copy() -> None:
    shared = [1, 2]
    cases = [Case("first", (shared,), 2), Case("second", (shared,), 2)]
    exercise = Exercise("Count", "count", lambda: cases)

    def count(items: list[int]) -> int:
        items.append(0)  # a student's function may change what it is given
        return len(items) - 1

    assert exercise.check(count).passed
    assert shared == [1, 2]


def test_a_set_is_shown_sorted_so_stored_outputs_stay_the_same() -> None:
    exercise = Exercise("Smallest", "smallest", lambda: [Case("two", ({8, 1},), 1)])
    assert "  smallest({1, 8})\n  expected 1, got 8" in str(exercise.check(max))
