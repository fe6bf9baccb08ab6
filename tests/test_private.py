"""Private endpoints (punchlab.candidates): two peers behind one NAT, with and without hairpinning.

The claims are checked at the server and again at the peer; HELLOs to them
carry the token, and only a tokened answer is adopted.
"""

from __future__ import annotations

import json

import pytest

from punchlab.candidates import (
    MAX_LOCAL_ADDRESSES,
    format_local,
    parse_local,
    private_endpoints,
    usable_local_ip,
)
from punchlab.messages import Address, MalformedMessage, Message, MessageType, decode, encode
from punchlab.peer import PeerConfig, PeerCore
from punchlab.scenes import campus
from punchlab.server import RendezvousCore, answer_start_communication
from punchlab.traversal import Route
from tests.conftest import introduce

pytestmark = pytest.mark.timeout(60)

CAMPUS_IP = "198.51.100.7"
ALICE: Address = (CAMPUS_IP, 40001)
BOB: Address = (CAMPUS_IP, 40002)
ELSEWHERE: Address = ("203.0.113.9", 40000)
SERVER: Address = ("203.0.113.1", 8089)
FEATURES = "ack,large,relay,token"


def register(core: RendezvousCore, address: Address, local: str | None, features: str = FEATURES):
    message = Message(MessageType.REGISTRATION, "", features=features or None, local=local)
    core.receive_datagram(encode(message), address, 0.0)
    core.datagrams_to_send(0.0)
    registration = core.lookup_address(address)
    assert registration is not None
    return registration


def notices(core: RendezvousCore) -> list[Message]:
    return [decode(data) for data, _ in core.datagrams_to_send(1.0)]


# -- the claim ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unicast"),
        ("224.0.0.1", "unicast"),
        ("8.8.8.8", "global"),
    ],
)
def test_a_local_address_that_cannot_be_private_is_refused_with_its_reason(
    ip: str, why: str
) -> None:
    problem = usable_local_ip(ip)
    assert problem is not None and why in problem


@pytest.mark.parametrize("ip", ["10.0.1.2", "192.168.1.20", "172.16.0.5", "100.64.3.4", "fd00::5"])
def test_private_lan_and_shared_cgn_addresses_are_usable(ip: str) -> None:
    assert usable_local_ip(ip) is None


def test_a_claim_of_too_many_addresses_is_malformed() -> None:
    many = ",".join(f"10.0.0.{n}:5000" for n in range(MAX_LOCAL_ADDRESSES + 1))
    with pytest.raises(MalformedMessage, match="more than"):
        parse_local(many)
    assert parse_local("10.0.0.1:5000,10.0.0.1:5000") == (("10.0.0.1", 5000),)
    assert format_local(()) is None


def test_a_wildcard_or_loopback_peer_offers_nothing() -> None:
    assert private_endpoints(("127.0.0.1", 5000)) == ()
    assert private_endpoints(("10.1.2.3", 5000)) == (("10.1.2.3", 5000),)


def test_the_local_key_survives_the_wire_and_a_wrong_type_is_malformed() -> None:
    message = Message(MessageType.REGISTRATION, "", features=FEATURES, local="10.0.1.2:5000")
    assert decode(encode(message)).local == "10.0.1.2:5000"
    bad = json.dumps({"type": "REGISTRATION", "payload": "", "local": 5}).encode()
    with pytest.raises(MalformedMessage, match="local"):
        decode(bad)


# -- the server ----------------------------------------------------------------------------


def test_the_server_passes_local_addresses_only_between_peers_behind_one_public_ip() -> None:
    core = RendezvousCore()
    alice = register(core, ALICE, "10.0.1.2:5000")
    bob = register(core, BOB, "10.0.1.3:5000")
    carol = register(core, ELSEWHERE, "192.168.1.9:5000")
    introduction = introduce(core, alice.peer_id, bob.peer_id, 1.0)
    assert introduction.peer_local == (("10.0.1.3", 5000),)
    (notice,) = notices(core)
    assert notice.type is MessageType.INITIATE_CHAT and notice.local == "10.0.1.2:5000"
    # Carol is elsewhere: she learns no private address, and tells none.
    introduction = introduce(core, carol.peer_id, alice.peer_id, 2.0)
    assert introduction.peer_local == ()
    assert all(n.local is None for n in notices(core))


def test_the_http_answer_carries_the_peers_local_addresses() -> None:
    core = RendezvousCore()
    alice = register(core, ALICE, "10.0.1.2:5000")
    bob = register(core, BOB, "10.0.1.3:5000")
    body = json.dumps(
        {"peerInitiator": alice.peer_id, "peer": bob.peer_id, "secret": alice.secret}
    ).encode()
    status, answer = answer_start_communication(core, body, CAMPUS_IP, 1.0)
    assert status == 200 and answer["local"] == "10.0.1.3:5000"


def test_a_bad_claim_is_recorded_and_the_peer_still_registers_without_it() -> None:
    core = RendezvousCore()
    alice = register(core, ALICE, "127.0.0.1:5000")
    assert alice.local == ()
    assert core.rejected["bad local address"] == 1
    assert core.lookup(alice.peer_id) is alice


def test_a_go_client_claims_nothing_and_its_partner_gets_no_local_key() -> None:
    core = RendezvousCore()
    go = register(core, ALICE, "10.0.1.2:5000", features="")
    bob = register(core, BOB, "10.0.1.3:5000")
    assert go.local == ()
    introduce(core, bob.peer_id, go.peer_id, 1.0)
    # The Go client's INITIATE_CHAT has no key it does not know.
    (notice,) = notices(core)
    assert notice.local is None and notice.features is None


# -- the peer ------------------------------------------------------------------------------

TOKEN = "0123456789abcdef"
PARTNER_PUBLIC: Address = (CAMPUS_IP, 40002)
PARTNER_PRIVATE: Address = ("10.0.1.3", 5000)


def introduced_peer(features: str = FEATURES, local: str = "10.0.1.3:5000") -> PeerCore:
    core = PeerCore(SERVER, local_addresses=(("10.0.1.2", 5000),))
    core.register(0.0)
    sent = [decode(data) for data, _ in core.datagrams_to_send(0.0)]
    assert sent[0].local == "10.0.1.2:5000"
    answer = Message(MessageType.REGISTRATION, "me", features="relay,secret,token", secret="s")
    core.receive_datagram(encode(answer), SERVER, 0.01)
    notice = Message(
        MessageType.INITIATE_CHAT,
        "198.51.100.7:40002",
        token=TOKEN,
        features=features,
        secret="s",
        local=local,
    )
    core.receive_datagram(encode(notice), SERVER, 1.0)
    return core


def hellos(core: PeerCore) -> dict[Address, Message]:
    return {
        address: message
        for data, address in core.datagrams_to_send(1.0)
        if (message := decode(data)).type is MessageType.HELLO
    }


def test_the_first_hellos_go_to_the_public_and_the_private_endpoint_with_the_token() -> None:
    core = introduced_peer()
    sent = hellos(core)
    assert set(sent) == {PARTNER_PUBLIC, PARTNER_PRIVATE}
    assert all(message.token == TOKEN for message in sent.values())


def test_a_partner_without_tokens_gets_no_hello_at_its_private_endpoint() -> None:
    core = introduced_peer(features="ack,large")
    assert set(hellos(core)) == {PARTNER_PUBLIC}


def test_a_claim_to_a_loopback_endpoint_is_ignored_by_the_peer_too() -> None:
    core = introduced_peer(local="127.0.0.1:5000")
    assert set(hellos(core)) == {PARTNER_PUBLIC}
    assert core.partner_local == ()


def test_an_answer_from_the_private_endpoint_without_the_token_is_not_adopted() -> None:
    core = introduced_peer()
    core.receive_datagram(encode(Message(MessageType.SUCCESS)), PARTNER_PRIVATE, 1.01)
    assert core.route is None and core.peer_address == PARTNER_PUBLIC
    core.receive_datagram(encode(Message(MessageType.SUCCESS, token=TOKEN)), PARTNER_PRIVATE, 1.02)
    assert core.route is Route.PRIVATE and core.peer_address == PARTNER_PRIVATE


def test_a_hairpinned_copy_does_not_move_a_peer_off_its_private_endpoint() -> None:
    core = introduced_peer()
    core.receive_datagram(encode(Message(MessageType.SUCCESS, token=TOKEN)), PARTNER_PRIVATE, 1.02)
    core.receive_datagram(encode(Message(MessageType.HELLO, token=TOKEN)), PARTNER_PUBLIC, 1.03)
    assert core.peer_address == PARTNER_PRIVATE


def test_private_off_offers_and_tries_nothing() -> None:
    core = PeerCore(SERVER, PeerConfig(private=False), local_addresses=(("10.0.1.2", 5000),))
    core.register(0.0)
    (registration,) = [decode(data) for data, _ in core.datagrams_to_send(0.0)]
    assert registration.local is None


# -- the simulator: one NAT for the class ---------------------------------------------------


@pytest.mark.parametrize("kind", ["port-restricted-cone", "symmetric"])
def test_two_peers_behind_one_nat_without_hairpinning_connect_privately(kind: str) -> None:
    room = campus(kind, hairpinning=False)
    assert room.connected and room.route is Route.PRIVATE
    assert room.bob.core.route is Route.PRIVATE
    assert room.alice.peer_address == room.bob.address
    room.alice.send_text("hi Bob")
    room.net.run_for(0.5)
    assert room.bob.texts == ["hi Bob"]


def test_without_private_endpoints_a_nat_without_hairpinning_drops_every_hello() -> None:
    room = campus("port-restricted-cone", hairpinning=False, private=False)
    dropped = room.net.trace.filter(types=["HELLO"], kinds=["dropped"])
    assert dropped and all(event.reason == "no hairpinning" for event in dropped)
    assert room.route is Route.RELAYED


def test_with_hairpinning_and_no_private_endpoints_the_public_address_works() -> None:
    room = campus("port-restricted-cone", hairpinning=True, private=False)
    assert room.route in (Route.DIRECT, Route.PEER_REFLEXIVE)


def test_a_peer_ignores_its_own_hello_turned_back_by_a_hairpinning_nat() -> None:
    core = introduced_peer()
    own = [decode(data) for data, _ in core.datagrams_to_send(1.0)]
    hello = next(message for message in own if message.type is MessageType.HELLO)
    assert hello.sender is not None
    core.receive_datagram(encode(hello), PARTNER_PUBLIC, 1.01)
    assert core.peer_address == PARTNER_PUBLIC and not core.datagrams_to_send(1.01)
    partner = Message(MessageType.HELLO, token=TOKEN, sender="partner-tag")
    core.receive_datagram(encode(partner), PARTNER_PUBLIC, 1.02)
    assert any(decode(data).type is MessageType.SUCCESS for data, _ in core.datagrams_to_send(1.02))


# -- carrier-grade NAT ----------------------------------------------------------------------


def test_a_carrier_grade_nat_hands_out_shared_addresses_and_hairpins() -> None:
    from punchlab.sim import Network

    net = Network(seed=0)
    net.add_server()
    cgn = net.add_cgn()
    home = net.add_nat("home", "port-restricted-cone", behind=cgn)
    assert cgn.config.hairpinning and home.outside_ip == "100.64.0.1"


@pytest.mark.parametrize(
    ("place", "kind_a", "kind_b", "route"),
    [
        ("same", "port-restricted-cone", "port-restricted-cone", Route.DIRECT),
        ("different", "port-restricted-cone", "port-restricted-cone", Route.DIRECT),
        ("same", "none", "none", Route.PRIVATE),
        # Seed 0's 1,024 birthday probes miss (about 2% do): the relay takes over.
        ("same", "port-restricted-cone", "symmetric", Route.RELAYED),
        ("same", "symmetric", "port-restricted-cone", Route.BIRTHDAY),
        ("different", "symmetric", "symmetric", Route.RELAYED),
    ],
)
def test_homes_behind_carrier_grade_nats_connect_by_the_expected_route(
    place: str, kind_a: str, kind_b: str, route: Route
) -> None:
    from punchlab.sim import punch

    result = punch(kind_a, kind_b, cgn=place, discover=True)
    assert result.connected, result.summary()
    assert result.route is route, result.summary()
    # Lines crossed both ways: neither peer adopted its own HELLO turned back by the CGN.
    assert result.texts_a_to_b == result.texts_b_to_a == 5


def test_the_sentence_for_a_private_endpoint_says_the_peers_share_a_nat() -> None:
    from punchlab.narrate import tell
    from punchlab.peer import PeerAddressChanged

    core = introduced_peer()
    core.receive_datagram(encode(Message(MessageType.SUCCESS, token=TOKEN)), PARTNER_PRIVATE, 1.02)
    changes = []
    while (event := core.next_event()) is not None:
        if isinstance(event, PeerAddressChanged):
            changes.append(event)
    (change,) = changes
    assert change.private
    sentence = tell(change)
    assert sentence is not None and "same NAT" in sentence and "new port" not in sentence


def test_a_hairpinned_success_that_won_the_race_gives_way_to_the_private_endpoint() -> None:
    from punchlab.peer import RouteChanged

    core = introduced_peer()
    core.receive_datagram(encode(Message(MessageType.SUCCESS, token=TOKEN)), PARTNER_PUBLIC, 1.02)
    assert core.route is Route.DIRECT
    hello = Message(MessageType.HELLO, token=TOKEN, sender="partner-tag")
    core.receive_datagram(encode(hello), PARTNER_PRIVATE, 1.021)
    assert core.route is Route.PRIVATE and core.peer_address == PARTNER_PRIVATE
    changes = []
    while (event := core.next_event()) is not None:
        if isinstance(event, RouteChanged):
            changes.append(event)
    assert [(c.old, c.new) for c in changes] == [(Route.DIRECT, Route.PRIVATE)]


def test_a_relayed_campus_pair_moves_to_the_private_path_once_it_opens() -> None:
    from punchlab.peer_table import Timer
    from punchlab.sim import Network
    from punchlab.sim.network import Drop, Hop

    blocked = [True]

    def hook(hop: Hop) -> Drop | None:  # the campus LAN loses every HELLO, until we say
        if blocked[0] and hop.link == "campus NAT LAN" and hop.msg_type == "HELLO":
            return Drop("HELLO dropped on purpose")
        return None

    net = Network(seed=0)
    net.add_server()
    nat = net.add_nat("campus NAT", "port-restricted-cone")
    alice, bob = net.add_peer("Alice", behind=nat), net.add_peer("Bob", behind=nat)
    net.route_packet = hook
    alice.register()
    bob.register()
    net.run_for(1.0)
    assert bob.id is not None
    alice.connect(bob.id)
    assert net.run_until(lambda: alice.connected and bob.connected, 12.0)
    assert alice.core.route is Route.RELAYED
    blocked[0] = False
    assert net.run_until(lambda: alice.core.route is Route.PRIVATE, 12.0)
    assert Timer.DIRECT_RETRY not in alice.core._due  # off the relay: no more retries
    assert alice.peer_address == bob.address
