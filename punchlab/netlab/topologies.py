"""Lab topologies where NATs are shared: one NAT for a whole class, and carrier-grade NAT.

One NAT for the class (:class:`SameNatLab`)::

    peer-a 10.0.1.2:5000 --+
                           +-- lan0 (10.0.1.1) nat (203.0.113.11) -- inet -- srv
    peer-b 10.0.1.3:5001 --+

The server sees both peers at 203.0.113.11, so a HELLO to the partner's
public address must be turned round by the NAT (hairpinning, RFC 4787
REQ-9), which plain masquerade does not do; ``hairpin=True`` adds the rules of
:mod:`punchlab.netlab.hairpin`. The peers use different ports so that
masquerade keeps both (the hairpin rules rely on it).

A home NAT behind a carrier-grade NAT (:class:`CgnLab`, RFC 6888), the CGN's
inside in the shared address space 100.64.0.0/10 of RFC 6598::

    peer-a 10.0.1.2 -- nat-a (10.0.1.1 | 100.64.0.11) --+
                                                        +-- lan0 (100.64.0.1) cgn (203.0.113.11)
    peer-b 10.0.2.2 -- nat-b (10.0.2.1 | 100.64.0.12) --+

``cell="same"`` is that picture; ``cell="different"`` gives each home its own
CGN (``cgn-a`` 203.0.113.11, ``cgn-b`` 203.0.113.12, each inside 100.64.0.0/10
again, as two ISPs would). A CGN must map endpoint-independently (RFC 6888
REQ-1, applying RFC 4787 REQ-1) and hairpin (RFC 4787 REQ-9): masquerade with
the hairpin rules, its "inside hosts" being the home NATs.

Each says where ``apunch(capture=...)`` listens (:meth:`capture_plan`): both
sides of every NAT, so a capture shows each rewrite, the hairpin's too (the
datagram crosses the NAT's LAN twice, its source and destination rewritten).
"""

from __future__ import annotations

from typing import Any

from punchlab.netlab.capture import CapturePlan, CapturePoint
from punchlab.netlab.hairpin import LAN_KINDS, lan_nat_problem, lan_ruleset
from punchlab.netlab.lab import SERVER_IP, Lab
from punchlab.netlab.nat_rules import LAB_KINDS, ruleset
from punchlab.netlab.system import run

__all__ = [
    "CGN_CELLS",
    "CGN_HOME_KINDS",
    "CGN_INSIDE",
    "SAME_NAT_PUBLIC",
    "CgnLab",
    "SameNatLab",
    "cgn_publics",
]

#: The shared NAT's (or the first CGN's) public address on the lab's bridge.
SAME_NAT_PUBLIC = "203.0.113.11"
#: A CGN's inside address and prefix: RFC 6598's shared address space.
CGN_INSIDE = "100.64.0.1"
CGN_PREFIX = 10
#: ``same``: both homes behind one CGN; ``different``: each behind its own.
CGN_CELLS = ("same", "different")
#: What a home NAT behind a CGN may be: any of the lab's NATs.
CGN_HOME_KINDS = tuple(kind for kind in LAB_KINDS if kind != "none")
#: Each peer's port: different, so that one NAT in front of both keeps both.
PEER_PORTS = {"a": 5000, "b": 5001}


def _lan_bridge(ns: str, name: str, address: str) -> None:
    """A bridge in router ``ns`` holding its LAN (``address`` with prefix), no redirects.

    The router sends hairpinned datagrams back out of the interface they came
    in by: without ``send_redirects=0`` it would also tell the sender to go
    direct, which a home router does not do. Bridged traffic between two LAN
    hosts stays a switch's business (``bridge-nf-call-iptables=0``): the NAT's
    rules see only what is routed through it.
    """
    run(["ip", "-n", ns, "link", "add", name, "type", "bridge"])
    run(["ip", "-n", ns, "addr", "add", address, "dev", name])
    run(["ip", "-n", ns, "link", "set", name, "up"])
    for key in ("net.ipv4.conf.all.send_redirects", f"net.ipv4.conf.{name}.send_redirects"):
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}=0"])
    # Only where br_netfilter is loaded does the setting exist.
    run(
        ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"],
        check=False,
    )


class _SharedLab(Lab):
    """A lab whose peers use :data:`PEER_PORTS`, its NATs built with LAN bridges."""

    def __init__(self, nat_a: str, nat_b: str, **options: Any) -> None:
        super().__init__(nat_a, nat_b, **options)
        self.peer_ports = dict(PEER_PORTS)

    def _lan_host(self, router: str, role: str, interface: str, host: str) -> str:
        """A namespace ``role`` plugged into ``router``'s LAN bridge ``lan0`` by its
        ``interface``, at ``host`` (address/prefix); returns the namespace."""
        box = self._add_namespace(role)
        port = "to" + role.replace("-", "")
        self._veth(router, port, box, interface)
        run(["ip", "-n", router, "link", "set", port, "master", "lan0", "up"])
        run(["ip", "-n", box, "addr", "add", host, "dev", interface])
        run(["ip", "-n", box, "link", "set", interface, "up"])
        return box

    def _lan_nat(self, role: str, public: str, lan: str, kind: str, hairpin: bool) -> str:
        """A NAT namespace on the bridge at ``public`` with LAN bridge ``lan0`` at ``lan``."""
        nat = self._add_namespace(role)
        self._on_bridge(nat, "out0", public, role.replace("-", ""))
        _lan_bridge(nat, "lan0", lan)
        timeout = self._forwarding(nat)
        rules = lan_ruleset(
            kind, outside="out0", lan="lan0", public=public, hairpin=hairpin, timeout=timeout
        )
        run(["ip", "netns", "exec", nat, "nft", "-f", "-"], input=rules)
        return nat


class SameNatLab(_SharedLab):
    """``with SameNatLab("port-restricted-cone", hairpin=False) as lab: lab.punch()``.

    Both peers behind one NAT of ``kind`` (see the module's picture); ``hairpin``
    adds the rewrite rules that make it hairpin (not with ``symmetric``).
    """

    def __init__(self, kind: str, *, hairpin: bool = False, **options: Any) -> None:
        problem = lan_nat_problem(kind, hairpin=hairpin)
        if problem is not None:
            raise ValueError(problem)
        super().__init__(kind, kind, **options)
        self.hairpin = hairpin
        turns = "hairpinning" if hairpin else "no hairpinning"
        self.labels = {"a": "A", "b": f"B behind the same {kind} NAT ({turns})"}

    def capture_plan(self) -> CapturePlan:
        """The NAT's LAN (both peers, and the hairpin) and its outside."""
        points = (
            CapturePoint("srv", "eth0", "server link"),
            CapturePoint("nat", "lan0", "NAT LAN"),
            CapturePoint("nat", "out0", "NAT outside"),
        )
        hosts = {SERVER_IP: "server", "10.0.1.2": "A", "10.0.1.3": "B"}
        own_links = {"server": "server link", "A": "NAT LAN", "B": "NAT LAN"}
        return CapturePlan(points, hosts, {SAME_NAT_PUBLIC: "NAT"}, own_links, {"nat": "nat"})

    def _build_sides(self) -> None:
        nat = self._lan_nat("nat", SAME_NAT_PUBLIC, "10.0.1.1/24", self.kinds["a"], self.hairpin)
        for side, host in (("a", "10.0.1.2"), ("b", "10.0.1.3")):
            peer = self._lan_host(nat, f"peer-{side}", "eth0", f"{host}/24")
            run(["ip", "-n", peer, "route", "add", "default", "via", "10.0.1.1"])


def cgn_publics(cell: str) -> dict[str, str]:
    """Each CGN's namespace role and public address for ``cell``."""
    if cell == "same":
        return {"cgn": SAME_NAT_PUBLIC}
    return {"cgn-a": SAME_NAT_PUBLIC, "cgn-b": "203.0.113.12"}


class CgnLab(_SharedLab):
    """``with CgnLab("same", "port-restricted-cone", "port-restricted-cone") as lab: ...``.

    Home NATs of ``home_a`` and ``home_b`` (any of the lab's NATs but ``none``)
    behind one carrier-grade NAT (``cell="same"``) or one each (``"different"``).
    """

    def __init__(self, cell: str, home_a: str, home_b: str, **options: Any) -> None:
        if cell not in CGN_CELLS:
            raise ValueError(f"no CGN cell {cell!r}; choose one of {', '.join(CGN_CELLS)}")
        for kind in (home_a, home_b):
            if kind not in CGN_HOME_KINDS:
                raise ValueError(
                    f"a home NAT behind a CGN is one of {', '.join(CGN_HOME_KINDS)}, not {kind!r}"
                )
        super().__init__(home_a, home_b, **options)
        self.cell = cell
        where = "behind one CGN" if cell == "same" else "each behind its own CGN"
        self.labels = {"a": f"{home_a} home", "b": f"{home_b} home, {where}"}

    def capture_plan(self) -> CapturePlan:
        """Both sides of each home NAT (``NAT A``, ``NAT B``) and of each CGN."""
        points = [CapturePoint("srv", "eth0", "server link")]
        hosts, own_links = {SERVER_IP: "server"}, {"server": "server link"}
        nats, conntrack = {}, {}
        for index, side in enumerate(("a", "b"), start=1):
            name = side.upper()
            points.append(CapturePoint(f"nat-{side}", "in0", f"NAT {name} LAN"))
            points.append(CapturePoint(f"nat-{side}", "out0", f"NAT {name} outside"))
            hosts[f"10.0.{index}.2"], own_links[name] = name, f"NAT {name} LAN"
            nats[f"100.64.0.{10 + index}"], conntrack[side] = f"NAT {name}", f"nat-{side}"
        for role, public in cgn_publics(self.cell).items():
            name = role.upper().replace("-", " ")  # CGN, CGN A, CGN B
            points.append(CapturePoint(role, "lan0", f"{name} LAN"))
            points.append(CapturePoint(role, "out0", f"{name} outside"))
            nats[public], conntrack[role] = name, role
        return CapturePlan(tuple(points), hosts, nats, own_links, conntrack)

    def _build_sides(self) -> None:
        cgns = {
            role: self._lan_nat(role, public, f"{CGN_INSIDE}/{CGN_PREFIX}", LAN_KINDS[0], True)
            for role, public in cgn_publics(self.cell).items()
        }
        for index, side in enumerate(("a", "b"), start=1):
            cgn = cgns.get("cgn") or cgns[f"cgn-{side}"]
            outside = f"100.64.0.{10 + index}/{CGN_PREFIX}"
            home = self._lan_host(cgn, f"nat-{side}", "out0", outside)
            run(["ip", "-n", home, "route", "add", "default", "via", CGN_INSIDE])
            peer = self._add_namespace(f"peer-{side}")
            inside, gateway = f"10.0.{index}.2", f"10.0.{index}.1"
            self._veth(home, "in0", peer, "eth0")
            self._address(home, "in0", gateway)
            self._address(peer, "eth0", inside)
            run(["ip", "-n", peer, "route", "add", "default", "via", gateway])
            timeout = self._forwarding(home)
            rules = ruleset(
                self.kinds[side], outside="out0", inside="in0", inside_host=inside, timeout=timeout
            )
            run(["ip", "netns", "exec", home, "nft", "-f", "-"], input=rules)
