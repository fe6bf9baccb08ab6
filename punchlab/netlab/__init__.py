"""A real Linux NAT lab: network namespaces, veth pairs and the kernel's own NAT.

Needs root, ``ip`` (iproute2) and ``nft`` (nftables). The simulator claims
which NAT pairs can be punched; this lab checks the claim against real NATs
with the real asyncio server and peers::

    from punchlab.netlab import Lab
    with Lab("port-restricted-cone", "symmetric") as lab:
        print(lab.punch().summary())
"""

from punchlab.netlab.lab import Lab, LabResult, PeerRun
from punchlab.netlab.nat_rules import LAB_KINDS
from punchlab.netlab.system import LabUnavailable, cleanup_leftovers, lab_problems, namespaces
from punchlab.netlab.topologies import CgnLab, SameNatLab

__all__ = [
    "LAB_KINDS",
    "CgnLab",
    "Lab",
    "LabResult",
    "LabUnavailable",
    "PeerRun",
    "SameNatLab",
    "available",
    "cleanup_leftovers",
    "lab_problems",
    "namespaces",
]


def available() -> bool:
    """Whether this machine can run the lab (root, ip, nft)."""
    return not lab_problems()
