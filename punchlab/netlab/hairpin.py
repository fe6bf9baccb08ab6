"""nftables rules for a NAT with a whole LAN behind it, optionally hairpinning.

The lab's other NATs (:mod:`punchlab.netlab.nat_rules`) have one host behind
them. Here a LAN bridge (``lan``) holds several: two students behind a campus
NAT, or the home NATs behind a carrier-grade NAT (their "inside hosts").

Plain masquerade does not hairpin: a datagram from the LAN to the NAT's own
public address is delivered to the NAT itself, and dropped there. RFC 4787
REQ-9 asks a NAT to hairpin, and section 6 says how: the datagram is sent
back in to the inside host that owns the public port, with the *sender's
public endpoint* as its source (so the receiver sees the address the server
told it about). RFC 6888 REQ-1 makes a carrier-grade NAT follow RFC 4787,
so a CGN hairpins too. With ``hairpin`` the rules do that in three steps:

1. ``forward``: every UDP datagram leaving the LAN records, in the map
   ``owners``, its source port -> its source address (refreshed like a
   mapping, expiring after ``timeout`` seconds);
2. ``prerouting``: a datagram from the LAN to the public address is DNATed
   to the owner of its destination port (a port nobody owns: no rewrite, the
   NAT itself gets it and drops it, as without hairpinning);
3. ``postrouting``: a DNATed datagram going back out to the LAN is SNATed to
   the public address, keeping its source port: the sender's public endpoint.

The map is keyed by the *inside* port and looked up by the *public* port.
That is only right because masquerade keeps the inside port when it is free
(endpoint-independent mapping that preserves ports), so the inside hosts
must use different ports; ``masquerade random`` (``symmetric``) breaks it,
which is why a symmetric NAT here cannot hairpin.
"""

from __future__ import annotations

from punchlab.netlab.nat_rules import unsolicited_input_chain

__all__ = ["LAN_KINDS", "lan_nat_problem", "lan_ruleset"]

#: The NAT kinds a LAN NAT can be: the masquerade ones (the others name one inside host).
LAN_KINDS = ("port-restricted-cone", "symmetric")


def lan_nat_problem(kind: str, *, hairpin: bool) -> str | None:
    """Why the lab cannot build a NAT of ``kind`` with a LAN behind it, or None."""
    if kind not in LAN_KINDS:
        return (
            f"a NAT with a LAN behind it is one of {', '.join(LAN_KINDS)}, not {kind!r} "
            "(the lab's other kinds forward to one named inside host)"
        )
    if hairpin and kind == "symmetric":
        return (
            "a symmetric NAT cannot hairpin in the lab: its random ports break the "
            "port -> inside host map the hairpin rules use"
        )
    return None


def lan_ruleset(
    kind: str, *, outside: str, lan: str, public: str, hairpin: bool, timeout: int
) -> str:
    """The ``nft -f`` script for a NAT namespace with interface ``outside`` and LAN bridge
    ``lan``, whose public address is ``public``."""
    problem = lan_nat_problem(kind, hairpin=hairpin)
    if problem is not None:
        raise ValueError(problem)
    masquerade = "masquerade random" if kind == "symmetric" else "masquerade"
    lines = ["table ip punchlab {"]
    if hairpin:
        lines += _hairpin_lookup(lan, public, timeout)
    lines += [
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if hairpin:
        # Only what prerouting turned round: a datagram between two LAN hosts
        # that went through the router for another reason is left alone.
        lines.append(
            f'    iifname "{lan}" oifname "{lan}" ct status dnat meta l4proto udp snat to {public}'
        )
    lines += [
        f'    oifname "{outside}" {masquerade}',
        "  }",
        *unsolicited_input_chain(outside),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _hairpin_lookup(lan: str, public: str, timeout: int) -> list[str]:
    """Steps 1 and 2 of the module's docstring: who owns which port, and the DNAT to it."""
    return [
        "  map owners {",
        "    type inet_service : ipv4_addr; flags dynamic,timeout;",
        f"    timeout {timeout}s;",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{lan}" meta l4proto udp '
        f"update @owners {{ udp sport timeout {timeout}s : ip saddr }}",
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        f'    iifname "{lan}" ip daddr {public} meta l4proto udp dnat to udp dport map @owners',
        "  }",
    ]
