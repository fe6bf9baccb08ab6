"""Make each notebook from its paired text file, run it, and store the outputs nbval checks.

A chapter's source is ``notebooks/NN-name.py`` (jupytext, percent format),
paired with ``notebooks/NN-name.ipynb`` by the ``jupytext.formats`` entry in
both files' metadata. Edit the ``.py`` file (or the notebook in JupyterLab,
which jupytext keeps paired), then run ``make notebooks``: this script gives
each ``.ipynb`` the cells of its ``.py``, runs them and writes the notebook
with its outputs. The outputs are deterministic (seeded simulations,
step-mode sessions, no wall-clock values) and so is the rest of the file:
cell ids, widget ids and no execution timestamps, so rebuilding an unchanged
notebook changes nothing in git.

    python scripts/execute_notebooks.py [NN-name ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from punchlab.classroom import SERVER_ENV

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

#: The pairing every notebook declares, in its ``.ipynb`` and its ``.py``.
FORMATS = "ipynb,py:percent"

#: Where nbformat keeps the widgets' state, and how an output shows a widget.
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """What the pairing keeps equal: each cell's type and source, in order."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def read(path: Path) -> nbformat.NotebookNode:
    """A stored notebook (nbformat has no type hints)."""
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return notebook


def from_source(source: Path) -> nbformat.NotebookNode:
    """The notebook the text file describes, with ids that stay the same from one run to the next.

    Refuses when the ``.ipynb`` was saved after its ``.py`` with other cells:
    those edits would be lost (``jupytext --sync`` carries them to the ``.py``).
    """
    notebook: nbformat.NotebookNode = jupytext.read(source)
    pairing = notebook.metadata.get("jupytext", {})
    if pairing.get("formats") != FORMATS:
        raise SystemExit(f"{source}: its header must pair it, with `formats: {FORMATS}`")
    pairing.pop("text_representation", None)
    stored = source.with_suffix(".ipynb")
    newer = stored.exists() and stored.stat().st_mtime > source.stat().st_mtime
    if newer and cells(read(stored)) != cells(notebook):
        raise SystemExit(
            f"{stored} has edits that {source.name} lacks: run "
            f"`jupytext --sync {stored}` to carry them there, or touch {source.name} "
            "to drop them"
        )
    notebook.metadata["language_info"] = {"name": "python"}  # the kernel fills in the rest
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem[:2]}-{index:02d}"
    return notebook


def execute(notebook: nbformat.NotebookNode) -> None:
    """Run every cell but the ``# NBVAL_SKIP`` ones, without recording when each ran."""
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        skip_cells_with_tag="nbval-skip",
        record_timing=False,  # timestamps would change every stored notebook on every run
    )
    skipped = [c for c in notebook.cells if c.cell_type == "code" and "# NBVAL_SKIP" in c.source]
    for cell in skipped:
        cell.metadata.setdefault("tags", []).append("nbval-skip")
    client.execute()
    for cell in skipped:
        cell.metadata["tags"].remove("nbval-skip")
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]


def stable_widget_ids(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Replace the kernel's random widget ids by ids derived from the notebook's name.

    A widget's id is a fresh UUID in every kernel; stored as it is, rerunning
    an unchanged notebook would change it in git. Widgets are made in the same
    order every run, so the n-th one gets the same id every time.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    ids = list(state)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            model_id = output.get("data", {}).get(WIDGET_VIEW, {}).get("model_id")
            if model_id is not None and model_id not in ids:
                ids.append(model_id)
    stable = {
        old: hashlib.sha256(f"punchlab/{name}/{n}".encode()).hexdigest()[:32]
        for n, old in enumerate(ids)
    }
    text = json.dumps(notebook)
    text = re.sub(
        r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", lambda m: stable.get(m.group(), m.group()), text
    )
    stabilised: nbformat.NotebookNode = nbformat.from_dict(json.loads(text))  # type: ignore[no-untyped-call]
    return stabilised


def run(names: list[str]) -> None:
    """Make, run and write the named notebooks (all of them when none is named)."""
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))
    unknown = set(names) - {source.stem for source in sources}
    if unknown:
        raise SystemExit(f"no notebooks/NAME.py for {', '.join(sorted(unknown))}")
    # The stored outputs are those of a machine with no class: each notebook's own server.
    os.environ.pop(SERVER_ENV, None)
    notebooks = [(source, from_source(source)) for source in sources]  # refuse before running
    for source, notebook in notebooks:
        if names and source.stem not in names:
            continue
        execute(notebook)
        path = source.with_suffix(".ipynb")
        nbformat.write(stable_widget_ids(notebook, source.stem), path)  # type: ignore[no-untyped-call]
        print(f"wrote {path.relative_to(NOTEBOOKS.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("names", nargs="*", metavar="NN-name", help="only these notebooks")
    run(parser.parse_args().names)


if __name__ == "__main__":
    main()
