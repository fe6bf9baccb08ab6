"""The IPv6 lab: two home gateways that route and filter, and translate nothing (RFC 6092).

Topology (one namespace per box, ``punchlab-<pid>-<n>-...``), documentation
addresses of RFC 3849 as in :mod:`punchlab.sim.ipv6`::

    peer-a (2001:db8:1::2) -- fw-a (2001:db8:1::1 | 2001:db8::11) ----+
                                                                      +-- inet (bridge) -- srv
    peer-b (2001:db8:1:1::2) -- fw-b (2001:db8:1:1::1 | 2001:db8::12) --+   (2001:db8::1)

Each gateway forwards IPv6 and filters it with an nftables ``table inet``: what
belongs to a tracked flow passes (``ct state established,related accept``), a
new UDP flow from outside is dropped and counted. That is a stateful filter
that keys flows on both endpoints, address and port (conntrack's 5-tuple):
RFC 4787's address-and-port-dependent filtering, the simulator's default
for :class:`punchlab.sim.firewall.Firewall`. Addresses are added with
``nodad``: duplicate address detection (RFC 4862 section 5.4) would hold each
one back for a second or more.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from punchlab.netlab.lab import Lab, LabResult
from punchlab.netlab.system import run

__all__ = ["V6Lab", "firewall_rules", "punch_through_firewalls", "v6_summary"]

V6_SERVER_IP = "2001:db8::1"
V6_SUBNET = 64
#: Each side: the peer, the gateway's inside address, the gateway's outside address.
SIDES = {
    "a": ("2001:db8:1::2", "2001:db8:1::1", "2001:db8::11", "2001:db8:1::/64"),
    "b": ("2001:db8:1:1::2", "2001:db8:1:1::1", "2001:db8::12", "2001:db8:1:1::/64"),
}


def firewall_rules(*, outside: str) -> str:
    """The ``nft -f`` script of a gateway whose outside interface is ``outside``."""
    return "\n".join(
        [
            "table inet punchlab {",
            "  chain forward {",
            "    type filter hook forward priority filter; policy accept;",
            "    ct state established,related accept",
            f'    iifname "{outside}" meta l4proto udp ct state new counter drop',
            "  }",
            "}",
            "",
        ]
    )


class V6Lab(Lab):
    """``with V6Lab() as lab: result = lab.punch()``: two IPv6 peers behind firewalls.

    Like :class:`~punchlab.netlab.lab.Lab` (the same server and peer processes,
    the same result), on IPv6 and without NAT. :meth:`dropped` reads how many
    new inbound UDP datagrams a gateway has dropped; :meth:`send_unsolicited`
    sends one that nobody asked for.
    """

    server_ip = V6_SERVER_IP
    server_url = f"http://[{V6_SERVER_IP}]:8088"

    def __init__(self, **options: Any) -> None:
        super().__init__("none", "none", **options)
        self.kinds = {"a": "firewall", "b": "firewall"}

    def __enter__(self) -> V6Lab:
        super().__enter__()
        return self

    def _build_sides(self) -> None:
        """Two IPv6 homes, each behind its firewall (the lab builds the rest as usual)."""
        for side in SIDES:
            self._home(side, self.ns("srv"))

    def _home(self, side: str, server: str) -> None:
        """One home: the peer, its gateway (forwarding, the filter), and the routes to it."""
        peer_ip, inside_ip, outside_ip, prefix = SIDES[side]
        peer, gateway = self._add_namespace(f"peer-{side}"), self._add_namespace(f"fw-{side}")
        self._on_bridge(gateway, "out0", outside_ip, f"fw{side}")
        self._veth(gateway, "in0", peer, "eth0")
        self._address(gateway, "in0", inside_ip)
        self._address(peer, "eth0", peer_ip)
        run(["ip", "-n", peer, "-6", "route", "add", "default", "via", inside_ip])
        inside = ["ip", "netns", "exec", gateway]
        run([*inside, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        run([*inside, "nft", "-f", "-"], input=firewall_rules(outside="out0"))
        if self.conntrack_timeout is not None:  # how long the gateway keeps a silent flow
            for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
                run([*inside, "sysctl", "-qw", f"net.netfilter.{key}={self.conntrack_timeout}"])
        # The internet's routing, on one segment: each home's /64 via its gateway.
        run(["ip", "-n", server, "-6", "route", "add", prefix, "via", outside_ip])
        _, _, other_gateway, other_prefix = SIDES["b" if side == "a" else "a"]
        run(["ip", "-n", gateway, "-6", "route", "add", other_prefix, "via", other_gateway])

    def _address(self, ns: str, interface: str, address: str) -> None:
        """An IPv6 address usable at once (``nodad``), and the interface up."""
        command = ["ip", "-n", ns, "-6", "addr", "add", f"{address}/{V6_SUBNET}"]
        run([*command, "dev", interface, "nodad"])
        run(["ip", "-n", ns, "link", "set", interface, "up"])

    def rfc5780_server_arguments(self) -> list[str]:
        """None: nothing is mapped, so there is no NAT behaviour to discover."""
        return []

    def dropped(self, side: str) -> int:
        """New inbound UDP datagrams gateway ``side`` ("a" or "b") has dropped so far."""
        listing = run(["ip", "netns", "exec", self.ns(f"fw-{side}"), "nft", "-j", "list",
                       "chain", "inet", "punchlab", "forward"])  # fmt: skip
        for item in json.loads(listing)["nftables"]:
            rule = item.get("rule")
            if rule is None:
                continue
            for statement in rule.get("expr", []):
                if "counter" in statement:
                    return int(statement["counter"]["packets"])
        raise RuntimeError(f"no drop counter in gateway {side}'s rules")

    def wait_dropped(self, side: str, count: int, timeout: float) -> int:
        """Gateway ``side``'s drop count once it reaches ``count``, or after ``timeout``
        seconds (a delayed link holds a datagram a while before the gateway sees it)."""
        deadline = time.monotonic() + timeout
        while (dropped := self.dropped(side)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return dropped

    def send_unsolicited(self, source: str, destination: tuple[str, int], port: int) -> None:
        """One UDP datagram from peer ``source``'s namespace, from ``port``, that nobody
        at ``destination`` asked for."""
        argv = [sys.executable, "-c", _SEND, destination[0], str(destination[1]), str(port)]
        run(["ip", "netns", "exec", self.ns(f"peer-{source}"), *argv])


#: A HELLO as the Go client writes it, sent once from one port (argv: ip, port, from port).
_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", int(sys.argv[3])))
s.sendto(b'{"type":"HELLO","payload":"..."}', (sys.argv[1], int(sys.argv[2])))
"""


def v6_summary(result: LabResult) -> str:
    """The run's summary, naming the boxes for what they are."""
    return result.summary().replace("(real NATs)", "(real IPv6 firewalls)")


def punch_through_firewalls(
    *, delay_ms: float = 0.0, loss: float = 0.0, ladder: bool = True
) -> tuple[LabResult, dict[str, int], int]:
    """Build the lab, show that an unsolicited datagram is dropped, then punch.

    Returns the punch's result, what each gateway dropped during the punch,
    and how many of the one unsolicited datagram (A to B's port 5000, sent
    before anything else) gateway B dropped (1: the default deny works).
    """
    with V6Lab(delay_ms=delay_ms, loss=loss) as lab:
        lab.send_unsolicited("a", (SIDES["b"][0], 5000), UNSOLICITED_PORT)
        unsolicited = lab.wait_dropped("b", 1, timeout=2.0 + 4 * delay_ms / 1000)
        result = lab.punch(ladder=ladder)
        drops = {side: lab.dropped(side) - (unsolicited if side == "b" else 0) for side in "ab"}
    return result, drops, unsolicited


#: The port the unsolicited datagram leaves from (not the peers' 5000: a datagram
#: out of A's port 5000 would open A's own gateway toward B before the punch).
UNSOLICITED_PORT = 4999
