"""IPv6 experiments: two peers, each behind a home gateway's stateful firewall (RFC 6092).

The same punch as :func:`punchlab.sim.punch`, on addresses of the documentation
prefix 2001:db8::/32 (RFC 3849): the server at 2001:db8::1, A in
2001:db8:1::/64, B in 2001:db8:1:1::/64. Nothing is translated, so the address
the server tells each side is the other's own; the firewalls still drop what
nobody inside asked for, so both sides must still punch.
"""

from __future__ import annotations

from punchlab.peer import PeerConfig
from punchlab.sim.firewall import DEFAULT_FIREWALL_TIMEOUT, Firewall, add_firewall, add_v6_peer
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import Behaviour
from punchlab.sim.network import Network
from punchlab.sim.scenario import PunchResult, connect_and_chat, scenario_config
from punchlab.trace import EventKind

__all__ = ["V6_SERVER_IP", "firewall_drops", "punch_v6"]

#: The rendezvous server's address in the IPv6 experiments (RFC 3849's prefix).
V6_SERVER_IP = "2001:db8::1"


def punch_v6(
    filtering_a: Behaviour | str = Behaviour.ENDPOINT_INDEPENDENT,
    filtering_b: Behaviour | str = Behaviour.ENDPOINT_INDEPENDENT,
    *,
    seed: int = 0,
    latency: float = 0.02,
    lan_b: float = 0.001,
    loss: float = 0.0,
    texts: int = 3,
    timeout: float = 10.0,
    firewall_timeout: float = DEFAULT_FIREWALL_TIMEOUT,
    config: PeerConfig | None = None,
) -> PunchResult:
    """Two IPv6 peers behind firewalls with the given filtering; A asks to talk to B.

    The default filtering is RFC 6092's DEFAULT (REC-17, endpoint-independent);
    ``"address-and-port-dependent"`` is a Linux gateway's (the lab's).

    ``lan_b`` is B's LAN latency one way (a slow Wi-Fi): with it above A's
    (1 ms), B hears of the introduction after A's first HELLO has reached B's
    firewall, which drops it; B's own HELLO then opens the way. The result
    reads like :func:`punchlab.sim.punch`'s (``nat_a``/``nat_b`` name the firewalls).
    """
    net = Network(seed, internet=LinkConfig(latency, loss=loss))
    net.add_server(ip=V6_SERVER_IP)
    box_a = add_firewall(net, "firewall A", filtering_a, timeout=firewall_timeout)
    box_b = add_firewall(
        net, "firewall B", filtering_b, timeout=firewall_timeout, lan=LinkConfig(lan_b)
    )
    peer_config = scenario_config(config)
    a = add_v6_peer(net, "A", behind=box_a, config=peer_config)
    b = add_v6_peer(net, "B", behind=box_b, config=peer_config)
    labels = (box_a.config.name, box_b.config.name)
    return connect_and_chat(net, a, b, labels, timeout, texts)


def firewall_drops(result: PunchResult) -> list[tuple[str, str, str]]:
    """(firewall, message type, reason) of each datagram a firewall refused, in order."""
    firewalls = {box.name for box in result.network.nat_boxes if isinstance(box, Firewall)}
    return [
        (event.actor, event.msg_type, event.reason)
        for event in result.trace
        if event.kind is EventKind.DROPPED and event.actor in firewalls
    ]
