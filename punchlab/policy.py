"""How a peer punches, as data: the original Go client's way, or punchlab's.

The peer's state table (:mod:`punchlab.peer_table`) says *what* may happen;
a policy says *how*: when the HELLOs go, whether a HELLO is answered with a
HELLO, whether the peer moves to the address a valid HELLO really came from,
whether it speaks punchlab's extensions. It is chosen once, when the peer is
made; a new traversal strategy is another policy, not another set of ``if``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from punchlab.peer import PeerConfig

__all__ = ["ORIGINAL", "PUNCHLAB", "Policy", "policy_for"]


@dataclass(frozen=True)
class Policy:
    """The choices that tell one punching algorithm from another."""

    name: str
    #: Speaks punchlab's extensions: announces features, reads the server's
    #: secret and features, and the introduction's token and partner features.
    extensions: bool
    #: Answers a HELLO with a HELLO of its own as well as SUCCESS (halves the
    #: time to connect: the other side needs a SUCCESS too).
    answers_hello_with_hello: bool
    #: Talks to the address a valid HELLO or SUCCESS came from (ICE's
    #: peer-reflexive address), which rescues a symmetric NAT.
    adopts_peer_reflexive: bool
    #: Beats the server faster while waiting to be introduced.
    fast_waiting_beat: bool
    #: HELLO schedule: punchlab's backs off from ``hello_first_retry``; the
    #: original waits ``original_interval`` and then ticks at that pace.
    backs_off: bool

    def first_hello(self, now: float, config: PeerConfig) -> float:
        """When the first HELLO goes, once introduced."""
        return now if self.backs_off else now + config.original_interval

    def next_hello(self, now: float, interval: float, config: PeerConfig) -> tuple[float, float]:
        """When the next HELLO goes after one sent at ``now``, and the interval after that."""
        if not self.backs_off:
            return now + config.original_interval, interval
        return now + interval, min(interval * 2, config.hello_max_interval)


#: punchlab's own peer.
PUNCHLAB = Policy(
    "punchlab",
    extensions=True,
    answers_hello_with_hello=True,
    adopts_peer_reflexive=True,
    fast_waiting_beat=True,
    backs_off=True,
)

#: The original Go client (DESIGN.md section 1): first HELLO after 3 s, then
#: every 3 s, always to the address the server gave, no extensions.
ORIGINAL = Policy(
    "original",
    extensions=False,
    answers_hello_with_hello=False,
    adopts_peer_reflexive=False,
    fast_waiting_beat=False,
    backs_off=False,
)


def policy_for(config: PeerConfig) -> Policy:
    return ORIGINAL if config.original else PUNCHLAB
