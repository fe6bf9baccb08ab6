"""The peer state machine, driven with an explicit clock: no sockets, no sleeps."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from punchlab.errors import LocalProtocolError
from punchlab.messages import Message, MessageType, decode, encode
from punchlab.peer import (
    MAX_TOKEN_LENGTH,
    TRANSITIONS,
    Connected,
    DatagramIgnored,
    Disconnected,
    Failed,
    Introduced,
    PeerAddressChanged,
    PeerConfig,
    PeerCore,
    PeerState,
    Registered,
    TextReceived,
    Trigger,
    sender_tag,
)
from punchlab.peer_table import STATES, Timer
from punchlab.policy import ORIGINAL, PUNCHLAB

SERVER = ("203.0.113.1", 8089)
PEER = ("198.51.100.7", 62001)
PEER_OTHER_PORT = ("198.51.100.7", 62999)
STRANGER = ("192.0.2.66", 62001)
TOKEN = "0123456789abcdef"


#: What a punchlab partner announces: with it, every datagram must carry the token.
PUNCHLAB_FEATURES = "ack,large,token"


def msg(
    kind: MessageType, payload: str = "...", token: str | None = None, features: str | None = None
) -> bytes:
    return encode(Message(kind, payload, token=token, features=features))


def sent(core: PeerCore, now: float = 0.0) -> list[tuple[Message, tuple[str, int]]]:
    return [(decode(data), addr) for data, addr in core.datagrams_to_send(now)]


def events(core: PeerCore) -> list[object]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def registered(config: PeerConfig | None = None) -> PeerCore:
    core = PeerCore(SERVER, config)
    core.register(0.0)
    core.receive_datagram(msg(MessageType.REGISTRATION, "my-id"), SERVER, 0.01)
    sent(core)
    events(core)
    return core


def punching(
    config: PeerConfig | None = None,
    token: str | None = TOKEN,
    features: str | None = PUNCHLAB_FEATURES,
) -> PeerCore:
    """Introduced to PEER; by default a punchlab partner (``features=None``: a Go one)."""
    core = registered(config)
    notice = msg(MessageType.INITIATE_CHAT, "198.51.100.7:62001", token, features)
    core.receive_datagram(notice, SERVER, 1.0)
    return core


def connected() -> PeerCore:
    core = punching()
    core.receive_datagram(msg(MessageType.SUCCESS, token=TOKEN), PEER, 1.05)
    sent(core)
    events(core)
    return core


# -- registration ------------------------------------------------------------------------


def test_register_sends_registration_announcing_the_ack_feature() -> None:
    core = PeerCore(SERVER)
    core.register(0.0)
    [(message, addr)] = sent(core)
    assert addr == SERVER
    assert message.type is MessageType.REGISTRATION and message.payload == ""
    assert message.has_feature("ack")
    assert core.state is PeerState.REGISTERING


def test_original_client_announces_no_feature() -> None:
    core = PeerCore(SERVER, PeerConfig.seed_compatible())
    core.register(0.0)
    data, _ = core.datagrams_to_send(0.0)[0]
    assert json.loads(data) == {"type": "REGISTRATION", "payload": ""}


def test_registration_is_retried_with_backoff_then_fails_clearly() -> None:
    core = PeerCore(SERVER, PeerConfig(registration_attempts=3, registration_retry=0.2))
    core.register(0.0)
    times = [0.0]
    sent(core)
    while core.state is PeerState.REGISTERING:
        due = core.get_timer()
        assert due is not None
        core.handle_timer(due)
        if sent(core):
            times.append(due)
    assert times == pytest.approx([0.0, 0.2, 0.6])
    assert core.state is PeerState.FAILED
    failures = [e for e in events(core) if isinstance(e, Failed)]
    assert len(failures) == 1 and "3 REGISTRATION attempts" in failures[0].reason
    assert core.get_timer() is None


def test_registration_answer_sets_the_identifier() -> None:
    core = PeerCore(SERVER)
    core.register(0.0)
    core.receive_datagram(msg(MessageType.REGISTRATION, "abc"), SERVER, 0.1)
    assert core.state is PeerState.REGISTERED and core.peer_id == "abc"
    assert Registered("abc") in events(core)


def test_registration_answer_from_another_address_is_ignored() -> None:
    core = PeerCore(SERVER)
    core.register(0.0)
    core.receive_datagram(msg(MessageType.REGISTRATION, "evil"), STRANGER, 0.1)
    assert core.state is PeerState.REGISTERING and core.peer_id is None
    assert any(
        isinstance(e, DatagramIgnored) and e.reason == "not from server" for e in events(core)
    )


def test_duplicated_registration_answer_changes_nothing() -> None:
    core = registered()
    core.receive_datagram(msg(MessageType.REGISTRATION, "my-id"), SERVER, 0.5)
    assert core.state is PeerState.REGISTERED
    assert events(core) == []


# -- introduction and punching -----------------------------------------------------------


def test_initiate_chat_sends_first_hello_at_once_and_acknowledges() -> None:
    core = punching()
    out = sent(core, 1.0)
    # A HELLO to a punchlab partner carries our sender tag (a hairpinned copy is ours).
    own = Message(MessageType.HELLO, token=TOKEN, sender=sender_tag("my-id", None, TOKEN))
    assert (own, PEER) in out
    ack = [m for m, a in out if m.type is MessageType.INITIATE_CHAT_ACK and a == SERVER]
    assert len(ack) == 1 and ack[0].token == TOKEN
    assert core.state is PeerState.PUNCHING
    assert Introduced(PEER, initiator=False) in events(core)


def test_initiator_starts_punching_from_the_http_answer() -> None:
    core = registered()
    core.start_punching(PEER, 0.5, TOKEN)
    assert sent(core, 0.5) == [(Message(MessageType.HELLO, token=TOKEN), PEER)]
    assert core.initiator and core.state is PeerState.PUNCHING


def test_lost_first_hello_is_retried_on_a_short_backoff() -> None:
    core = punching()
    sent(core)
    hello_times = []
    now = 1.0
    while now < 3.0:
        now = core.get_timer() or 99.0
        core.handle_timer(now)
        if any(m.type is MessageType.HELLO for m, _ in sent(core, now)):
            hello_times.append(round(now - 1.0, 3))
    assert hello_times[:6] == [0.02, 0.06, 0.14, 0.3, 0.62, 1.12]
    gaps = [b - a for a, b in itertools.pairwise(hello_times)]
    assert max(gaps) == pytest.approx(0.5)


def test_hello_is_answered_with_success_and_our_own_hello() -> None:
    core = punching()
    sent(core)
    core.receive_datagram(msg(MessageType.HELLO, token=TOKEN), PEER, 1.03)
    out = sent(core)
    assert out == [
        (Message(MessageType.SUCCESS, token=TOKEN), PEER),
        (Message(MessageType.HELLO, token=TOKEN), PEER),
    ]
    assert core.state is PeerState.PUNCHING


def test_success_connects_and_stops_the_hello_retries() -> None:
    core = punching()
    sent(core)
    core.receive_datagram(msg(MessageType.SUCCESS, token=TOKEN), PEER, 1.04)
    assert core.state is PeerState.CONNECTED
    [connected_event] = [e for e in events(core) if isinstance(e, Connected)]
    assert connected_event.elapsed == pytest.approx(0.04)
    # No more HELLOs: from here on only heart-beats go out.
    now = 1.04
    while (due := core.get_timer()) is not None and due < 10.0:
        now = due
        core.handle_timer(now)
        assert {m.type for m, _ in sent(core, now)} <= {MessageType.HEART_BEAT}


def test_duplicated_success_and_initiate_chat_do_not_restart_anything() -> None:
    core = connected()
    core.receive_datagram(msg(MessageType.SUCCESS, token=TOKEN), PEER, 1.06)
    core.receive_datagram(msg(MessageType.INITIATE_CHAT, "198.51.100.7:62001", TOKEN), SERVER, 1.07)
    assert core.state is PeerState.CONNECTED
    assert not [e for e in events(core) if isinstance(e, Connected | Introduced)]
    # the duplicate notice is still acknowledged so the server stops resending
    assert [m.type for m, _ in sent(core)] == [MessageType.INITIATE_CHAT_ACK]


def test_hello_from_an_unexpected_address_is_ignored_and_recorded() -> None:
    core = punching(token=None)
    sent(core)
    core.receive_datagram(msg(MessageType.HELLO), STRANGER, 1.03)
    assert sent(core) == []
    ignored = [e for e in events(core) if isinstance(e, DatagramIgnored)]
    assert [e.reason for e in ignored] == ["unexpected source"]
    assert core.peer_address == PEER and core.ignored == 1


def test_hello_before_any_introduction_is_ignored() -> None:
    core = registered()
    core.receive_datagram(msg(MessageType.HELLO), PEER, 0.5)
    assert sent(core) == []
    assert core.state is PeerState.REGISTERED


def test_peer_reflexive_address_is_adopted_from_the_same_ip() -> None:
    core = punching(token=None)
    sent(core)
    core.receive_datagram(msg(MessageType.HELLO), PEER_OTHER_PORT, 1.03)
    assert [a for _, a in sent(core)] == [PEER_OTHER_PORT, PEER_OTHER_PORT]
    assert core.peer_address == PEER_OTHER_PORT
    assert PeerAddressChanged(PEER, PEER_OTHER_PORT) in events(core)
    core.receive_datagram(msg(MessageType.SUCCESS), PEER_OTHER_PORT, 1.05)
    core.send_text("hi", 1.06)
    assert sent(core) == [(Message(MessageType.TEXT, "hi\n"), PEER_OTHER_PORT)]


def test_token_vouches_for_another_ip_and_a_wrong_token_is_refused() -> None:
    core = punching()
    sent(core)
    core.receive_datagram(msg(MessageType.HELLO, token="f" * 16), PEER, 1.02)
    assert sent(core) == []
    core.receive_datagram(msg(MessageType.HELLO, token=TOKEN), STRANGER, 1.03)
    assert [a for _, a in sent(core)] == [STRANGER, STRANGER]
    assert core.peer_address == STRANGER


def test_original_algorithm_waits_three_seconds_and_never_adopts() -> None:
    core = punching(PeerConfig.seed_compatible())
    assert [m.type for m, _ in sent(core)] == []  # no ack, no HELLO yet: it ignores tokens
    core.handle_timer(3.99)
    assert [m.type for m, _ in sent(core)] == [MessageType.HEART_BEAT]  # to the server
    assert core.get_timer() == pytest.approx(4.0)
    core.handle_timer(4.0)
    assert sent(core) == [(Message(MessageType.HELLO), PEER)]
    core.receive_datagram(msg(MessageType.HELLO), PEER_OTHER_PORT, 4.1)
    assert sent(core) == [(Message(MessageType.SUCCESS), PEER_OTHER_PORT)]  # no HELLO back
    assert core.peer_address == PEER
    core.handle_timer(6.99)
    assert [m.type for m, _ in sent(core)] == [MessageType.HEART_BEAT]
    core.handle_timer(7.0)  # the fixed 3 s ticker, still to the server's address
    assert sent(core) == [(Message(MessageType.HELLO), PEER)]


def test_punching_gives_up_at_the_deadline() -> None:
    core = punching(PeerConfig(punch_timeout=2.0))
    now = 1.0
    while core.state is PeerState.PUNCHING:
        now = core.get_timer() or 99.0
        core.handle_timer(now)
        sent(core)
    assert core.state is PeerState.FAILED and now == pytest.approx(3.0)
    assert any(isinstance(e, Failed) and "SUCCESS" in e.reason for e in events(core))


def test_failed_punch_can_be_introduced_again() -> None:
    core = punching(PeerConfig(punch_timeout=1.0))
    core.handle_timer(2.0)
    assert core.state is PeerState.FAILED
    core.receive_datagram(msg(MessageType.INITIATE_CHAT, "198.51.100.7:62001"), SERVER, 3.0)
    assert core.state is PeerState.PUNCHING


# -- heart-beats and silence -------------------------------------------------------------


def heartbeats(core: PeerCore, until: float) -> list[tuple[float, tuple[str, int]]]:
    out = []
    now = 0.0
    while True:
        due = core.get_timer()
        if due is None or due > until:
            return out
        now = due
        core.handle_timer(now)
        out += [(round(now, 3), a) for m, a in sent(core) if m.type is MessageType.HEART_BEAT]


def test_heartbeats_go_to_the_server_every_second_while_waiting() -> None:
    core = registered()
    assert heartbeats(core, 4.0) == [(1.01, SERVER), (2.01, SERVER), (3.01, SERVER)]


def test_once_introduced_the_server_hears_every_three_seconds() -> None:
    core = punching()  # introduced at 1.0; the 1 s waiting beat was due at 1.01
    beats = [t for t, addr in heartbeats(core, 8.0) if addr == SERVER]
    assert beats == [1.01, 4.01, 7.01]


def test_the_original_client_beats_every_three_seconds_while_waiting() -> None:
    core = registered(PeerConfig.seed_compatible())
    assert heartbeats(core, 7.0) == [(3.01, SERVER), (6.01, SERVER)]


def test_heartbeats_go_to_the_peer_once_connected_and_keep_it_alive() -> None:
    core = connected()
    beats = []
    for second in range(4, 60, 3):
        core.receive_datagram(msg(MessageType.HEART_BEAT, token=TOKEN), PEER, float(second))
        beats += heartbeats(core, float(second))
    assert core.state is PeerState.CONNECTED
    to_peer = [t for t, addr in beats if addr == PEER]
    assert to_peer[0] == pytest.approx(4.05)
    assert all(b - a == pytest.approx(3.0) for a, b in itertools.pairwise(to_peer))
    # The server keeps hearing from a connected peer too, so its registration lives on.
    assert {addr for _, addr in beats} == {PEER, SERVER}


def test_heartbeats_can_be_turned_off() -> None:
    core = registered(PeerConfig(heartbeat_interval=None))
    assert heartbeats(core, 30.0) == []


def test_a_silent_peer_is_noticed_as_disconnected() -> None:
    core = connected()
    heartbeats(core, 40.0)
    assert core.state is PeerState.DISCONNECTED
    assert Disconnected("peer went silent") in events(core)


# -- chatting ----------------------------------------------------------------------------


def test_text_goes_out_with_a_trailing_newline_and_arrives_without() -> None:
    core = connected()
    core.send_text("hello", 2.0)
    assert sent(core) == [(Message(MessageType.TEXT, "hello\n", token=TOKEN), PEER)]
    core.receive_datagram(msg(MessageType.TEXT, "hi there\n", token=TOKEN), PEER, 2.1)
    assert TextReceived("hi there", PEER) in events(core)


def test_text_from_a_stranger_is_not_delivered() -> None:
    core = connected()
    core.receive_datagram(msg(MessageType.TEXT, "spam\n"), STRANGER, 2.1)
    assert not [e for e in events(core) if isinstance(e, TextReceived)]


def test_sending_text_before_connecting_is_a_local_error() -> None:
    core = punching()
    with pytest.raises(LocalProtocolError, match="punching"):
        core.send_text("too early", 1.0)


# -- the transition table ----------------------------------------------------------------


def test_registering_twice_is_a_local_error() -> None:
    core = registered()
    with pytest.raises(LocalProtocolError, match="register while registered"):
        core.register(1.0)


def test_every_state_but_closed_can_close_and_closed_is_final() -> None:
    for state in PeerState:
        target = TRANSITIONS.get((state, Trigger.CLOSE))
        assert target is (None if state is PeerState.CLOSED else PeerState.CLOSED)
    assert not [key for key in TRANSITIONS if key[0] is PeerState.CLOSED]


def test_close_stops_all_traffic() -> None:
    core = connected()
    core.close()
    assert core.get_timer() is None
    core.receive_datagram(msg(MessageType.HELLO, token=TOKEN), PEER, 2.0)
    assert sent(core) == []


# -- bad input never raises --------------------------------------------------------------


@settings(
    max_examples=300,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=300), which=st.sampled_from(["registered", "punching", "connected"]))
def test_arbitrary_bytes_never_raise_nor_change_state(data: bytes, which: str) -> None:
    core = {"registered": registered, "punching": punching, "connected": connected}[which]()
    sent(core)
    events(core)
    before = (core.state, core.peer_address, core.peer_id)
    core.receive_datagram(data, STRANGER, 2.0)
    assert (core.state, core.peer_address, core.peer_id) == before
    assert sent(core) == []


def test_an_initiate_chat_with_a_huge_token_is_ignored_not_raised() -> None:
    core = registered()
    huge = encode(Message(MessageType.INITIATE_CHAT, "198.51.100.7:62001", token="t" * 8000))
    core.receive_datagram(huge, SERVER, 1.0)
    assert core.state is PeerState.REGISTERED
    assert sent(core) == []


def test_a_zero_waiting_heartbeat_is_refused() -> None:
    with pytest.raises(ValueError, match="waiting_heartbeat_interval"):
        PeerConfig(waiting_heartbeat_interval=0.0)


# -- the table's promises, one by one (each line of peer_table guarded) --------------------


@pytest.mark.parametrize(
    ("length", "accepted"), [(MAX_TOKEN_LENGTH, True), (MAX_TOKEN_LENGTH + 1, False)]
)
def test_the_token_length_boundary(length: int, accepted: bool) -> None:
    core = registered()
    notice = msg(MessageType.INITIATE_CHAT, "198.51.100.7:62001", "t" * length, PUNCHLAB_FEATURES)
    core.receive_datagram(notice, SERVER, 1.0)
    assert (core.state is PeerState.PUNCHING) is accepted


def test_a_disconnected_peer_is_introduced_again_and_beats_the_server_meanwhile() -> None:
    core = connected()
    beats = [t for t, addr in heartbeats(core, 40.0) if addr == SERVER]
    assert core.state is PeerState.DISCONNECTED  # silent since 1.05: gone at 31.05
    # Waiting again: the server beat is re-armed at the disconnection (its
    # old schedule, from registration, would have beaten at 34.01).
    assert [t for t in beats if t > 31.05][:1] == [pytest.approx(34.05)]
    notice = msg(MessageType.INITIATE_CHAT, "192.0.2.66:62001", TOKEN, PUNCHLAB_FEATURES)
    core.receive_datagram(notice, SERVER, 46.0)
    assert core.state is PeerState.PUNCHING and core.introduced_address == STRANGER
    out = sent(core, 46.0)
    assert (MessageType.HELLO, STRANGER) in [(m.type, a) for m, a in out]


def test_every_state_runs_exactly_the_timers_the_table_lists() -> None:
    """Walk a peer through its life and compare its armed timers with STATES."""
    core = PeerCore(SERVER)
    seen: dict[PeerState, set[Timer]] = {}

    def look() -> None:
        seen.setdefault(core.state, set()).update(core._due)
        assert set(core._due) <= STATES[core.state].timers, core.state

    core.register(0.0)
    look()
    core.receive_datagram(msg(MessageType.REGISTRATION, "my-id"), SERVER, 0.01)
    look()
    notice = msg(MessageType.INITIATE_CHAT, "198.51.100.7:62001", TOKEN, PUNCHLAB_FEATURES)
    core.receive_datagram(notice, SERVER, 1.0)
    look()
    core.receive_datagram(msg(MessageType.SUCCESS, token=TOKEN), PEER, 1.05)
    look()
    core.handle_timer(40.0)
    look()
    core.close()
    look()
    assert seen[PeerState.PUNCHING] == {Timer.HELLO, Timer.PUNCH_DEADLINE, Timer.SERVER_BEAT}
    assert seen[PeerState.CONNECTED] == {Timer.PEER_BEAT, Timer.PEER_SILENCE, Timer.SERVER_BEAT}
    assert seen[PeerState.CLOSED] == set()


def test_the_original_policy_is_the_go_clients_and_punchlabs_is_not() -> None:
    assert registered(PeerConfig.seed_compatible()).policy is ORIGINAL
    assert registered().policy is PUNCHLAB
    original = punching(PeerConfig.seed_compatible(), features=None)
    assert sent(original) == []  # the Go client waits 3 s before its first HELLO
    original.handle_timer(4.0)
    assert [m for m, a in sent(original) if a == PEER] == [Message(MessageType.HELLO)]
