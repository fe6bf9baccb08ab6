"""What a newcomer relies on: Binder files, README links, notebooks in step with their source."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chapters_links_to_other_chapters_lead_somewhere(path: Path) -> None:
    text = path.with_suffix(".py").read_text()
    for target in re.findall(r"\]\(([0-9]{2}-[^)#]+\.ipynb)", text):
        assert (ROOT / "notebooks" / target).exists(), f"{path.name} links to {target}"


def test_make_lab_opens_an_existing_notebook() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"jupyter lab .*?(\S+\.ipynb)", makefile)
    assert target is not None and (ROOT / target.group(1)).exists()


def test_every_notebook_is_paired_with_a_percent_format_source() -> None:
    sources = sorted((ROOT / "notebooks").glob("*.py"))
    assert [path.stem for path in sources] == [path.stem for path in NOTEBOOKS]
    for path in NOTEBOOKS:
        pairing = nbformat.read(path, as_version=4).metadata.get("jupytext", {})
        assert pairing.get("formats") == "ipynb,py:percent", path.name
        source = jupytext.read(path.with_suffix(".py")).metadata.get("jupytext", {})
        assert source.get("formats") == "ipynb,py:percent", path.with_suffix(".py").name
        assert source["text_representation"]["format_name"] == "percent"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_has_the_cells_of_its_source(path: Path) -> None:
    stored = nbformat.read(path, as_version=4).cells
    source = jupytext.read(path.with_suffix(".py")).cells
    assert [(cell.cell_type, cell.source) for cell in stored] == [
        (cell.cell_type, cell.source) for cell in source
    ], f"{path.name} differs from {path.stem}.py: run `make notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_has_stored_outputs_unless_marked_live(path: Path) -> None:
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or "# NBVAL_SKIP" in cell.source:
            continue
        assert cell.execution_count is not None, f"{path.name}: run `make notebooks`"


# -- what pip builds and installs ------------------------------------------------------


def test_every_package_ships_and_the_notebooks_are_mapped_into_one() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "punchlab").rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == found | {"punchlab.notebooks"}
    assert setuptools["package-dir"] == {"punchlab.notebooks": "notebooks"}
    # The lab's recorded birthday runs, which notebook 10 draws (punchlab/data/).
    assert setuptools["package-data"] == {
        "punchlab.notebooks": ["*.ipynb"],
        "punchlab": ["data/*.json"],
    }
    assert list((ROOT / "punchlab" / "data").glob("*.json"))


def test_the_license_is_an_spdx_expression_setuptools_reads_without_warning() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"  # a table is deprecated since setuptools 77
    [setuptools] = [r for r in PYPROJECT["build-system"]["requires"] if "setuptools" in r]
    assert re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert int(setuptools.split(">=")[1]) >= 77


@pytest.mark.parametrize(
    "path", ["notebooks/.ipynb_checkpoints/01-x-checkpoint.ipynb", ".ipynb_checkpoints/a.ipynb"]
)
def test_jupyter_checkpoints_are_ignored(path: str) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False, timeout=30
    )
    assert ignored.returncode == 0, f"{path} is not ignored"


def test_the_readme_shows_students_pip_first_and_contributors_make_lab() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    install = setup.find('pip install "punchlab[lab]"')
    assert 0 <= install < setup.find("punchlab lab") < setup.find("make lab")
    assert "Linux" in setup and "root" in setup  # real NATs: said before anyone tries


def test_the_readme_says_why_nest_asyncio_is_not_needed() -> None:
    section = re.search(r"\n## [^\n]*asyncio[^\n]*\n(.*?)\n## ", README, flags=re.S)
    assert section is not None, "no section on asyncio in the README"
    assert "nest-asyncio" in section.group(1) and "asyncio.run" in section.group(1)


#: What the wheel is built from: what a release's sdist holds.
SOURCES = ["pyproject.toml", "setup.py", "README.md", "punchlab", "notebooks"]
INSTALL_SECONDS = 480
LAB_SECONDS = 120


def build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """Build the wheel from a clean copy of the sources, as pip does; return it and the log."""
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_SECONDS,
    )
    log = built.stdout + built.stderr
    assert built.returncode == 0, log
    [wheel] = dist.glob("punchlab-*.whl")
    return wheel, log


def install(wheel: Path, venv: Path) -> Path:
    """A fresh virtual environment with the wheel and its 'lab' extra; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[lab]"],
        check=True,
        timeout=INSTALL_SECONDS,
    )
    return bin_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_notebook(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """Poll JupyterLab's contents API until it serves ``url``; fail on exit or deadline."""
    deadline = time.monotonic() + LAB_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"punchlab lab exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    model: dict[str, str] = json.load(answer)
                    return model
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not serve {url} in {LAB_SECONDS} s:\n{log.read_text()}")


@pytest.mark.slow
@pytest.mark.timeout(2 * INSTALL_SECONDS + LAB_SECONDS + 60)
def test_a_student_with_only_pip_gets_the_course(tmp_path: Path) -> None:
    wheel, build_log = build_wheel(tmp_path)
    deprecations = [
        line
        for line in build_log.splitlines()
        if "deprecat" in line.lower() and not line.startswith("DEPRECATION:")  # pip's own
    ]
    assert deprecations == [], build_log
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("punchlab/notebooks/"))
    assert shipped == [f"punchlab/notebooks/{path.name}" for path in NOTEBOOKS]
    assert "punchlab/data/netlab_birthday.json" in names  # notebook 10 reads it

    bin_dir = install(wheel, tmp_path / "venv")
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    token, port = "punchlab-test-token", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HOME": str(home), "USERPROFILE": str(home), "JUPYTER_TOKEN": token}
    log = tmp_path / "lab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(bin_dir / "punchlab"), "lab", "course", "--no-browser", "--port", str(port)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # JupyterLab and its kernels: one group to stop
        )
    try:
        first = NOTEBOOKS[0].name
        url = f"http://127.0.0.1:{port}/api/contents/{first}?content=0&token={token}"
        model = wait_for_notebook(url, process, log)
        assert model["type"] == "notebook" and model["name"] == first
        assert f"Copied {len(NOTEBOOKS)} notebook(s) into {work / 'course'}" in log.read_text()
        assert sorted(p.name for p in (work / "course").iterdir()) == [p.name for p in NOTEBOOKS]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
