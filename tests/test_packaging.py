"""What a newcomer relies on: Binder files, README links, notebooks in step with their source."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_binder_installs_this_commit_of_the_package() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert any(line == "." or line.startswith(".[") for line in lines), lines


def test_binder_python_satisfies_the_package() -> None:
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, runtime
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"])
    assert minimum is not None
    assert tuple(map(int, match.groups())) >= tuple(map(int, minimum.groups()))


def test_the_binder_badge_opens_the_first_notebook() -> None:
    badge = re.search(r"mybinder\.org/v2/gh/[^)]*urlpath=lab/tree/([^)\s]+)", README)
    assert badge is not None
    assert (ROOT / badge.group(1)).exists()
    assert badge.group(1) == f"notebooks/{NOTEBOOKS[0].name}"


def test_the_readme_links_every_notebook_and_nothing_else() -> None:
    linked = set(re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", README))
    assert linked == {f"notebooks/{path.name}" for path in NOTEBOOKS}
    assert len(NOTEBOOKS) >= 7


def test_make_lab_opens_an_existing_notebook() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"jupyter lab .*?(\S+\.ipynb)", makefile)
    assert target is not None and (ROOT / target.group(1)).exists()


def test_the_notebooks_match_their_source_in_build_py() -> None:
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        import build
    finally:
        sys.path.pop(0)
    assert sorted(build.NOTEBOOKS) == [path.stem for path in NOTEBOOKS]
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        stored = [(cell.cell_type, cell.source) for cell in cells]
        assert stored == build.NOTEBOOKS[path.stem], f"{path.name}: run `make notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_has_stored_outputs_unless_marked_live(path: Path) -> None:
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or "# NBVAL_SKIP" in cell.source:
            continue
        assert cell.execution_count is not None, f"{path.name}: run `make notebooks`"
