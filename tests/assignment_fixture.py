"""An exercise registry for the fixture chapter in tests/data/chapters/ (test_assignments.py).

The same shape as punchlab.exercises: EXERCISES holds factories by id,
REFERENCES the reference solutions, each named as the student's function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from punchlab.course import Exercise, filtering_exercise
from punchlab.messages import Address


def allows(filtering: str, contacted: set[Address], source: Address) -> bool:
    """RFC 4787 section 5, written out."""
    if filtering == "endpoint-independent":
        return True
    if filtering == "address-dependent":
        return source[0] in {address for address, _ in contacted}
    return source in contacted


EXERCISES: dict[str, Callable[[], Exercise]] = {"01-filtering": filtering_exercise}
REFERENCES: dict[str, Callable[..., Any]] = {"01-filtering": allows}
