"""The lab's nftables rules as text, checked without root (the lab tests need root).

Each kind's rule set is compared with a reviewed copy in tests/data/nat_rules:
a change to the rules (losing ``random`` from the symmetric NAT, say) shows
here on any machine, not only where the real lab runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from punchlab.netlab.nat_rules import LAB_KINDS, ruleset

GOLDEN = Path(__file__).parent / "data" / "nat_rules"


@pytest.mark.parametrize("kind", LAB_KINDS[1:])
def test_each_kinds_rules_are_the_reviewed_ones(kind: str) -> None:
    rules = ruleset(
        kind, outside="nat-a-out", inside="nat-a-in", inside_host="10.0.1.2", timeout=30
    )
    assert rules == (GOLDEN / f"{kind}.nft").read_text()


def test_only_the_symmetric_nat_picks_random_ports() -> None:
    for kind in LAB_KINDS[1:]:
        rules = ruleset(kind, outside="o", inside="i", inside_host="10.0.1.2", timeout=30)
        assert ("masquerade random" in rules) is (kind == "symmetric")


@pytest.mark.parametrize("kind", ["none", "carrier-grade", ""])
def test_a_kind_without_rules_is_a_clear_error(kind: str) -> None:
    with pytest.raises(ValueError, match="no NAT rules"):
        ruleset(kind, outside="o", inside="i", inside_host="10.0.1.2", timeout=30)
