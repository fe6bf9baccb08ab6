"""The chapters' networks: each builder leaves the network in the state its chapter describes."""

from __future__ import annotations

from punchlab.scenes import SETTLE, ask_for_bob, campus, introduced, lossy_registration, registered
from punchlab.traversal import Route


def test_registered_peers_have_ids_and_bob_only_when_asked_for() -> None:
    alone = registered("full-cone")
    assert alone.alice.id is not None and alone.bob is None and alone.nat_b is None
    pair = registered("none", "symmetric")
    assert pair.nat_a is None and pair.nat_b is not None
    assert pair.bob is not None and pair.bob.id is not None
    assert pair.net.now == SETTLE


def test_asking_for_bob_records_when_and_connects_easy_nats() -> None:
    scene = introduced("port-restricted-cone", "port-restricted-cone")
    assert scene.asked == SETTLE
    sent = list(scene.net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]))
    assert sent and all(event.time >= SETTLE for event in sent)
    slow = ask_for_bob(registered("full-cone", "full-cone", bob_lan_latency=0.03))
    assert slow.alice.connected and slow.bob is not None and slow.bob.connected


def test_a_lossy_registration_still_registers() -> None:
    net, carol = lossy_registration(3, 0.5)
    assert carol.id is not None
    sent = net.trace.filter(actors=["Carol"], types=["REGISTRATION"], kinds=["sent"])
    assert len(list(sent)) >= 2


def test_one_campus_nat_punches_its_students_through_only_when_it_hairpins() -> None:
    """Without private endpoints, only hairpinning turns the public HELLOs round."""
    without = campus("port-restricted-cone", hairpinning=False, private=False)
    assert without.connected and without.route is Route.RELAYED  # the ladder's last rung
    dropped = without.net.trace.filter(types=["HELLO"], kinds=["dropped"])
    assert {event.reason for event in dropped} == {"no hairpinning"}
    hairpinned = campus("port-restricted-cone", hairpinning=True, private=False)
    assert hairpinned.connected and hairpinned.route is Route.DIRECT


def test_one_campus_nat_connects_its_students_privately_with_or_without_hairpinning() -> None:
    for hairpinning in (False, True):
        room = campus("port-restricted-cone", hairpinning=hairpinning)
        assert room.connected and room.route is Route.PRIVATE
