"""The nbgrader course in assignments/: in step with the chapters, graded by nbgrader itself.

Every assignment in assignments/source/, and one made here from the fixture
chapter tests/data/chapters/ (so the test never runs on nothing), goes through
nbgrader's own commands in a copy of the course: ``generate_assignment``
must leave no solution or hidden test in the released notebook, and
``autograde`` must give the reference solution every point and the untouched
released notebook none, on every graded cell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_assignments.py"
BIN = Path(sys.executable).parent
FIXTURE_CHAPTERS = ROOT / "tests" / "data" / "chapters"
FIXTURE_REGISTRY = "tests.assignment_fixture:EXERCISES"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def environment() -> dict[str, str]:
    """The kernel nbgrader starts imports the fixture registry (tests/) and punchlab."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def between(source: str, begin: str, end: str) -> list[str]:
    """The non-blank lines between each pair of markers."""
    inside, found = False, []
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside and line.strip():
            found.append(line.strip())
    return found


def cells(notebook: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]]


@pytest.mark.slow
def test_the_committed_assignments_are_what_the_chapters_give() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, env=environment(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_nbgrader_releases_without_solutions_and_grades_reference_full_and_stub_zero(
    tmp_path: Path,
) -> None:
    course = tmp_path / "assignments"
    shutil.copytree(ROOT / "assignments", course)
    for leftover in ("gradebook.db", "release", "submitted", "autograded", "feedback"):
        assert not (course / leftover).exists(), f"assignments/{leftover} is committed"
    run(sys.executable, str(SCRIPT), "--chapters", str(FIXTURE_CHAPTERS),
        "--registry", FIXTURE_REGISTRY, "--out", str(tmp_path / "fixture"), cwd=ROOT)  # fmt: skip
    shutil.copytree(tmp_path / "fixture" / "source", course / "source", dirs_exist_ok=True)
    assignments = sorted(path.name for path in (course / "source").iterdir())
    assert "01-filtering-fixture" in assignments
    for name in sorted(ROOT.joinpath("assignments", "source").glob("*")):
        assert name.name in assignments

    nbgrader = str(BIN / "nbgrader")
    for assignment in assignments:
        source = course / "source" / assignment / f"{assignment}.ipynb"
        run(nbgrader, "generate_assignment", assignment, "--force", cwd=course)
        released = course / "release" / assignment / source.name
        release_text = "\n".join(cells(released))
        solutions = [line for text in cells(source) for line in between(text, *MARKERS)]
        hidden = [line for text in cells(source) for line in between(text, *HIDDEN)]
        assert solutions and hidden
        release_lines = {line.strip() for line in release_text.splitlines()}
        for line in solutions + hidden:
            if any(ch.isalnum() for ch in line):
                assert line not in release_lines, f"{assignment}: released with {line!r}"
        assert "BEGIN HIDDEN TESTS" not in release_text
        assert "raise NotImplementedError" in release_text

        for student, notebook in (("untouched", released), ("reference", source)):
            submitted = course / "submitted" / student / assignment
            submitted.mkdir(parents=True)
            shutil.copy(notebook, submitted / source.name)
        run(nbgrader, "autograde", assignment, "--create", "--force", cwd=course)

        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            scores = {}
            for student in ("reference", "untouched"):
                graded = gradebook.find_submission_notebook(assignment, assignment, student)
                scores[student] = {g.name: (g.score, g.max_score) for g in graded.grades}
        print(assignment, scores)
        assert len(scores["reference"]) >= 2  # a visible and a hidden test per exercise
        for name, (score, most) in scores["reference"].items():
            assert most > 0 and score == most, f"{assignment}: reference {name} {score}/{most}"
        for name, (score, most) in scores["untouched"].items():
            assert most > 0 and score == 0, f"{assignment}: untouched {name} {score}/{most}"
