"""Write the nbgrader course (assignments/) from the exercise-tagged cells of the chapters.

One source: each chapter, ``notebooks/NN-name.py``, carries its exercises as two
tagged cells, ``exercise-stub`` (the student's function, whose body raises
NotImplementedError) and ``exercise-check``, both also tagged ``exercise:<id>``.
The registry ``EXERCISES`` (punchlab.exercises, else punchlab.course) maps each
id to the exercise and its ``reference`` solution. For every chapter with
exercises this writes ``assignments/source/<chapter>/<chapter>.ipynb``:

* a solution cell: the stub's signature, then the reference's body between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
* a visible autograder cell: ``assert_passes(<exercise>.check(<function>))``;
* a hidden autograder cell (``### BEGIN HIDDEN TESTS``): more cases, from the
  entry's ``hidden_cases`` if it has them, else the visible cases' arguments
  recombined (and each set argument less one element), answered by the reference.

``--check`` writes nothing and fails when the committed files differ from
what the chapters give (tests/test_assignments.py runs it).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import itertools
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jupytext
import nbformat

from punchlab.course import Case, Exercise

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "notebooks"
ASSIGNMENTS = ROOT / "assignments"
REGISTRIES = ("punchlab.exercises:EXERCISES", "punchlab.course:EXERCISES")
STUB_TAG = "exercise-stub"
CHECK_TAG = "exercise-check"
ID_TAG = "exercise:"
#: Points per graded cell: the visible tests and the hidden ones.
VISIBLE_POINTS = 1
HIDDEN_POINTS = 1
#: At most this many derived hidden cases per exercise.
MAX_HIDDEN = 48

CONFIG = '''\
"""nbgrader's configuration for the punchlab course (run nbgrader from this folder).

The notebooks in source/ are generated from the chapters: `make assignments`.
"""

import os

c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "punchlab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
'''

GITIGNORE = """\
# What nbgrader makes from source/: teachers' working files, not the course.
gradebook.db
release/
submitted/
autograded/
feedback/
grades.csv
"""


@dataclass(frozen=True)
class Registered:
    """One registry entry, resolved: the exercise, its reference, how a cell names it."""

    exercise_id: str
    exercise: Exercise
    reference: Callable[..., object]
    hidden_cases: Callable[[], Iterable[Case]] | None
    module: str
    attribute: str
    expression: str  # the Exercise, from the registry (e.g. EXERCISES["01-filtering"])
    #: The hidden cases, from the registry module, for cases that are not literals.
    hidden_expression: str | None = None


def load_registry(
    spec: str | None,
) -> tuple[str, str, dict[str, Any], dict[str, dict[str, Any]]]:
    """The registry ``module:attribute`` (the given one, else the first of REGISTRIES
    found), with the module's REFERENCES and HIDDEN_CASES (by id) if it has them."""
    for candidate in [spec] if spec else list(REGISTRIES):
        module_name, attribute = candidate.split(":")
        try:
            module: ModuleType = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if spec or exc.name != module_name:
                raise
            continue
        if hasattr(module, attribute):
            extras = {key: dict(getattr(module, key, {})) for key in ("REFERENCES", "HIDDEN_CASES")}
            return module_name, attribute, dict(getattr(module, attribute)), extras
        if spec:
            raise SystemExit(f"{module_name} has no {attribute}")
    return "", "", {}, {}


def resolve(
    exercise_id: str, entry: object, extras: dict[str, dict[str, Any]], module: str, attribute: str
) -> Registered:
    """An entry is an Exercise, a factory of one, or holds one as ``exercise``; the
    reference is REFERENCES[id], else the entry's (or the exercise's) ``reference``."""
    access = f"{attribute}[{exercise_id!r}]"
    holder: object = entry
    if isinstance(entry, Exercise):
        exercise: object = entry
        expression = access
    elif callable(entry):
        exercise, expression = entry(), f"{access}()"
    else:
        exercise, expression = getattr(entry, "exercise", None), f"{access}.exercise"
        if callable(exercise) and not isinstance(exercise, Exercise):
            exercise, expression = exercise(), f"{access}.exercise()"
    if not isinstance(exercise, Exercise):
        raise SystemExit(f"{exercise_id}: the registry entry gives no Exercise")
    reference = extras.get("REFERENCES", {}).get(exercise_id) or getattr(holder, "reference", None)
    reference = reference or getattr(exercise, "reference", None)
    if not callable(reference):
        raise SystemExit(f"{exercise_id}: no reference solution (REFERENCES[{exercise_id!r}])")
    registered_hidden = extras.get("HIDDEN_CASES", {}).get(exercise_id)
    hidden = registered_hidden or getattr(holder, "hidden_cases", None)
    hidden_expression = f'HIDDEN_CASES["{exercise_id}"]()' if registered_hidden else None
    return Registered(
        exercise_id,
        exercise,
        reference,
        hidden,
        module,
        attribute,
        expression.replace("'", '"'),
        hidden_expression,
    )


# -- the solution cell -------------------------------------------------------------------


def _function(source: str, name: str) -> ast.FunctionDef:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise SystemExit(f"no function {name} in:\n{source}")


def _body_start(node: ast.FunctionDef) -> int:
    """The index of the first statement after the docstring."""
    first = node.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return 1 if docstring and isinstance(first.value.value, str) else 0  # type: ignore[attr-defined]


def _free_names(node: ast.FunctionDef) -> set[str]:
    """The names a function reads but neither takes, assigns nor imports itself."""
    loaded: set[str] = set()
    bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            (loaded if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
    return loaded - bound


def _imports(reference: Callable[..., object], node: ast.FunctionDef) -> list[str]:
    """Imports for the module-level names the reference uses (the chapter may lack them)."""
    lines = []
    globals_ = getattr(reference, "__globals__", {})
    for name in sorted(_free_names(node)):
        if name not in globals_ or hasattr(builtins, name) or name == reference.__name__:
            continue
        value = globals_[name]
        if isinstance(value, ModuleType):
            alias = "" if value.__name__ == name else f" as {name}"
            lines.append(f"import {value.__name__}{alias}")
        else:
            lines.append(f"from {reference.__module__} import {name}")
    return lines


def solution_source(stub: str, name: str, reference: Callable[..., object]) -> str:
    """The stub cell with its function's body replaced by the reference's, between markers."""
    node = _function(stub, name)
    lines = stub.splitlines()
    first_body = node.body[_body_start(node)] if len(node.body) > _body_start(node) else None
    if first_body is None or node.end_lineno is None:
        raise SystemExit(f"the stub of {name} has no body to replace")
    indent = " " * first_body.col_offset
    ref_source = textwrap.dedent(inspect.getsource(reference))
    ref_node = _function(ref_source, reference.__name__)
    ref_lines = ref_source.splitlines()
    ref_body = ref_lines[ref_node.body[_body_start(ref_node)].lineno - 1 : ref_node.end_lineno]
    body = textwrap.dedent("\n".join(ref_body))
    body = re.sub(rf"\b{re.escape(reference.__name__)}\b", name, body)
    solution = [*_imports(reference, ref_node), *body.splitlines()]
    region = [
        f"{indent}### BEGIN SOLUTION",
        *(f"{indent}{line}" if line else "" for line in solution),
        f"{indent}### END SOLUTION",
    ]
    before = lines[: first_body.lineno - 1]
    after = lines[node.end_lineno :]
    return "\n".join([*before, *region, *after]).rstrip() + "\n"


# -- the test cells ----------------------------------------------------------------------


def literal(value: object) -> str:
    """Python source for a value, the same in every run (sets sorted)."""
    if isinstance(value, set | frozenset):
        if not value:
            return "set()" if isinstance(value, set) else "frozenset()"
        items = ", ".join(sorted(literal(item) for item in value))
        return "{" + items + "}" if isinstance(value, set) else "frozenset({" + items + "})"
    if isinstance(value, tuple):
        items = ", ".join(literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items())
        return "{" + pairs + "}"
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise NotALiteral(f"cannot write {value!r} as a literal")
    return text


class NotALiteral(SystemExit):
    """A value (a trace, say) that Python source cannot spell out."""


def _variants(value: object) -> list[object]:
    """A value and its neighbours: an int and the next one, a set less one element each."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value + 1]
    if isinstance(value, set | frozenset) and len(value) > 1:
        fewer = [type(value)(value - {item}) for item in sorted(value, key=repr)]
        return [value, *fewer]
    return [value]


def hidden_cases(entry: Registered) -> list[Case]:
    """The entry's hidden cases, or new combinations of the visible cases' arguments
    answered by the reference; the visible cases when no argument can be varied."""
    if entry.hidden_cases is not None:
        return list(entry.hidden_cases())
    visible = list(entry.exercise.cases())
    seen = {literal(case.args) for case in visible}
    positions: list[list[object]] = []
    for position in range(len(visible[0].args)):
        values: dict[str, object] = {}
        for case in visible:
            for value in _variants(case.args[position]):
                values.setdefault(literal(value), value)
        positions.append(list(values.values()))
    cases = []
    for args in itertools.product(*positions):
        key = literal(args)
        if key in seen:
            continue
        seen.add(key)
        call = f"{entry.exercise.function_name}({', '.join(literal(arg) for arg in args)})"
        name = call if len(call) <= 90 else call[:89] + "\u2026"
        cases.append(Case(name, args, entry.reference(*args)))
        if len(cases) == MAX_HIDDEN:
            break
    if not cases:
        print(
            f"{entry.exercise_id}: no argument to vary, the hidden test repeats the visible "
            f"cases (give the registry HIDDEN_CASES[{entry.exercise_id!r}])",
            file=sys.stderr,
        )
        return visible
    return cases


def visible_test(entry: Registered) -> str:
    name = entry.exercise.function_name
    return (
        f'"""{entry.exercise.title}: the cases the chapter checks."""\n'
        "from punchlab.course import assert_passes\n"
        f"from {entry.module} import {entry.attribute}\n\n"
        f"assert_passes({entry.expression}.check({name}))\n"
    )


def hidden_test(entry: Registered) -> str:
    name = entry.exercise.function_name
    cases = hidden_cases(entry)
    if not cases:
        raise SystemExit(f"{entry.exercise_id}: no hidden cases (give the entry hidden_cases)")
    title = f"{entry.exercise.title} (more cases)"
    return (
        f'"""{entry.exercise.title}: the cases the chapter does not show."""\n'
        "from punchlab.course import Case, Exercise, assert_passes\n"
        f"from {entry.module} import {entry.attribute}\n\n"
        "### BEGIN HIDDEN TESTS\n"
        f"{_hidden_cases_source(entry, cases)}"
        f"hidden = Exercise({literal(title)}, {literal(name)}, lambda: HIDDEN_CASES, "
        f"same={entry.expression}.same)\n"
        f"assert_passes(hidden.check({name}))\n"
        "### END HIDDEN TESTS\n"
    )


def _hidden_cases_source(entry: Registered, cases: list[Case]) -> str:
    """``HIDDEN_CASES = [...]`` spelled out, or, for cases that are no literals (traces),
    asked of the registry module when the cell runs."""
    try:
        written = "\n".join(
            f"    Case({literal(case.name)}, {literal(case.args)}, {literal(case.expected)}),"
            for case in cases
        )
    except NotALiteral:
        if entry.hidden_expression is None:
            raise
        return (
            f"from {entry.module} import HIDDEN_CASES as REGISTERED\n"
            f"HIDDEN_CASES = REGISTERED{entry.hidden_expression.removeprefix('HIDDEN_CASES')}\n"
        )
    return f"HIDDEN_CASES = [\n{written}\n]\n"


# -- the notebook ------------------------------------------------------------------------


def _cell(kind: str, source: str, grade_id: str | None = None, **grading: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source.rstrip("\n")}
    if grade_id is not None:
        cell["id"] = grade_id  # a stable id: the same file from every run
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if grade_id is not None:
        cell["metadata"]["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, **grading}
    return cell


def _tags(cell: Any) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _exercise_id(cell: Any) -> str | None:
    ids = [tag[len(ID_TAG) :] for tag in _tags(cell) if tag.startswith(ID_TAG)]
    return ids[0] if ids else None


def chapter_notebook(
    chapter: Path,
    registry: dict[str, Any],
    extras: dict[str, dict[str, Any]],
    where: tuple[str, str],
) -> Any:
    """The assignment for one chapter, or None when it has no exercise-tagged cells."""
    notebook = jupytext.read(chapter)
    cells = list(notebook.cells)
    stubs = [(i, cell) for i, cell in enumerate(cells) if STUB_TAG in _tags(cell)]
    if not stubs:
        return None
    title = next(
        (c.source.splitlines()[0].lstrip("# ") for c in cells if c.cell_type == "markdown"),
        chapter.stem,
    )
    out = [
        _cell(
            "markdown",
            f"# {chapter.stem}: exercises\n\n"
            f"The exercises of the chapter *{title}* ({chapter.name}), graded by nbgrader. "
            "Write each function where it says `# YOUR CODE HERE`, run every cell, then "
            "check with **Validate** before you submit. Some tests are hidden: passing the "
            "visible ones is not the whole grade.",
            "intro",
            solution=False,
            grade=False,
            locked=True,
        )
    ]
    for index, stub in stubs:
        exercise_id = _exercise_id(stub)
        if exercise_id is None or exercise_id not in registry:
            raise SystemExit(f"{chapter.name}: the stub cell's exercise {exercise_id!r} is unknown")
        if not any(CHECK_TAG in _tags(c) and _exercise_id(c) == exercise_id for c in cells[index:]):
            raise SystemExit(f"{chapter.name}: {exercise_id} has no exercise-check cell after it")
        entry = resolve(exercise_id, registry[exercise_id], extras, *where)
        name = entry.exercise.function_name
        before = cells[index - 1] if index else None
        if before is not None and before.cell_type == "markdown":
            out.append(_cell("markdown", before.source, f"{exercise_id}-task", locked=True,
                             solution=False, grade=False))  # fmt: skip
        solution = solution_source(stub.source, name, entry.reference)
        out += [
            _cell("code", solution, exercise_id, solution=True, grade=False, locked=False),
            _cell(
                "code",
                visible_test(entry),
                f"{exercise_id}-tests",
                solution=False,
                grade=True,
                locked=True,
                points=VISIBLE_POINTS,
            ),
            _cell(
                "code",
                hidden_test(entry),
                f"{exercise_id}-hidden-tests",
                solution=False,
                grade=True,
                locked=True,
                points=HIDDEN_POINTS,
            ),
        ]
    metadata = {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    return {"cells": out, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def build(chapters: Path, registry_spec: str | None) -> dict[Path, str]:
    """Every file of the course, by its path under assignments/."""
    module, attribute, registry, extras = load_registry(registry_spec)
    files = {Path("nbgrader_config.py"): CONFIG, Path(".gitignore"): GITIGNORE}
    for chapter in sorted(chapters.glob("[0-9][0-9]-*.py")):
        notebook = chapter_notebook(chapter, registry, extras, (module, attribute))
        if notebook is not None:
            text = nbformat.writes(nbformat.from_dict(notebook)) + "\n"  # type: ignore[no-untyped-call]
            files[Path("source") / chapter.stem / f"{chapter.stem}.ipynb"] = text
    return files


def differences(files: dict[Path, str], out: Path) -> list[str]:
    """What differs between the course as built and as written under ``out``."""
    written = {
        path.relative_to(out)
        for path in (out / "source").glob("*/*.ipynb")
        if (out / "source").is_dir()
    }
    found = []
    for path in sorted(set(files) | written):
        target = out / path
        if path not in files:
            found.append(f"{target}: no chapter makes it")
        elif not target.is_file() or target.read_text() != files[path]:
            found.append(f"{target}: not what the chapters give")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chapters", type=Path, default=CHAPTERS)
    parser.add_argument("--out", type=Path, default=ASSIGNMENTS)
    parser.add_argument("--registry", help="module:attribute (default: EXERCISES)")
    parser.add_argument("--check", action="store_true", help="write nothing; fail if stale")
    args = parser.parse_args(argv)
    files = build(args.chapters, args.registry)
    if args.check:
        stale = differences(files, args.out)
        for line in stale:
            print(line, file=sys.stderr)
        if stale:
            print("run `make assignments`", file=sys.stderr)
        return 1 if stale else 0
    for stale in (args.out / "source").glob("*/*.ipynb"):
        if stale.relative_to(args.out) not in files:
            stale.unlink()
    for path, text in files.items():
        (args.out / path).parent.mkdir(parents=True, exist_ok=True)
        (args.out / path).write_text(text)
    print(f"{len(files) - 2} assignment(s) in {args.out / 'source'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
