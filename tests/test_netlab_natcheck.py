"""RFC 5780 discovery behind the kernel's real NATs: punchlab's and coturn's checkers and
servers, in every combination, agree with each other and with the NAT the lab built.

Needs root, iproute2, nftables and coturn; CI has them (PUNCHLAB_REQUIRE_NETLAB and
PUNCHLAB_REQUIRE_COTURN turn a skip into a failure).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest

from punchlab.cli import main
from punchlab.netlab import LAB_KINDS, cleanup_leftovers, namespaces
from punchlab.netlab.natcheck import expected_behaviours, natcheck, read_coturn, read_punchlab
from punchlab.netlab.system import PREFIX, lab_problems

pytestmark = pytest.mark.netlab

PROBLEMS = lab_problems()
if shutil.which("turnserver") is None or shutil.which("turnutils_natdiscovery") is None:
    PROBLEMS.append("needs coturn (turnserver, turnutils_natdiscovery)")
if PROBLEMS:
    if os.environ.get("PUNCHLAB_REQUIRE_NETLAB") or os.environ.get("PUNCHLAB_REQUIRE_COTURN"):
        pytest.fail("the lab natcheck cannot run: " + "; ".join(PROBLEMS), pytrace=False)
    pytest.skip("the lab natcheck " + "; ".join(PROBLEMS), allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    yield
    leftovers = [n for n in namespaces() if n.startswith(f"{PREFIX}{os.getpid()}-")]
    cleanup_leftovers(f"{PREFIX}{os.getpid()}-")
    assert leftovers == []


@pytest.mark.parametrize("kind", LAB_KINDS)
def test_both_checkers_against_both_servers_agree_with_the_real_nat(kind: str) -> None:
    results = asyncio.run(natcheck(kind))
    assert {(r.client, r.server) for r in results} == {
        (c, s) for c in ("punchlab", "coturn") for s in ("punchlab", "coturn")
    }
    for result in results:
        assert result.agrees, result.summary() + "\n" + result.output


def test_the_command_prints_each_answer_and_exits_0_when_all_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    arguments = ["netlab", "natcheck", "--nat", "symmetric", "--client", "punchlab", "coturn"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert out.count("(agrees)") == 2
    assert "mapping address-and-port-dependent, filtering address-and-port-dependent" in out


def test_the_outputs_are_read_as_the_programs_print_them() -> None:
    coturn = "NAT with Address Dependent Mapping!\nNAT with Endpoint Independent Filtering!\n"
    assert read_coturn(coturn) == ("address-dependent", "endpoint-independent")
    assert read_coturn("No NAT! (Endpoint Independent Mapping)\n")[0] == "endpoint-independent"
    assert read_punchlab("mapping: unknown\nfiltering: address-dependent (RFC)") == (
        None,
        "address-dependent",
    )
    assert expected_behaviours("symmetric") == ("address-and-port-dependent",) * 2
