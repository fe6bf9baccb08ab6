"""Predict-then-check questions and self-checking exercises for the notebooks.

A chapter asks before it runs: a :class:`Question` holds a prompt, a kind of
answer (:class:`Choice`, :class:`Number`, :class:`FreeText`) and a *callable*
that computes the right answer from the simulator when the student checks, so
a changed parameter changes the answer with it. ``question.check(answer)`` is
a plain function returning a :class:`Verdict`; ``question.widget`` is the same
check behind a Check button; a cell that ends with the question shows the
widget.

An :class:`Exercise` runs the student's function on named :class:`Case`\\ s and
returns a :class:`Report`: which case failed, expected against got, a hint.
Under Run All an unsolved exercise never raises: a missing name, the stub
(see :data:`STUB_CONVENTION`) or ``None`` gives "not attempted yet". An
autograder cell (nbgrader) calls :func:`assert_passes` instead, which raises.

Two reference uses prove the design and serve the chapter on NAT behaviour:
:func:`mallory_question` and :func:`filtering_exercise`.
"""

from __future__ import annotations

import copy
import html
import random
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from punchlab.display import printable
from punchlab.messages import Address, format_address
from punchlab.sim.nat import Behaviour, NatBox, NatConfig, nat_config

__all__ = [
    "STUB_CONVENTION",
    "Case",
    "CaseResult",
    "Choice",
    "Exercise",
    "FreeText",
    "Number",
    "Question",
    "QuestionPanel",
    "Report",
    "Solution",
    "Verdict",
    "assert_passes",
    "filtering_exercise",
    "mallory_question",
    "nat_allows",
]

#: How much of a student's answer, or of a value, a sentence quotes.
SHOWN = 120

#: The result line's colours; the words "Right" / "Not quite" say it too.
RIGHT_COLOUR = "#1b5e20"
WRONG_COLOUR = "#b00020"

STUB_CONVENTION = (
    "A function counts as not attempted while it raises NotImplementedError or returns "
    "None or ... (Ellipsis) on every case: write the stub as `raise NotImplementedError` "
    "or `return ...`."
)


class Unreadable(ValueError):
    """The student's answer cannot be read as this kind of answer (the message says why)."""


def _quote(value: object) -> str:
    """A value as a sentence shows it: one line, escaped, cut; sets in sorted order.

    Sorting keeps stored notebook outputs stable: a set of strings iterates in
    an order that changes with every interpreter (hash randomisation).
    """
    if isinstance(value, set | frozenset):
        items = ", ".join(sorted(_quote(item) for item in value))
        text = "{" + items + "}" if value else "set()"
    elif isinstance(value, tuple) and len(value) != 1:
        text = "(" + ", ".join(_quote(item) for item in value) + ")"
    else:
        text = repr(value)
    return printable(text, SHOWN)


# -- kinds of answer ---------------------------------------------------------------------


class Kind(Protocol):
    """What a question needs of its kind of answer."""

    def read(self, given: object) -> object:
        """The student's answer in canonical form; raises :class:`Unreadable`."""
        ...

    def matches(self, given: object, right: object) -> bool: ...
    def show(self, value: object) -> str:
        """A student's answer as a sentence quotes it."""
        ...

    def show_answer(self, right: object) -> str:
        """The right answer as a sentence gives it."""
        ...

    def missing(self) -> str: ...
    def make_input(self) -> Any: ...


@dataclass(frozen=True)
class Choice:
    """One of a few options; case and surrounding spaces do not matter."""

    options: tuple[str, ...]

    def __init__(self, *options: str) -> None:
        if len(options) < 2:
            raise ValueError("a choice needs at least two options")
        object.__setattr__(self, "options", options)

    def read(self, given: object) -> str:
        wanted = str(given).strip().casefold()
        for option in self.options:
            if option.casefold() == wanted:
                return option
        raise Unreadable(f"{_quote(given)} is not one of the options ({self._listed()})")

    def matches(self, given: object, right: object) -> bool:
        if right not in self.options:
            raise ValueError(f"the right answer {right!r} is not one of the options")
        return given == right

    def show(self, value: object) -> str:
        return str(value)

    def show_answer(self, right: object) -> str:
        return str(right)

    def missing(self) -> str:
        return f"pick one of {self._listed()}"

    def make_input(self) -> Any:
        import ipywidgets as w

        return w.RadioButtons(options=list(self.options), value=None)

    def _listed(self) -> str:
        return ", ".join(self.options)


@dataclass(frozen=True)
class Number:
    """A number, right when within ``tolerance`` (absolute) of the simulator's."""

    tolerance: float = 0.0

    def read(self, given: object) -> float:
        if isinstance(given, bool):
            raise Unreadable(f"{given!r} is not a number")
        try:
            return float(given)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Unreadable(f"{_quote(given)} is not a number") from None

    def matches(self, given: object, right: object) -> bool:
        return abs(float(given) - float(right)) <= self.tolerance  # type: ignore[arg-type]

    def show(self, value: object) -> str:
        return f"{float(value):g}"  # type: ignore[arg-type]

    def show_answer(self, right: object) -> str:
        shown = self.show(right)
        return f"{shown} (give or take {self.tolerance:g})" if self.tolerance else shown

    def missing(self) -> str:
        return "type a number"

    def make_input(self) -> Any:
        import ipywidgets as w

        # Not FloatText: it starts at 0, an answer the student never gave.
        return w.Text(placeholder="a number")


def normalise(text: str) -> str:
    """Free text compared loosely: case, width, spaces, quotes, final stop do not matter."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip("'\"`\u2018\u2019\u201c\u201d").rstrip(".!?")


@dataclass(frozen=True)
class FreeText:
    """Typed text, right when its normalised form is one of the accepted answers.

    The answer callable returns one accepted answer or several (a list or tuple).
    """

    normalise: Callable[[str], str] = normalise

    def read(self, given: object) -> str:
        return str(given)

    def matches(self, given: object, right: object) -> bool:
        accepted = {self.normalise(answer) for answer in _answers(right)}
        return self.normalise(str(given)) in accepted

    def show(self, value: object) -> str:
        return _quote(value)

    def show_answer(self, right: object) -> str:
        return _quote(_answers(right)[0])

    def missing(self) -> str:
        return "type your answer"

    def make_input(self) -> Any:
        import ipywidgets as w

        return w.Text(placeholder="your answer")


def _answers(right: object) -> list[str]:
    if isinstance(right, str):
        return [right]
    return [str(answer) for answer in right]  # type: ignore[attr-defined]


# -- questions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """What an answer callable may return: the answer and why, from the same run."""

    answer: object
    explanation: str


@dataclass(frozen=True)
class Verdict:
    """The result of a check: the sentence (its str and repr) and whether it was right."""

    right: bool
    answered: bool
    text: str

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _unanswered(given: object) -> bool:
    return given is None or given is ... or (isinstance(given, str) and not given.strip())


class Question:
    """A question asked before the cell that answers it; the simulator has the answer.

    ``answer`` is called at every check (never once up front), so a notebook
    that changes a parameter and checks again gets the new answer. It returns
    the answer, or a :class:`Solution` carrying the explanation from the same
    run. Otherwise ``explain`` makes the explanation: a callable given the
    right answer, or a template with ``{answer}``.
    """

    def __init__(
        self,
        prompt: str,
        kind: Kind,
        answer: Callable[[], object],
        explain: Callable[[object], str] | str | None = None,
    ) -> None:
        self.prompt = prompt
        self.kind = kind
        self.answer = answer
        self.explain = explain
        self._panel: QuestionPanel | None = None

    def solve(self) -> Solution:
        """Compute the right answer and its explanation now."""
        found = self.answer()
        if isinstance(found, Solution):
            return found
        if callable(self.explain):
            return Solution(found, self.explain(found))
        if self.explain is not None:
            return Solution(found, self.explain.format(answer=self.kind.show_answer(found)))
        return Solution(found, "")

    def check(self, given: object) -> Verdict:
        """Right or not, with why; no answer yet (None, ..., blank) is said, not raised."""
        if _unanswered(given):
            return Verdict(False, False, f"Not answered yet: {self.kind.missing()}.")
        solution = self.solve()
        why = f" {solution.explanation}" if solution.explanation else ""
        right = self.kind.show_answer(solution.answer)
        try:
            read = self.kind.read(given)
        except Unreadable as exc:
            return Verdict(False, True, f"Not quite: {exc}. The answer is {right}.{why}")
        if self.kind.matches(read, solution.answer):
            return Verdict(True, True, f"Right: {right}.{why}")
        shown = printable(self.kind.show(read), SHOWN)
        text = f"Not quite: you answered {shown}; the simulator says {right}."
        return Verdict(False, True, text + why)

    @property
    def panel(self) -> QuestionPanel:
        """The widgets (made on first use, then kept: one answer box per question)."""
        if self._panel is None:
            self._panel = QuestionPanel(self)
        return self._panel

    @property
    def widget(self) -> Any:
        return self.panel.widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"<Question {printable(self.prompt, SHOWN)!r}>"


class QuestionPanel:
    """The prompt, an answer box, a Check button and a result line.

    Checks are pure and quick (each builds its own small simulation), so the
    button's callback computes in place, on whatever thread a JupyterLab
    subshell runs it; it touches no event loop. An exception (a bug in the
    answer callable) is shown in the result line with its type, never lost.
    """

    def __init__(self, question: Question) -> None:
        import ipywidgets as w

        self.question = question
        self.prompt = w.HTML(f"<b>{html.escape(printable(question.prompt))}</b>")
        self.input = question.kind.make_input()
        self.check_button = w.Button(description="Check", tooltip="Check your answer")
        self.result = w.HTML("")
        self.check_button.on_click(lambda _button: self.check())
        self.widget = w.VBox([self.prompt, w.HBox([self.input, self.check_button]), self.result])

    def check(self) -> None:
        """What the Check button does: check the box's answer and show the sentence."""
        try:
            verdict = self.question.check(self.input.value)
        except Exception as exc:
            self._show(f"Could not check: {type(exc).__name__}: {exc}", WRONG_COLOUR)
            return
        self._show(verdict.text, RIGHT_COLOUR if verdict.right else WRONG_COLOUR)

    def _show(self, text: str, colour: str) -> None:
        shown = html.escape(printable(text))
        self.result.value = f"<span style='color: {colour}'>{shown}</span>"

    @property
    def result_text(self) -> str:
        """The result line without markup (tests read it)."""
        value = str(self.result.value)
        if not value:
            return ""
        return html.unescape(value[value.index(">") + 1 : value.rindex("<")])


# -- exercises ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call of the student's function and what it should return."""

    name: str
    args: tuple[object, ...]
    expected: object
    hint: str = ""


@dataclass(frozen=True)
class CaseResult:
    case: Case
    got: object = None
    error: BaseException | None = None

    @property
    def stub(self) -> bool:
        """This call looked like the unwritten stub (see :data:`STUB_CONVENTION`)."""
        if self.error is not None:
            return isinstance(self.error, NotImplementedError)
        return self.got is None or self.got is ...

    def got_text(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {printable(str(self.error), SHOWN)}"
        return _quote(self.got)


@dataclass(frozen=True)
class Report:
    """What an exercise check found; its str (and repr) is the text a student reads."""

    title: str
    function_name: str
    status: Literal["not attempted", "failed", "passed"]
    results: tuple[tuple[CaseResult, bool], ...] = ()
    note: str = ""
    failures: tuple[CaseResult, ...] = field(init=False)

    def __post_init__(self) -> None:
        failed = tuple(result for result, passed in self.results if not passed)
        object.__setattr__(self, "failures", failed)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def attempted(self) -> bool:
        return self.status != "not attempted"

    def __str__(self) -> str:
        if self.status == "not attempted":
            return f"{self.title}: not attempted yet. {self.note}"
        total = len(self.results)
        if self.status == "passed":
            return f"{self.title}: all {total} cases right."
        return self._failure_text(total)

    __repr__ = __str__

    def _failure_text(self, total: int) -> str:
        first = self.failures[0]
        case = first.case
        call = f"{self.function_name}({', '.join(_quote(arg) for arg in case.args)})"
        lines = [
            f"{self.title}: not yet, {total - len(self.failures)} of {total} cases right.",
            f"Failing case: {printable(case.name, SHOWN)}",
            f"  {call}",
            f"  expected {_quote(case.expected)}, got {first.got_text()}",
        ]
        if case.hint:
            lines.append(f"  Hint: {case.hint}")
        others = [result.case.name for result in self.failures[1:]]
        if others:
            lines.append("Also failing: " + "; ".join(others))
        return "\n".join(lines)

    def raise_for_failure(self) -> None:
        """For autograder cells: raise AssertionError with this text unless every case passed."""
        if not self.passed:
            raise AssertionError(str(self))


def assert_passes(report: Report) -> None:
    """An nbgrader test cell: ``assert_passes(exercise.check(allows))``."""
    report.raise_for_failure()


_MISSING: Any = object()


class Exercise:
    """The student writes ``function_name``; :meth:`check` runs it on every case.

    ``cases`` is called at every check, so expected values come from the
    simulator as it is configured then. ``same(expected, got)`` compares.
    """

    def __init__(
        self,
        title: str,
        function_name: str,
        cases: Callable[[], Iterable[Case]],
        *,
        same: Callable[[object, object], bool] | None = None,
    ) -> None:
        self.title = title
        self.function_name = function_name
        self.cases = cases
        self.same = same or (lambda expected, got: expected == got)

    def check(self, function: object = _MISSING) -> Report:
        """A report, never an exception from the student's side.

        Without an argument the function is looked up by name where the caller
        runs (a notebook's namespace), so a name not defined yet is "not
        attempted" rather than a NameError.
        """
        if function is _MISSING:
            function = sys._getframe(1).f_globals.get(self.function_name, _MISSING)
        name = f"`{self.function_name}`"
        if function is _MISSING:
            return self._not_attempted(f"{name} is not defined yet: run the cell that defines it.")
        if function is None or function is ...:
            return self._not_attempted(f"{name} is still {function!r}: write the function.")
        if not callable(function):
            note = f"{name} should be a function, not {type(function).__name__}."
            return self._not_attempted(note)
        results = [_run(function, case) for case in self.cases()]
        if all(result.stub for result in results):
            return self._not_attempted(f"{name} is still the stub. {STUB_CONVENTION}")
        judged = tuple((r, r.error is None and self.same(r.case.expected, r.got)) for r in results)
        status: Literal["failed", "passed"] = "passed" if all(p for _, p in judged) else "failed"
        return Report(self.title, self.function_name, status, judged)

    def _not_attempted(self, note: str) -> Report:
        return Report(self.title, self.function_name, "not attempted", note=note)

    def __repr__(self) -> str:
        return f"<Exercise {self.title!r}: write {self.function_name}>"


def _run(function: Callable[..., object], case: Case) -> CaseResult:
    """One case on its own copy of the arguments (a student may change a set in place)."""
    try:
        return CaseResult(case, got=function(*copy.deepcopy(case.args)))
    except Exception as exc:
        return CaseResult(case, error=exc)


# -- reference uses: the chapter on what a NAT does --------------------------------------

#: Alice's inside endpoint, the server she talks to, and Mallory.
ALICE_INSIDE: Address = ("10.0.0.2", 5000)
SERVER: Address = ("203.0.113.10", 3478)
MALLORY: Address = ("203.0.113.66", 40000)


def _nat_after(config: NatConfig, contacted: Iterable[Address]) -> tuple[NatBox, int]:
    """A NAT box after Alice sent one packet to each of ``contacted``; her outside port."""
    box = NatBox("NAT A", "198.51.100.1", config, random.Random(0))
    port = 0
    for remote in sorted(contacted):
        port = box.outbound(ALICE_INSIDE, remote, now=0.0)[1]
    return box, port


def nat_allows(filtering: str, contacted: Iterable[Address], source: Address) -> bool:
    """The simulator's decision: does a packet from ``source`` reach Alice?

    Alice's NAT maps endpoint-independently (one outside port for all), so the
    filter alone decides. She has sent to every endpoint in ``contacted``.
    """
    config = nat_config("full-cone", filtering=Behaviour(filtering))
    box, port = _nat_after(config, contacted)
    return not isinstance(box.inbound(source, port, now=1.0), str)


def mallory_solution(nat: str = "restricted-cone", mallory: Address = MALLORY) -> Solution:
    """Alice sends to the server; Mallory sends to her mapped port. What does the NAT do?"""
    box, port = _nat_after(nat_config(nat), [SERVER])
    outcome = box.inbound(mallory, port, now=1.0)
    where = f"{box.outside_ip}:{port}"
    sent = f"Alice sent only to {format_address(SERVER)}"
    if isinstance(outcome, str):
        return Solution("no", f"{sent}; NAT A ({nat}) dropped Mallory's packet: {outcome}.")
    got_in = f"NAT A ({nat}) let it in to {format_address(outcome)}."
    return Solution("yes", f"{sent}, yet Mallory's packet to {where} got through: {got_in}")


def mallory_question(nat: Callable[[], str] = lambda: "restricted-cone") -> Question:
    """'Will Mallory's packet get through?': ``nat`` is read at check time."""
    return Question(
        "Alice, behind NAT A, has sent one packet to the server. Mallory, at another address, "
        "sends a packet to Alice's public address and port. Will it get through?",
        Choice("yes", "no"),
        lambda: mallory_solution(nat()),
    )


_HINTS = {
    (Behaviour.ENDPOINT_INDEPENDENT, False): "Endpoint-independent filtering lets in anyone "
    "who sends to the mapped port, whoever Alice sent to.",
    (Behaviour.ADDRESS_DEPENDENT, True): "Address-dependent filtering compares the IP address "
    "only: any port of an address Alice sent to gets in.",
    (Behaviour.ADDRESS_DEPENDENT, False): "Address-dependent filtering drops an address Alice "
    "never sent to.",
    (Behaviour.ADDRESS_AND_PORT_DEPENDENT, True): "Address-and-port-dependent filtering needs "
    "the exact address and port Alice sent to.",
    (Behaviour.ADDRESS_AND_PORT_DEPENDENT, False): "Address-and-port-dependent filtering drops "
    "an address Alice never sent to, at any port.",
}

_SOURCES: Sequence[tuple[str, Address, bool]] = (
    ("the server itself", SERVER, True),
    ("the server's address, another port", (SERVER[0], 9999), True),
    ("another address", MALLORY, False),
    ("a second contact, exact", ("192.0.2.7", 6000), True),
)


def filtering_cases() -> list[Case]:
    """Each behaviour against each kind of sender; expected from :func:`nat_allows`."""
    contacted = {SERVER, ("192.0.2.7", 6000)}
    cases = []
    for behaviour in Behaviour:
        for label, source, known_address in _SOURCES:
            hint = _HINTS.get((behaviour, known_address), "Alice sent to exactly this endpoint.")
            expected = nat_allows(behaviour.value, contacted, source)
            args = (behaviour.value, set(contacted), source)
            cases.append(Case(f"{behaviour.value}, {label}", args, expected, hint))
    return cases


def filtering_exercise() -> Exercise:
    """Write ``allows(filtering, contacted, source) -> bool`` like RFC 4787's filters."""
    return Exercise("A NAT's filtering decision", "allows", filtering_cases)
