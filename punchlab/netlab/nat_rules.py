"""nftables rule sets that make a Linux namespace behave like each kind of NAT.

The translation itself is always the kernel's connection-tracking NAT. What
changes is which packets may come in:

- ``port-restricted-cone``: plain masquerade. Linux keeps the inside port when
  it is free (endpoint-independent mapping) and lets in only replies of a
  tracked flow, i.e. from the exact address and port the inside host sent to.
- ``symmetric``: masquerade with ``random``: every new flow (new destination)
  gets a random outside port.
- ``full-cone`` and ``restricted-cone``: masquerade plus an inbound DNAT that
  is allowed by a *dynamic set* filled by the inside host's own outgoing
  packets: for full cone the set holds the ports the inside host sent from
  (anyone may then reach that port), for restricted cone the pairs
  (remote address, port) it sent to (only those addresses may reach it).
  Entries expire like mappings do, refreshed by outgoing traffic. This is
  exact for the lab's one inside host per NAT, and is the reason the DNAT
  names that host.

Every kind drops unsolicited datagrams addressed to the NAT itself, as home
routers do, before the kernel records a connection for them (see below).
"""

from __future__ import annotations

__all__ = ["LAB_KINDS", "ruleset", "unsolicited_input_chain"]

#: The NAT kinds the lab builds ("none" is a host on the public network).
LAB_KINDS = ("none", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric")


def unsolicited_input_chain(outside: str) -> list[str]:
    """The chain that drops an unsolicited datagram for the NAT itself before conntrack
    confirms it: otherwise its entry would claim that address:port pair, later packets
    of the same pair would skip the NAT rules, and an outgoing flow to that pair would
    lose its port."""
    return [
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f'    iifname "{outside}" meta l4proto udp ct state new drop',
        "  }",
    ]


def ruleset(kind: str, *, outside: str, inside: str, inside_host: str, timeout: int) -> str:
    """The ``nft -f`` script for a NAT namespace with interfaces ``outside`` and ``inside``."""
    if kind not in LAB_KINDS or kind == "none":
        raise ValueError(f"no NAT rules for {kind!r}; choose one of {', '.join(LAB_KINDS[1:])}")
    masquerade = "masquerade random" if kind == "symmetric" else "masquerade"
    lines = [
        "table ip punchlab {",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f'    oifname "{outside}" {masquerade}',
        "  }",
        *unsolicited_input_chain(outside),
    ]
    if kind == "full-cone":
        lines += [
            f"  set mapped {{ type inet_service; flags timeout; timeout {timeout}s; }}",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            f'    iifname "{inside}" ip saddr {inside_host} meta l4proto udp '
            f"update @mapped {{ udp sport timeout {timeout}s }}",
            "  }",
            "  chain prerouting {",
            "    type nat hook prerouting priority dstnat; policy accept;",
            f'    iifname "{outside}" udp dport @mapped dnat to {inside_host}',
            "  }",
        ]
    elif kind == "restricted-cone":
        lines += [
            "  set contacted { type ipv4_addr . inet_service; flags timeout; "
            f"timeout {timeout}s; }}",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            f'    iifname "{inside}" ip saddr {inside_host} meta l4proto udp '
            f"update @contacted {{ ip daddr . udp sport timeout {timeout}s }}",
            "  }",
            "  chain prerouting {",
            "    type nat hook prerouting priority dstnat; policy accept;",
            f'    iifname "{outside}" ip saddr . udp dport @contacted dnat to {inside_host}',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
