"""The birthday method's odds, measured by punching through the simulator's NAT model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from punchlab.sim import BirthdayCurve, NatBox, birthday_curve, birthday_formula, nat_config
from punchlab.sim.birthday import EASY_ENDPOINT, PORT_RANGE

EASY_IP, EASY_PORT = EASY_ENDPOINT
#: The easy side's address, another port: what a port-dependent filter refuses.
EASY_OTHER_PORT = (EASY_IP, EASY_PORT + 1)
#: Another address altogether: what an address-dependent filter refuses too.
STRANGER = ("192.0.2.50", EASY_PORT)

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_the_port_range_is_the_nats_own() -> None:
    assert PORT_RANGE == 65536 - NatBox.FIRST_PORT == 64512


def test_formula_gives_tailscales_figures() -> None:
    # 256 open ports: about even odds after 174 probes, about 98% after 1,024.
    assert birthday_formula(256, 174, 64512) == pytest.approx(0.50, abs=0.005)
    assert birthday_formula(256, 1024, 64512) == pytest.approx(0.983, abs=0.002)
    assert birthday_formula(256, 0, 64512) == 0.0
    assert birthday_formula(1, 1, 64512) == pytest.approx(1 / 64512)
    assert birthday_formula(64512, 1, 64512) == 1.0


@pytest.mark.slow
def test_measured_odds_match_the_formula_within_two_points() -> None:
    """The issue's acceptance: 10,000 simulated punches against 1 - (1 - k/N)^n."""
    curve = birthday_curve(256, (174, 1024), trials=10_000, seed=0)
    for n, measured, expected in zip(curve.probes, curve.success, curve.formula(), strict=True):
        assert abs(measured - expected) <= 0.02, (n, measured, expected)


def test_success_reads_every_probe_count_from_the_same_trials() -> None:
    curve = birthday_curve(256, (1024, 10, 174), trials=300, seed=1)
    assert curve.probes == (1024, 10, 174)
    assert len(curve.first_hits) == curve.trials == 300
    assert all(hit is None or 1 <= hit <= 1024 for hit in curve.first_hits)
    for n, rate in zip(curve.probes, curve.success, strict=True):
        hits = sum(1 for hit in curve.first_hits if hit is not None and hit <= n)
        assert rate == hits / 300
    assert curve.success[1] <= curve.success[2] <= curve.success[0]
    assert curve.success[0] > 0.9  # the formula says 98%: a broken NAT path would show


def test_formula_and_text_sit_beside_the_measurement() -> None:
    curve = birthday_curve(trials=50, seed=0)
    assert curve.formula() == (
        birthday_formula(256, 174, PORT_RANGE),
        birthday_formula(256, 1024, PORT_RANGE),
    )
    lines = curve.text().splitlines()
    assert "256 open ports among 64,512, 50 trials (seed 0)" in lines[0]
    assert lines[1].split() == ["probes", "measured", "formula", "difference"]
    assert lines[2].split()[0] == "174" and lines[3].split()[0] == "1,024"
    assert lines[2].endswith("pp") and "49.94%" in lines[2]


def test_same_seed_same_curve_other_seed_other_trials() -> None:
    first = birthday_curve(trials=200, seed=7)
    assert birthday_curve(trials=200, seed=7) == first
    other = birthday_curve(trials=200, seed=8)
    assert other.first_hits != first.first_hits


def test_asking_the_nat_about_every_probe_changes_nothing() -> None:
    """Only probes to a mapped port go to NatBox.inbound; the others would be dropped anyway."""
    fast = birthday_curve(trials=100, seed=2)
    assert birthday_curve(trials=100, seed=2, ask_every_probe=True) == fast


def test_an_open_filter_lets_in_every_probe_that_lands_on_a_mapping() -> None:
    # Symmetric: each mapping contacted the easy endpoint, so a probe from there
    # gets in exactly when it lands on a mapped port. With endpoint-independent
    # filtering (same mapping and random allocation, so the same ports) a probe
    # from a stranger gets in on the same probes: the same first hits.
    symmetric = birthday_curve(trials=200, seed=3)
    open_filter = birthday_curve(
        trials=200, seed=3, nat="APDM/EIF", probe_from=STRANGER, ask_every_probe=True
    )
    assert open_filter.first_hits == symmetric.first_hits
    assert symmetric.success[-1] > 0.9


def test_the_nats_filter_decides_which_probes_get_in() -> None:
    symmetric = birthday_curve(trials=200, seed=4)
    assert symmetric.success[-1] > 0.9
    # An address-dependent filter: any port of the contacted address gets in,
    # another address never does.
    same_address = birthday_curve(trials=200, seed=4, nat="APDM/ADF", probe_from=EASY_OTHER_PORT)
    assert same_address.first_hits == symmetric.first_hits
    other_address = birthday_curve(trials=200, seed=4, nat="APDM/ADF", probe_from=STRANGER)
    assert other_address.first_hits == (None,) * 200
    assert other_address.success == (0.0, 0.0)
    # The symmetric NAT's port-dependent filter refuses the easy side's other port.
    other_port = birthday_curve(trials=200, seed=4, probe_from=EASY_OTHER_PORT)
    assert set(other_port.first_hits) == {None}


def test_expired_mappings_let_no_probe_in() -> None:
    # The probes start 0.1 s after the mappings were made: past this NAT's timeout.
    curve = birthday_curve(trials=100, seed=5, nat=nat_config("symmetric", timeout=0.05))
    assert curve.success == (0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"open_ports": 0}, "open_ports"),
        ({"open_ports": PORT_RANGE}, "open_ports"),
        ({"open_ports": 2.5}, "open_ports"),
        ({"probes": ()}, "probe count"),
        ({"probes": (174, 0)}, "probe count"),
        ({"probes": (-3,)}, "probe count"),
        ({"trials": 0}, "trials"),
        ({"nat": "no-such-nat"}, "unknown NAT kind"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        birthday_curve(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("open_ports", "probes", "port_range"), [(-1, 10, 100), (101, 10, 100), (1, -1, 100), (0, 1, 0)]
)
def test_formula_refuses_impossible_arguments(
    open_ports: int, probes: int, port_range: int
) -> None:
    with pytest.raises(ValueError):
        birthday_formula(open_ports, probes, port_range)


def test_bench_prints_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "birthday_curve.json"
    command = [sys.executable, str(BENCH / "birthday_curve.py"), "--trials", "50"]
    completed = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ratio" in completed.stdout
    figures = json.loads(out.read_text())
    assert figures["trials"] == 50
    assert figures["wall_seconds"] > 0 and figures["baseline_seconds"] > 0
    assert figures["ratio"] == pytest.approx(figures["wall_seconds"] / figures["baseline_seconds"])


def test_the_curve_is_a_frozen_record() -> None:
    curve = birthday_curve(trials=10, seed=0)
    assert isinstance(curve, BirthdayCurve)
    with pytest.raises(AttributeError):
        curve.trials = 11  # type: ignore[misc]
