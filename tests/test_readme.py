"""The README's Python example must run as printed."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


async def test_the_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [example] = python_blocks()
    namespace: dict[str, object] = {}
    exec("async def example():\n" + textwrap.indent(example, "    "), namespace)
    await namespace["example"]()  # type: ignore[operator]
    out = capsys.readouterr().out
    assert out.startswith("hello\n")
    assert "SUCCESS" in out and "TEXT" in out
