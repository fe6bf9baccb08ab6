"""How long every notebook takes to execute, from a fresh kernel each.

The baseline, measured in the same run, is an empty notebook: what starting a
kernel costs by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run(notebook: nbformat.NotebookNode) -> float:
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    baseline = run(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    figures: dict[str, float] = {"empty_notebook_s": baseline}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        # Live cells (a teacher's LAN) are skipped, as nbval skips them.
        notebook.cells = [c for c in notebook.cells if "# NBVAL_SKIP" not in c.source]
        figures[path.stem] = run(notebook)
        print(f"{path.name:28} {figures[path.stem]:6.2f} s", flush=True)
    total = sum(v for k, v in figures.items() if k != "empty_notebook_s")
    figures["total_s"] = total
    count = len(figures) - 2
    print(
        f"total {total:.1f} s for {count} notebooks; an empty notebook takes {baseline:.2f} s "
        f"(kernel start), so {total - count * baseline:.1f} s is the notebooks' own work"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
