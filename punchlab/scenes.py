"""The small networks the chapters build, one function each.

A chapter's cell and the question that asks the student to predict its
outcome must run the very same network, or the answer the question checks
against could drift from what the cell shows. So both call these builders:
the notebook to show the run, :mod:`punchlab.exercises` to compute the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from punchlab.peer import PeerConfig
from punchlab.policy import PUNCHLAB
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import NatBox, PortAllocation, nat_config
from punchlab.sim.network import Network
from punchlab.sim.nodes import SimPeer, SimServer
from punchlab.sim.stun import SimNatCheck, add_natcheck, add_stun_server
from punchlab.traversal import Route

__all__ = [
    "Campus",
    "Scene",
    "ask_for_bob",
    "campus",
    "introduced",
    "lossy_registration",
    "mystery_punch",
    "natcheck",
    "registered",
]

#: Virtual seconds a scene runs after registering: every registration is answered by then.
SETTLE = 1.0


@dataclass(frozen=True)
class Scene:
    """A server and Alice (and Bob, when asked for), each behind a NAT of some kind."""

    net: Network
    server: SimServer
    alice: SimPeer
    bob: SimPeer | None
    nat_a: NatBox | None
    nat_b: NatBox | None
    #: When Alice asked the server for Bob (virtual seconds), once she has.
    asked: float | None = None


def _nat(net: Network, name: str, kind: str, lan: LinkConfig | None = None) -> NatBox | None:
    """A NAT of this kind, or none at all for ``"none"`` (the peer is on the internet)."""
    if kind == "none":
        return None
    return net.add_nat(name, kind) if lan is None else net.add_nat(name, kind, lan=lan)


def registered(
    kind_a: str, kind_b: str | None = None, *, seed: int = 0, bob_lan_latency: float | None = None
) -> Scene:
    """Chapters 1 to 4: Alice behind NAT A (and Bob behind NAT B), both registered.

    ``bob_lan_latency`` puts Bob at the end of a slower link to his router
    (chapter 4: his introduction arrives late, so Alice's first HELLO is early).
    """
    net = Network(seed=seed)
    server = net.add_server()
    nat_a = _nat(net, "NAT A", kind_a)
    alice = net.add_peer("Alice", behind=nat_a)
    nat_b = bob = None
    if kind_b is not None:
        lan = None if bob_lan_latency is None else LinkConfig(latency=bob_lan_latency)
        nat_b = _nat(net, "NAT B", kind_b, lan)
        bob = net.add_peer("Bob", behind=nat_b)
    for peer in (alice, bob):
        if peer is not None:
            peer.register()
    net.run_for(SETTLE)
    return Scene(net, server, alice, bob, nat_a, nat_b)


def introduced(kind_a: str, kind_b: str, *, seed: int = 0, run_for: float = 0.1) -> Scene:
    """Chapter 3: both registered, then Alice asks the server for Bob."""
    return ask_for_bob(registered(kind_a, kind_b, seed=seed), run_for)


def ask_for_bob(scene: Scene, run_for: float = SETTLE) -> Scene:
    """Alice asks the server for Bob, and the network runs on for ``run_for`` seconds."""
    assert scene.bob is not None and scene.bob.id is not None, "Bob did not register"
    asked = scene.net.now
    scene.alice.connect(scene.bob.id)
    scene.net.run_for(run_for)
    return replace(scene, asked=asked)


def lossy_registration(
    seed: int, loss: float, *, give_up_after: float = 10.0
) -> tuple[Network, SimPeer]:
    """Chapter 2: Carol behind a full cone NAT registers across a link that loses ``loss``."""
    net = Network(seed=seed, internet=LinkConfig(latency=0.02, loss=loss))
    net.add_server()
    carol = net.add_peer("Carol", behind=net.add_nat("NAT C", "full-cone"))
    carol.register()
    net.run_until(lambda: carol.id is not None, give_up_after)
    return net, carol


@dataclass(frozen=True)
class Campus:
    """Chapter 7: two students behind one campus NAT, the teacher's server outside."""

    net: Network
    nat: NatBox
    alice: SimPeer
    bob: SimPeer

    @property
    def connected(self) -> bool:
        return self.alice.connected and self.bob.connected

    @property
    def route(self) -> Route | None:
        """How they connected: ``private``, or ``relayed`` when the NAT would not turn
        the HELLOs round and private endpoints were off."""
        return self.alice.core.route if self.connected else None


def campus(
    kind: str,
    *,
    hairpinning: bool,
    seed: int = 0,
    punch_for: float = 5.0,
    private: bool = True,
) -> Campus:
    """Both students register through the same NAT, then Alice asks for Bob.

    The server sees both at the NAT's public address, so a HELLO sent there
    must go out and come back in: only a NAT that hairpins (RFC 4787 REQ-9)
    turns it round. Their private endpoints (punchlab.candidates) need no NAT:
    the server passes them on because both came from one public IP. With
    ``private=False`` the peers use only the public address, and without
    hairpinning the punch fails and the pair climbs the traversal ladder to
    the server's relay.
    """
    net = Network(seed=seed)
    net.add_server()
    nat = net.add_nat("campus NAT", kind, hairpinning=hairpinning)
    config = PeerConfig(private=private)
    alice = net.add_peer("Alice", behind=nat, config=config)
    bob = net.add_peer("Bob", behind=nat, config=config)
    alice.register()
    bob.register()
    net.run_for(SETTLE)
    assert bob.id is not None, "Bob did not register"
    alice.connect(bob.id)
    net.run_until(lambda: alice.connected and bob.connected, punch_for)
    return Campus(net, nat, alice, bob)


#: The policy switches chapter 6's mystery peer may have turned off.
MYSTERY_SWITCHES = ("backs_off", "answers_hello_with_hello", "adopts_peer_reflexive")


def mystery_punch(
    broken: str | None,
    kind_a: str,
    kind_b: str,
    *,
    seed: int = 0,
    punch_for: float = 10.0,
    lines: int = 3,
) -> Scene:
    """Chapter 6: Alice's peer has one punching switch turned off (``None``: none is).

    Both register, Alice asks for Bob and both punch for ``punch_for`` virtual
    seconds, then each connected side sends ``lines`` lines of chat; the trace
    shows what the broken switch does.
    """
    if broken is not None and broken not in MYSTERY_SWITCHES:
        raise ValueError(f"no switch {broken!r}; choose one of {', '.join(MYSTERY_SWITCHES)}")
    scene = registered(kind_a, kind_b, seed=seed)
    if broken is not None:
        name = f"punchlab without {broken}"
        scene.alice.core.policy = replace(PUNCHLAB, name=name, **{broken: False})
    scene = ask_for_bob(scene, punch_for)
    _chat(scene, lines)
    return scene


def _chat(scene: Scene, lines: int) -> None:
    """Whoever is connected sends ``lines`` lines, one every 50 ms."""
    for number in range(1, lines + 1):
        for peer in (scene.alice, scene.bob):
            if peer is not None and peer.connected:
                peer.send_text(f"line {number} from {peer.name}")
        scene.net.run_for(0.05)
    scene.net.run_for(SETTLE)


def natcheck(
    kind: str | None,
    *,
    allocation: str | None = None,
    hairpinning: bool = False,
    honours_change_request: bool = True,
    seed: int = 0,
) -> SimNatCheck:
    """Chapter 9: Alice behind a NAT of ``kind`` (None: no NAT) runs RFC 5780's tests
    against a STUN server with two public addresses; the network runs until they end."""
    net = Network(seed=seed)
    server = add_stun_server(net, honours_change_request=honours_change_request)
    nat = None
    if kind is not None:
        config = nat_config(kind, hairpinning=hairpinning)
        if allocation is not None:
            config = nat_config(config, allocation=PortAllocation(allocation))
        nat = net.add_nat("NAT A", config)
    check = add_natcheck(net, server, behind=nat)
    check.start()
    net.run_until(lambda: check.done, 60.0)
    return check
