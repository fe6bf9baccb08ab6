"""RFC 5780 discovery behind the kernel's real NATs: punchlab's and coturn's checkers and
servers, in every combination, agree with each other and with the NAT the lab built.

Needs root, iproute2, nftables and coturn; CI has them (PUNCHLAB_REQUIRE_NETLAB and
PUNCHLAB_REQUIRE_COTURN turn a skip into a failure).
"""

from __future__ import annotations

import asyncio

import pytest

from punchlab.cli import main
from punchlab.netlab import LAB_KINDS
from punchlab.netlab.natcheck import expected_behaviours, natcheck, read_coturn, read_punchlab
from tests.labguard import nothing_left_behind, require_lab  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.netlab

require_lab(
    "the lab natcheck", ("turnserver", "turnutils_natdiscovery"), ("PUNCHLAB_REQUIRE_COTURN",)
)


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
