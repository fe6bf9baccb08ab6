"""Birthday-paradox punching through the kernel's real symmetric NAT (masquerade random).

Needs root, iproute2, nftables and conntrack. Skipped only where they are
missing; CI sets PUNCHLAB_REQUIRE_NETLAB, which turns a skip into a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import random

import pytest

from punchlab.cli import build_parser, main
from punchlab.netlab.birthday import (
    PORT_RANGE,
    PORTS,
    BirthdayLab,
    BirthdayRun,
    _entries,
    formula,
    measure_birthday,
)
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.netlab

require_lab("the birthday measurement on the NAT lab", tools=("conntrack",))

K = 256


def test_the_formula_is_the_chance_one_of_n_uniform_probes_finds_one_of_k_ports() -> None:
    assert PORTS == 64512 and PORT_RANGE == (1024, 65535)
    assert formula(0, K) == 0.0
    assert formula(174, K) == pytest.approx(0.5, abs=0.01)
    assert formula(1024, K) == pytest.approx(0.983, abs=0.001)
    assert formula(1, PORTS) == 1.0


def test_birthday_runs_hit_a_real_hard_side_socket() -> None:
    """Each run misses all 1024 probes with chance (1 - 256/64512)^1024 = 1.7%; all
    three miss (the false failure of this test) with chance 0.017^3 = 5e-6."""
    result = measure_birthday(3, probes=(64, 174, 1024), open_ports=K, rate=0, seed=7)
    assert [r.number for r in result.runs] == [1, 2, 3]
    assert sum(h is not None for h in result.first_hits) >= 1
    for run in result.runs:
        # The hard NAT mapped every socket, each to its own port in the random range.
        assert len(run.mappings) == K
        assert len(set(run.mappings.values())) == K
        assert all(PORT_RANGE[0] <= port <= PORT_RANGE[1] for port in run.mappings.values())
        assert run.strays == 0
        if run.first_hit is None:
            assert run.probes_sent == 1024
            continue
        hit = run.hits[0]
        # A probe this run sent, received by one of this run's sockets, through the
        # outside port the kernel had mapped to exactly that socket.
        assert 1 <= hit.index <= 1024 and run.probes_sent == hit.index
        assert hit.socket_port in run.mappings
        assert run.mappings[hit.socket_port] == hit.probed_port
        assert hit.source == f"203.0.113.11:{run.easy_public_port}"
        assert all(run.hit_is_real(h) for h in run.hits)
    # Success at each count is read from the same runs, so it cannot fall as n grows.
    measured = [row[2] for row in result.rows()]
    assert measured == sorted(measured)
    assert measured[-1] == sum(h is not None for h in result.first_hits) / 3
    text = result.text()
    assert "probes | runs | measured | formula" in text and "1024-65535" in text
    assert f"{1024:>6} | {3:>4} |" in text and f"{formula(1024, K):.3f}" in text


def test_probes_that_avoid_every_mapped_port_never_hit() -> None:
    """Negative control: the same lab and k, once probing only ports the hard NAT's
    table shows unmapped (never a hit), once uniformly (a miss of all 4096 probes has
    chance (1 - 256/64512)^4096 = 8e-8). Both NATs' tables are flushed between runs."""

    async def both() -> tuple[
        BirthdayRun, BirthdayRun, list[tuple[dict[str, str], dict[str, str]]]
    ]:
        with BirthdayLab() as lab:
            rng = random.Random(3)
            control = await lab.arun(1, rng, open_ports=K, cap=4096, rate=0, avoid_mapped=True)
            uniform = await lab.arun(2, rng, open_ports=K, cap=4096, rate=0)
            table = _entries(lab.conntrack("b", "-L", "-p", "udp"))
        return control, uniform, table

    control, uniform, table = asyncio.run(both())
    assert control.first_hit is None and control.hits == ()
    assert control.probes_sent == 4096 and control.strays == 0
    assert len(control.mappings) == K
    assert uniform.first_hit is not None
    assert uniform.hit_is_real(uniform.hits[0])
    # The hard NAT holds the second run's k mappings and none of the first run's.
    assert len(table) == K
    assert {orig["dport"] for orig, _ in table} == {str(uniform.easy_public_port)}


def test_probes_are_paced() -> None:
    with BirthdayLab() as lab:
        run = asyncio.run(
            lab.arun(1, random.Random(0), open_ports=8, cap=100, rate=500.0, avoid_mapped=True)
        )
    assert run.first_hit is None and run.probing_seconds is not None
    assert run.probing_seconds >= 99 / 500  # the 100th probe leaves 99 intervals after the first


def test_cli_birthday_prints_progress_and_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "netlab",
            "birthday",
            "--runs",
            "2",
            "--rate",
            "0",
            "--probes",
            "10",
            "2048",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "[1/2] run 1:" in captured.err and "[2/2] run 2:" in captured.err
    assert "probes | runs | measured | formula" in captured.out
    assert "  2048 |    2 |" in captured.out and "1024-65535" in captured.out


def test_cli_birthday_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["netlab", "birthday", "--runs", "0"]) == 2
    assert "runs >= 1" in capsys.readouterr().err


def test_cli_birthday_help_says_every_default_and_the_port_range() -> None:
    parser = build_parser()
    for name in ("netlab", "birthday"):
        [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = commands.choices[name]
    assert "1024-65535" in (parser.description or "")
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help and "default" in action.help, action.option_strings
    assert callable(parser.get_default("handler"))
