"""RFC 5780 discovery on the simulator: every NAT it can build is classified right."""

from __future__ import annotations

import os

import pytest

from punchlab.sim import BEHAVIOURS, Network, PortAllocation
from punchlab.sim.stun import SimNatCheck, add_natcheck, add_stun_server
from punchlab.stun.codec import Attr, Cls, StunMessage, encode, encode_address
from punchlab.stun.discovery import NatDiscovery


def check(
    kind: str | None,
    *,
    allocation: str = "preserve",
    hairpinning: bool = False,
    honours_change_request: bool = True,
    seed: int = 0,
) -> SimNatCheck:
    net = Network(seed=seed)
    server = add_stun_server(net, honours_change_request=honours_change_request)
    nat = None
    if kind is not None:
        nat = net.add_nat("NAT A", BEHAVIOURS[kind], allocation=allocation, hairpinning=hairpinning)
    natcheck = add_natcheck(net, server, behind=nat)
    natcheck.start()
    assert net.run_until(lambda: natcheck.done, 60.0)
    return natcheck


@pytest.mark.parametrize("kind", sorted(BEHAVIOURS))
@pytest.mark.parametrize("allocation", [a.value for a in PortAllocation])
def test_every_mapping_and_filtering_is_classified_as_configured(
    kind: str, allocation: str
) -> None:
    result = check(kind, allocation=allocation).result
    config = BEHAVIOURS[kind]
    assert (result.mapping, result.filtering) == (config.mapping.value, config.filtering.value)
    assert result.behind_nat is True and result.problem is None
    assert result.hairpinning is False


@pytest.mark.parametrize("kind", ["EIM/EIF", "EIM/ADF", "EIM/APDF", "APDM/EIF"])
def test_hairpinning_is_seen_where_the_nat_turns_the_request_round(kind: str) -> None:
    assert check(kind, hairpinning=True).result.hairpinning is True


def test_a_nat_that_maps_per_destination_and_filters_hides_its_hairpinning() -> None:
    """The documented blind spot: the hairpinned request comes from a new port."""
    assert check("APDM/APDF", hairpinning=True).result.hairpinning is False


def test_without_a_nat_the_host_sees_its_own_address() -> None:
    result = check(None).result
    assert result.behind_nat is False
    assert (result.mapping, result.filtering) == ("endpoint-independent",) * 2


def test_a_server_that_ignores_change_request_is_caught_not_believed() -> None:
    """A naive client would say endpoint-independent filtering here (a port-restricted NAT)."""
    result = check("EIM/APDF", honours_change_request=False).result
    assert result.filtering is None
    assert "ignored CHANGE-REQUEST" in (result.problem or "")
    assert result.mapping == "endpoint-independent"


def test_the_evidence_lists_each_test_with_what_came_back() -> None:
    natcheck = check("APDM/APDF")
    lines = [test.describe() for test in natcheck.result.tests]
    assert [line.split(":")[0] for line in lines] == [
        "mapping test I",
        "mapping test II",
        "mapping test III",
        "filtering test I",
        "filtering test II",
        "filtering test III",
        "hairpinning",
    ]
    assert "no answer after 3 tries" in lines[4]
    stun = natcheck.network.trace.filter(types=["STUN"], kinds=["dropped"])
    assert len(stun) >= 6  # every unanswered try is drawn as a drop at the NAT


def test_no_answer_at_all_and_no_other_address_are_said() -> None:
    lonely = NatDiscovery(("192.0.2.1", 3478), rto=0.1, attempts=2)
    lonely.start(0.0)
    lonely.datagrams_to_send(0.0)
    now = 0.0
    while not lonely.done:
        due = lonely.get_timer()
        assert due is not None
        now = due
        lonely.handle_timer(now)
    assert "did not answer" in (lonely.result.problem or "") and now == pytest.approx(0.3)

    plain = NatDiscovery(("192.0.2.1", 3478))
    plain.start(0.0)
    ((data, destination, via),) = plain.datagrams_to_send(0.0)
    tid = data[8:20]
    base = StunMessage(Cls.SUCCESS, tid)
    mapped = encode_address(("198.51.100.7", 40000), xor=True, message=base)
    plain.receive_datagram(
        encode(StunMessage(Cls.SUCCESS, tid, ((Attr.XOR_MAPPED_ADDRESS, mapped),))),
        destination,
        via,
        0.1,
    )
    assert plain.done and "not an RFC 5780 server" in (plain.result.problem or "")
    assert plain.result.public == ("198.51.100.7", 40000)


def test_stray_and_forged_answers_are_ignored() -> None:
    core = NatDiscovery(("192.0.2.1", 3478))
    core.start(0.0)
    ((data, destination, via),) = core.datagrams_to_send(0.0)
    forged = encode(StunMessage(Cls.SUCCESS, os.urandom(12)))
    for bad in (forged, b"junk", b'{"type":"HELLO","payload":"..."}'):
        core.receive_datagram(bad, destination, via, 0.05)
    right_id_wrong_socket = encode(StunMessage(Cls.SUCCESS, data[8:20]))
    core.receive_datagram(right_id_wrong_socket, destination, 1, 0.05)
    assert core.ignored == 4 and not core.result.tests and not core.done


def answer_with(core: NatDiscovery, *attributes: tuple[int, bytes], source=("192.0.2.1", 3478)):
    """Feed the core a success for its pending request, carrying ``attributes``."""
    ((data, _destination, via),) = core.datagrams_to_send(0.0)
    tid = data[8:20]
    base = StunMessage(Cls.SUCCESS, tid)
    mapped = encode_address(("198.51.100.7", 40000), xor=True, message=base)
    body = ((Attr.XOR_MAPPED_ADDRESS, mapped), *attributes)
    core.receive_datagram(encode(StunMessage(Cls.SUCCESS, tid, body)), source, via, 0.1)


@pytest.mark.parametrize(
    ("other", "why"),
    [
        (("192.0.2.1", 3479), "not another IP and port"),  # its own primary IP
        (("192.0.2.2", 3478), "not another IP and port"),  # the same port
        (("10.0.0.5", 0), "not another IP and port"),
        (("127.0.0.1", 53), "not a server's address"),  # steering tests to loopback
        (("2001:db8::2", 3479), "another address family"),
    ],
)
def test_an_other_address_that_cannot_be_the_servers_is_refused(
    other: tuple[str, int], why: str
) -> None:
    core = NatDiscovery(("192.0.2.1", 3478))
    core.start(0.0)
    answer_with(core, (Attr.OTHER_ADDRESS, encode_address(other)))
    assert core.done and why in (core.result.problem or "")
    assert core.datagrams_to_send(0.2) == []  # nothing is sent where the server pointed


def test_a_server_that_changes_only_the_port_is_caught_too() -> None:
    """Asked for another IP and port, it answers from another port only."""
    server, other = ("192.0.2.1", 3478), ("192.0.2.2", 3479)
    core = NatDiscovery(server, hairpinning=False)
    core.start(0.0)
    answer_with(core, (Attr.OTHER_ADDRESS, encode_address(other)))  # mapping test I
    answer_with(core, source=(other[0], server[1]))  # mapping test II: same public address
    answer_with(core)  # filtering test I
    answer_with(core, source=(server[0], other[1]))  # test II from the wrong IP
    assert core.done and core.result.filtering is None
    assert "ignored CHANGE-REQUEST" in (core.result.problem or "")
