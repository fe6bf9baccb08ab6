"""Colours readers with a colour-vision deficiency can tell apart, and words that do not need them.

Each colour is passed through Machado, Oliveira & Fernandes' (2009) simulation
of protanopia, deuteranopia and tritanopia (severity 1) and compared in CIELAB:
a difference (Delta E 1976) under about 10 is hard to see at a glance.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle

from punchlab.diagram import DROP_COLOUR, TYPE_COLOURS, matrix_diagram

SIMULATIONS = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
}
SRGB_TO_XYZ = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
WHITE = np.array([0.95047, 1.0, 1.08883])


def seen_as(colour: str | tuple[float, ...], vision: str) -> np.ndarray:
    """CIELAB of ``colour`` as someone with ``vision`` sees it."""
    srgb = np.array(to_rgb(colour))
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    simulated = np.clip(np.array(SIMULATIONS[vision]) @ linear, 0.0, 1.0)
    xyz = np.array(SRGB_TO_XYZ) @ simulated / WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def difference(a: str | tuple[float, ...], b: str | tuple[float, ...], vision: str) -> float:
    return float(np.linalg.norm(seen_as(a, vision) - seen_as(b, vision)))


@pytest.mark.parametrize("vision", SIMULATIONS)
def test_message_types_and_drops_stay_apart_without_full_colour_vision(vision: str) -> None:
    colours = {*TYPE_COLOURS.values(), DROP_COLOUR}
    closest = min(difference(a, b, vision) for a, b in itertools.combinations(colours, 2))
    assert closest > 12, f"two colours of the diagram look alike with {vision}"


def test_the_red_green_palette_would_fail_this_test() -> None:
    """The check has teeth: the old green SUCCESS and orange HELLO merge for a protanope."""
    assert difference("#2ca02c", "#ff7f0e", "protanopia") < 12


@dataclass(frozen=True)
class Table:
    """DESIGN.md's matrix for punchlab's algorithm (a stand-in for MatrixResult)."""

    kinds: tuple[str, ...] = (
        "none",
        "full-cone",
        "restricted-cone",
        "port-restricted-cone",
        "symmetric",
    )

    def connected(self, a: str, b: str) -> bool:
        hard = {"port-restricted-cone", "symmetric"}
        return not (a in hard and b in hard and "symmetric" in (a, b))


def test_the_matrix_says_yes_or_no_in_every_cell() -> None:
    table = Table()
    ax = matrix_diagram(table, title="punchlab")
    words = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    for i, a in enumerate(table.kinds):
        for j, b in enumerate(table.kinds):
            assert words[(i, j)] == ("yes" if table.connected(a, b) else "no")
    plt.close("all")


@pytest.mark.parametrize("vision", SIMULATIONS)
def test_the_matrix_cells_yes_and_no_differ_without_full_colour_vision(vision: str) -> None:
    ax = matrix_diagram(Table())
    cells = [
        p
        for p in ax.patches
        if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("cell:")
    ]
    yes = {p.get_facecolor()[:3] for p in cells if not p.get_hatch()}
    no = {p.get_facecolor()[:3] for p in cells if p.get_hatch()}
    assert len(yes) == len(no) == 1, "one look for yes, another (hatched) for no"
    assert difference(yes.pop(), no.pop(), vision) > 40
    plt.close("all")


def test_red_and_green_heat_map_ends_would_fail_this_test() -> None:
    red_to_green = matplotlib.colormaps["RdYlGn"]
    assert difference(red_to_green(0.0)[:3], red_to_green(1.0)[:3], "deuteranopia") < 40
