"""``punchlab lab``: the course's notebooks in a folder of the student's, opened in JupyterLab.

A student who has only pip gets the course with ``pip install "punchlab[lab]"``
and ``punchlab lab``. The wheel carries the notebooks: the build maps the
repository's ``notebooks/*.ipynb`` into ``punchlab/notebooks/`` (see
pyproject.toml and setup.py), so nobody copies them by hand. In a source
checkout (an editable install) they are read from ``notebooks/`` itself.

The notebooks are copied into a working folder the first time; a notebook
already there is the student's and is never overwritten.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = [
    "DEFAULT_FOLDER",
    "INSTALL_HINT",
    "CopyReport",
    "CourseMissing",
    "copy_course",
    "course_notebooks",
    "jupyterlab_installed",
    "lab_command",
    "launch",
]

#: Where ``punchlab lab`` puts the course when given no folder (under the current one).
DEFAULT_FOLDER = "punchlab-course"
#: What to run when JupyterLab is missing.
INSTALL_HINT = 'pip install "punchlab[lab]"'


class CourseMissing(Exception):
    """The notebooks are not where an installed or checked-out punchlab keeps them."""


def course_notebooks() -> list[Traversable]:
    """The course's notebooks in reading order (their names start with the chapter number)."""
    packaged = importlib.resources.files("punchlab") / "notebooks"
    checkout = Path(__file__).resolve().parent.parent
    if packaged.is_dir():
        folder: Traversable = packaged
    elif (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        folder = checkout / "notebooks"  # an editable install: the checkout's own folder
    else:
        raise CourseMissing(f"no notebooks in {packaged}: reinstall with {INSTALL_HINT}")
    found = sorted((n for n in folder.iterdir() if n.name.endswith(".ipynb")), key=_name)
    if not found:
        raise CourseMissing(f"no notebooks in {folder}: reinstall with {INSTALL_HINT}")
    return found


def _name(notebook: Traversable) -> str:
    return notebook.name


@dataclass(frozen=True)
class CopyReport:
    """What ``copy_course`` did: which notebooks it copied and which it left alone."""

    folder: Path
    copied: list[str]
    kept: list[str]

    @property
    def first(self) -> str:
        """The notebook to open: chapter 1."""
        return min(self.copied + self.kept)

    def lines(self) -> list[str]:
        """What to tell the student, so they know where their work is."""
        said = []
        if self.copied:
            said.append(f"Copied {len(self.copied)} notebook(s) into {self.folder}")
        if self.kept:
            said.append(
                f"Kept your own {len(self.kept)} notebook(s) in {self.folder}, unchanged: "
                + ", ".join(self.kept)
                + " (delete one to get the original back)"
            )
        return said


def copy_course(folder: Path, notebooks: Sequence[Traversable] | None = None) -> CopyReport:
    """Copy the notebooks into ``folder`` (created if need be), never replacing a file there."""
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; name a folder for the course")
    folder.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for notebook in course_notebooks() if notebooks is None else notebooks:
        if _write_new(folder / notebook.name, notebook.read_bytes()):
            copied.append(notebook.name)
        else:
            kept.append(notebook.name)
    return CopyReport(folder, copied, kept)


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data``; False if it exists (it is the student's).

    Exclusive creation, so even a file that appears meanwhile is not
    overwritten; a copy that fails half-way is removed, else it would be kept
    as the student's on every later run.
    """
    try:
        out = path.open("xb")
    except FileExistsError:
        return False
    with out:
        try:
            out.write(data)
        except BaseException:
            out.close()
            path.unlink()
            raise
    return True


def jupyterlab_installed() -> bool:
    """Whether this Python environment can run JupyterLab (the ``lab`` extra)."""
    return importlib.util.find_spec("jupyterlab") is not None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(
    folder: Path, first: str, *, port: int | None, browser: bool, root: bool | None = None
) -> list[str]:
    """JupyterLab of this very environment, rooted at ``folder``, opening ``first``.

    JupyterLab refuses to run as root unless told (``--allow-root``), and
    containers, lab PCs' Linux shells and CI machines often are root.
    """
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not browser:
        command.append("--no-browser")
    if _is_root() if root is None else root:
        command.append("--allow-root")
    command.append(str(folder / first))
    return command


def launch(command: Sequence[str]) -> int:
    """Run ``command`` in place of this process where the system can (POSIX).

    Then Ctrl-C, a terminal closing or a ``kill`` reach JupyterLab itself, not
    a parent that would leave it running. Elsewhere (Windows) it runs as a
    child: Ctrl-C reaches both, and JupyterLab decides when to stop.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(command[0], list(command))
    child = subprocess.Popen(list(command))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue
