"""`make bench` must keep working: each benchmark, at a tiny size, writes coherent figures.

Speed itself is not asserted here (that would be a timed test); these check
that every benchmark runs, measures its baseline and writes what the README
summarises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(name: str, args: list[str], tmp_path: Path) -> dict[str, float]:
    """Run ``bench/<name>.py`` as ``make bench`` does, and read the JSON it writes."""
    out = tmp_path / f"{name}.json"
    command = [sys.executable, str(BENCH / f"{name}.py"), *args, "--json", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip()  # the figures are printed, not only written
    figures: dict[str, float] = json.loads(out.read_text())
    return figures


def test_connect_time_measures_loopback_and_the_simulator_in_rtts(tmp_path: Path) -> None:
    figures = run(
        "connect_time", ["--tries", "3", "--original-tries", "0", "--sim-runs", "3"], tmp_path
    )
    assert figures["punchlab_p95_ms"] >= figures["punchlab_median_ms"] > 0
    assert figures["baseline_loopback_rtt_ms"] > 0
    assert figures["sim_rtt_ms"] == pytest.approx(44.0)  # 1 + 20 + 1 ms each way
    # Registration is done before the clock starts: the request, the
    # introduction and the HELLOs take about two round trips, never less than one.
    assert 1.0 < figures["sim_median_in_rtt"] < 4.0


@pytest.mark.slow
def test_server_bench_measures_both_baselines_and_the_load(tmp_path: Path) -> None:
    args = ["--seconds", "0.2", "--rounds", "1", "--peers", "40", "--introductions", "10"]
    figures = run("server_bench", args, tmp_path)
    rates = ("echo_datagrams_per_s", "registrations_per_s", "bare_aiohttp_per_s")
    for rate in (*rates, "start_communication_per_s"):  # each window measured something
        assert figures[rate] > 0
    assert figures["registrations_vs_echo"] == pytest.approx(
        figures["registrations_per_s"] / figures["echo_datagrams_per_s"]
    )
    assert figures["load_registered"] == 40 and figures["load_failures"] == 0
    assert figures["introductions_ok"] == figures["introductions"] == 10
    assert 0 < figures["memory_bytes_per_peer"] < 2048


def test_sim_scale_connects_every_pair(tmp_path: Path) -> None:
    figures = run("sim_scale", ["--pairs", "20"], tmp_path)
    assert figures["connected_pairs"] == figures["pairs"] == 20
    assert figures["baseline_events_per_second"] > 0


def test_routes_measures_every_rung_against_direct(tmp_path: Path) -> None:
    figures = run("routes", ["--seeds", "2", "--repeats", "2"], tmp_path)
    routes: dict[str, dict[str, float]] = figures["routes"]  # type: ignore[assignment]
    assert set(routes) == {"direct", "peer-reflexive", "predicted", "birthday", "relayed"}
    for name, route in routes.items():
        assert route["took_expected_route"] == route["connected"] == 2, name
        assert route["p90_ms"] >= route["median_ms"] > 0
        assert route["median_datagrams"] > 0
    assert routes["direct"]["time_vs_direct"] == routes["direct"]["datagrams_vs_direct"] == 1.0
    speed: dict[str, float] = figures["speed"]  # type: ignore[assignment]
    assert speed["events_per_punch"] > 0 and speed["bare_events_per_second"] > 0


def test_reliable_chat_measures_acks_against_plain_text(tmp_path: Path) -> None:
    figures = run("reliable_chat", ["--seeds", "2", "--lines", "20"], tmp_path)
    assert figures["acked_arrived_mean"] == 20 and figures["acked_in_order_once"] == 2
    assert figures["baseline_arrived_mean"] < 20  # 30% loss, nothing resent
    assert figures["baseline_datagrams_per_line"] == 1.0
    assert figures["ratio_datagrams_per_line"] > 1.0
