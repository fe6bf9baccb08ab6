"""The README's Python examples must run as printed and say what the README shows."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


async def run_block(block: str, **given: object) -> None:
    namespace: dict[str, object] = dict(given)
    exec("async def example():\n" + textwrap.indent(block, "    "), namespace)
    await namespace["example"]()  # type: ignore[operator]


async def test_the_asyncio_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [block] = [b for b in python_blocks() if "punchlab.aio" in b]
    await run_block(block)
    out = capsys.readouterr().out
    assert out.startswith("hello\n")
    assert "SUCCESS" in out and "TEXT" in out


async def test_the_simulator_example_prints_what_the_readme_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [block] = [b for b in python_blocks() if "punchlab.sim" in b]
    await run_block(block)
    out = capsys.readouterr().out
    after = README.read_text().split(block, 1)[1]
    shown = re.match(r"```\n\s*```\n(.*?)```", after, flags=re.S)
    assert shown is not None, "the README shows no output after the example"
    lines = shown.group(1).splitlines()
    assert len(lines) > 10
    for line in lines:
        if line != "...":
            assert line in out, f"README shows {line!r}, the example printed:\n{out}"


async def test_the_diagram_example_draws_on_a_trace() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from punchlab.sim import punch

    [block] = [b for b in python_blocks() if "punchlab.diagram" in b]
    result = punch("full-cone", "full-cone")
    plt.close("all")
    try:
        await run_block(block, trace=result.trace, peer=result.network.peers[0])
        assert len(plt.get_fignums()) == 3
    finally:
        plt.close("all")
