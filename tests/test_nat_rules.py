"""The lab's nftables rules as text, checked without root (the lab tests need root).

Each kind's rule set is compared with a reviewed copy in tests/data/nat_rules:
a change to the rules (losing ``random`` from the symmetric NAT, say) shows
here on any machine, not only where the real lab runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from punchlab.netlab.hairpin import lan_nat_problem, lan_ruleset
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


LAN_CASES = [("port-restricted-cone", False), ("port-restricted-cone", True), ("symmetric", False)]


@pytest.mark.parametrize(("kind", "hairpin"), LAN_CASES)
def test_a_lan_nats_rules_are_the_reviewed_ones(kind: str, hairpin: bool) -> None:
    rules = lan_ruleset(
        kind, outside="out0", lan="lan0", public="203.0.113.11", hairpin=hairpin, timeout=120
    )
    name = f"lan-{kind}{'-hairpin' if hairpin else ''}.nft"
    assert rules == (GOLDEN / name).read_text()


def test_only_a_hairpinning_lan_nat_turns_datagrams_to_its_own_address_round() -> None:
    for kind, hairpin in LAN_CASES:
        rules = lan_ruleset(
            kind, outside="o", lan="l", public="192.0.2.1", hairpin=hairpin, timeout=9
        )
        assert ("dnat to udp dport map @owners" in rules) is hairpin
        # What is turned round leaves from the NAT's public address, and nothing else is.
        assert ('oifname "l" ct status dnat meta l4proto udp snat to 192.0.2.1' in rules) is hairpin


@pytest.mark.parametrize(
    ("kind", "hairpin", "why"),
    [
        ("full-cone", False, "one named inside host"),
        ("none", False, "not 'none'"),
        ("symmetric", True, "cannot hairpin"),
    ],
)
def test_a_lan_nat_the_lab_cannot_build_is_a_clear_error(
    kind: str, hairpin: bool, why: str
) -> None:
    assert why in (lan_nat_problem(kind, hairpin=hairpin) or "")
    with pytest.raises(ValueError, match=why):
        lan_ruleset(kind, outside="o", lan="l", public="192.0.2.1", hairpin=hairpin, timeout=9)
