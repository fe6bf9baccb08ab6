"""Acknowledged chat (punchlab.reliable): every line once, in order, or a clear failure.

Three layers: the sans-IO halves alone; a PeerCore driven by hand, playing
the attacker with forged and bogus acks; the simulator with seeded loss,
duplication and reordering, and with chosen datagrams dropped.
"""

from __future__ import annotations

import json

import pytest

from punchlab.messages import (
    MAX_SEQ,
    LocalProtocolError,
    MalformedMessage,
    Message,
    MessageType,
    decode,
    encode,
)
from punchlab.peer import (
    DatagramIgnored,
    PeerConfig,
    PeerCore,
    PeerState,
    TextDelivered,
    TextFailed,
    TextReceived,
    TextSent,
)
from punchlab.peer_table import Timer
from punchlab.reliable import Ack, BogusAck, Receiver, ReliableConfig, Sender, deliver
from punchlab.sim.chat import chat
from punchlab.sim.network import Network, drop_first

SERVER = ("203.0.113.1", 8089)
PEER = ("198.51.100.7", 62001)
TOKEN = "0123456789abcdef"
RELIABLE_PARTNER = "ack,large,reliable,token"
PLAIN_PARTNER = "ack,large,token"


# -- the wire ---------------------------------------------------------------------------


def test_a_numbered_text_is_a_text_with_one_more_key() -> None:
    data = encode(Message(MessageType.TEXT, "hi\n", TOKEN, seq=7))
    assert json.loads(data) == {"type": "TEXT", "payload": "hi\n", "token": TOKEN, "seq": 7}
    assert decode(data).seq == 7


@pytest.mark.parametrize("seq", ["7", 7.0, True, 0, -1, MAX_SEQ + 1, None, [7]])
def test_a_seq_that_is_not_a_small_positive_integer_is_malformed(seq: object) -> None:
    data = json.dumps({"type": "TEXT", "payload": "x", "seq": seq}).encode()
    if seq is None:
        assert decode(data).seq is None
        return
    with pytest.raises(MalformedMessage):
        decode(data)


@pytest.mark.parametrize(
    ("text", "ack"),
    [("0", Ack(0)), ("12", Ack(12)), ("3;5,9", Ack(3, (5, 9)))],
)
def test_an_ack_payload_reads_back(text: str, ack: Ack) -> None:
    assert Ack.parse(text, 64) == ack and ack.encode() == text


@pytest.mark.parametrize(
    "text",
    [
        *("", "x", "-1", "1;", "1;2,2", "5;4", "1;70", "1;3,2", "1 ", "\uff11"),
        "1;" + ",".join(map(str, range(2, 70))),  # more than a window of seqs
    ],
)
def test_a_malformed_ack_payload_is_bogus(text: str) -> None:
    with pytest.raises(BogusAck):
        Ack.parse(text, 64)


# -- the two halves alone -------------------------------------------------------------


def test_the_receiver_delivers_in_order_once_and_holds_at_most_a_window() -> None:
    assert deliver([(2, "b"), (1, "a"), (1, "a"), (3, "c"), (2, "b")]) == ["a", "b", "c"]
    assert deliver([(1, "a"), (3, "c")]) == ["a"]  # nothing past a gap that never fills
    receiver = Receiver(window=4)
    assert receiver.receive(6, "far") == ([], "beyond window")
    assert receiver.receive(4, "d") == ([], "new")
    assert receiver.ack() == Ack(0, (4,))
    assert receiver.receive(4, "d") == ([], "duplicate")
    assert receiver.receive(1, "a")[0] == ["a"] and receiver.ack() == Ack(1, (4,))


def test_the_sender_keeps_its_window_and_backs_off() -> None:
    sender = Sender(ReliableConfig(window=2, rto_initial=1.0, rto_max=8.0))
    sender.queue(1, ["a", "b", "c"], 0.0)
    assert sender.to_send(0.0) == [(1, "a"), (2, "b")]  # c waits for the window
    times = []
    now = 0.0
    for _ in range(5):
        now = sender.due() or 0.0
        times.append(now)
        assert [seq for seq, _ in sender.retransmit(now)] == [1, 2]
    assert times == [1.0, 3.0, 7.0, 15.0, 23.0]  # 1, 2, 4, 8, then the ceiling of 8
    assert sender.on_ack(Ack(2), now) == []  # line 1 still has c to go
    assert sender.to_send(now) == [(3, "c")]
    [done] = sender.on_ack(Ack(3), now + 0.1)
    assert done.line == 1 and done.delivered and done.tries == 6


def test_an_ack_for_a_seq_never_sent_changes_nothing() -> None:
    sender = Sender()
    sender.queue(1, ["a"], 0.0)
    sender.queue(2, ["b"], 0.0)
    sender.to_send(0.0)
    for bogus in (Ack(3), Ack(0, (5,))):
        with pytest.raises(BogusAck):
            sender.on_ack(bogus, 0.1)
    assert sender.unacknowledged == 2 and sender.srtt is None


def test_three_later_acks_resend_a_hole_at_once() -> None:
    sender = Sender()
    sender.queue(1, ["a", "b", "c", "d", "e"], 0.0)
    sender.to_send(0.0)
    sender.on_ack(Ack(0, (2, 3)), 0.05)
    assert sender.retransmit(0.05) == []  # two later: maybe only reordered
    sender.on_ack(Ack(0, (2, 3, 4)), 0.06)
    assert sender.retransmit(0.06) == [(1, "a")]


# -- a PeerCore between two punchlab peers, and with a Go partner ---------------------


def drain(core: PeerCore) -> tuple[list[Message], list[object]]:
    out = [decode(data) for data, _ in core.datagrams_to_send(0.0)]
    return out, list(iter(core.next_event, None))


def connected(features: str = RELIABLE_PARTNER, config: PeerConfig | None = None) -> PeerCore:
    core = PeerCore(SERVER, config)
    core.register(0.0)
    core.receive_datagram(encode(Message(MessageType.REGISTRATION, "me")), SERVER, 0.01)
    notice = Message(MessageType.INITIATE_CHAT, "198.51.100.7:62001", TOKEN, features)
    core.receive_datagram(encode(notice), SERVER, 1.0)
    core.receive_datagram(encode(Message(MessageType.SUCCESS, token=TOKEN)), PEER, 1.05)
    drain(core)
    assert core.state is PeerState.CONNECTED
    return core


def ack(payload: str, token: str | None = TOKEN) -> bytes:
    return encode(Message(MessageType.TEXT_ACK, payload, token))


def test_a_punchlab_peer_announces_reliable_unless_told_not_to() -> None:
    for config, expected in ((None, True), (PeerConfig(reliable=None), False)):
        core = PeerCore(SERVER, config)
        core.register(0.0)
        [registration], _ = drain(core)
        assert registration.has_feature("reliable") is expected


def test_a_partner_without_the_feature_gets_plain_text_as_today() -> None:
    core = connected(PLAIN_PARTNER)
    assert core.send_text("hello", 2.0) == 1
    [text], events = drain(core)
    assert json.loads(encode(text)) == {"type": "TEXT", "payload": "hello\n", "token": TOKEN}
    assert events == [TextSent(1, "hello", 1, acknowledged=False)]
    assert core.get_timer() is not None and core.unacknowledged == 0


def test_a_line_is_retransmitted_until_acknowledged_then_reported_delivered() -> None:
    core = connected()
    core.send_text("hello", 2.0)
    [text], events = drain(core)
    assert text.seq == 1 and text.payload == "hello\n" and text.token == TOKEN
    assert events == [TextSent(1, "hello", 1, acknowledged=True)]
    assert core._due[Timer.RETRANSMIT] == pytest.approx(3.0)  # RFC 6298 initial 1 s
    core.handle_timer(3.0)
    [again] = [m for m in drain(core)[0] if m.type is MessageType.TEXT]  # (and heart-beats)
    assert again == text
    core.receive_datagram(ack("1"), PEER, 3.1)
    _, events = drain(core)
    assert events == [TextDelivered(1, 2, pytest.approx(1.1))]
    assert core.unacknowledged == 0


def test_numbered_texts_are_delivered_in_order_once_and_each_copy_is_acked() -> None:
    core = connected()
    for seq, text in ((2, "two"), (1, "one"), (2, "two"), (9999, "far")):
        message = Message(MessageType.TEXT, text + "\n", TOKEN, seq=seq)
        core.receive_datagram(encode(message), PEER, 2.0)
    out, events = drain(core)
    # A TEXT beyond the window is dropped unanswered: nothing to acknowledge.
    assert [m.payload for m in out if m.type is MessageType.TEXT_ACK] == ["0;2", "2", "2"]
    assert [e.text for e in events if isinstance(e, TextReceived)] == ["one", "two"]
    reasons = [e.reason for e in events if isinstance(e, DatagramIgnored)]
    assert reasons == ["duplicate", "beyond window"]


@pytest.mark.parametrize(
    ("payload", "token", "reason"),
    [
        ("1", "ffffffffffffffff", "unexpected source"),  # forged: not the introduction's token
        ("1", None, "unexpected source"),
        ("5", TOKEN, "bogus ack"),  # acknowledges a line never sent
        ("0;2", TOKEN, "bogus ack"),
        ("one", TOKEN, "bogus ack"),
    ],
)
def test_a_forged_or_bogus_ack_changes_nothing_and_is_recorded(
    payload: str, token: str | None, reason: str
) -> None:
    core = connected()
    core.send_text("hello", 2.0)
    drain(core)
    timer, ignored = core.get_timer(), core.ignored
    core.receive_datagram(ack(payload, token), PEER, 2.5)
    _, events = drain(core)
    assert [e.reason for e in events if isinstance(e, DatagramIgnored)] == [reason]
    assert not any(isinstance(e, TextDelivered) for e in events)
    assert core.unacknowledged == 1 and core.get_timer() == timer and core.ignored == ignored + 1


def test_a_line_is_given_up_only_when_the_peer_is_declared_gone() -> None:
    core = connected(config=PeerConfig(peer_timeout=30.0, heartbeat_interval=None))
    core.send_text("into the void", 2.0)
    drain(core)
    now = 2.0
    while core.state is PeerState.CONNECTED:
        now = core.get_timer() or now
        core.handle_timer(now)
    _, events = drain(core)
    [failed] = [e for e in events if isinstance(e, TextFailed)]
    # 1 + 2 + 4 + 8 + 8 ... s until the 30 s liveness timeout (from the SUCCESS at 1.05 s).
    assert failed == TextFailed(1, 6)
    assert now == pytest.approx(31.05)


# -- the simulator ----------------------------------------------------------------------


def test_without_acks_a_lossy_link_loses_lines_and_nobody_is_told() -> None:
    run = chat(100, seed=0, loss=0.3, reliable=False)
    assert run.arrived < 90 and run.delivered == 0 and run.failed == 0
    assert run.ack_datagrams == 0 and run.text_datagrams == 100


@pytest.mark.parametrize("seed", range(50))  # 1.5 s for all fifty (measured)
def test_every_line_arrives_once_in_order_through_loss_duplication_reordering(seed: int) -> None:
    run = chat(30, seed=seed, loss=0.3, duplicate=0.1, reorder=0.1, both_ways=True)
    assert run.exactly_once_in_order, run.summary()
    assert run.delivered == 30 and run.failed == 0


def _chat_with_hook(hook_type: str) -> tuple[Network, list[object], list[object]]:
    run = chat(0, seed=0, loss=0.0)  # a connected pair on a clean link
    net = run.network
    a, b = net.peers[0], net.peers[1]
    net.route_packet = drop_first(hook_type, link="internet")
    a_events: list[object] = []
    b_events: list[object] = []
    a.add_listener(a_events.append)
    b.add_listener(b_events.append)
    a.send_text("only once")
    net.run_for(5.0)
    return net, a_events, b_events


def test_the_first_text_dropped_arrives_on_the_retransmission() -> None:
    _, a_events, b_events = _chat_with_hook("TEXT")
    assert [e.text for e in b_events if isinstance(e, TextReceived)] == ["only once"]
    [delivered] = [e for e in a_events if isinstance(e, TextDelivered)]
    assert delivered.tries == 2 and delivered.elapsed == pytest.approx(1.0 + 0.044, abs=0.01)


def test_a_dropped_ack_costs_a_duplicate_the_reader_never_sees() -> None:
    _, a_events, b_events = _chat_with_hook("TEXT-ACK")
    assert [e.text for e in b_events if isinstance(e, TextReceived)] == ["only once"]
    assert [e.reason for e in b_events if isinstance(e, DatagramIgnored)] == ["duplicate"]
    [delivered] = [e for e in a_events if isinstance(e, TextDelivered)]
    assert delivered.tries == 2


def test_through_the_relay_every_line_arrives_once_in_order() -> None:
    """Two symmetric NATs: TEXT and TEXT-ACK both travel inside RELAY, and are lost there."""
    for seed in range(3):
        run = chat(30, seed=seed, loss=0.3, duplicate=0.1, reorder=0.1, nats=("symmetric",) * 2,
                   interval=0.1)  # fmt: skip
        a = run.network.peers[0]
        assert a.core.route is not None and a.core.route.value == "relayed"
        assert run.exactly_once_in_order, run.summary()
        assert run.delivered == 30


@pytest.mark.parametrize("nats", [("full-cone", "full-cone"), ("symmetric", "symmetric")])
def test_a_long_line_goes_in_pieces_each_acknowledged_and_reported_once(
    nats: tuple[str, str],
) -> None:
    line = "".join(f"{n:05d}é" for n in range(1500))  # 9000 characters: over 8192 bytes
    run = chat(1, seed=4, loss=0.3, duplicate=0.1, reorder=0.1, nats=nats, text=line)
    assert "".join(run.received) == line
    assert len(run.received) >= (2 if nats[0] == "full-cone" else 9)  # the relay cuts at 1024
    assert run.delivered == 1 and run.failed == 0


# -- what a person reads ------------------------------------------------------------------


def test_each_line_state_is_said_in_words_with_our_line_escaped() -> None:
    from punchlab.narrate import tell

    assert tell(TextSent(3, "hi\x1b]0;x\x07", 1, acknowledged=True)) == "#3 sent: hi\\x1b]0;x\\x07"
    assert tell(TextSent(4, "to Go", 1, acknowledged=False)) == (
        "#4 sent (this peer does not acknowledge): to Go"
    )
    assert tell(TextDelivered(3, 1, 0.05)) == "#3 delivered"
    assert tell(TextDelivered(3, 2, 1.05)) == "#3 delivered after 2 tries"
    assert tell(TextFailed(5, 7)) == "#5 failed after 7 tries: the peer is gone"
    assert tell(TextFailed(6, 1, "the chat was closed")) == (
        "#6 failed after 1 try: the chat was closed"
    )


def test_the_scripted_peer_reports_each_line_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    from punchlab.scripted import _on_event

    for event in (TextSent(1, "hi", 1, True), TextDelivered(1, 2, 1.5), TextFailed(2, 6)):
        _on_event(event)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["event"], o["line"]) for o in out] == [
        ("text_sent", 1),
        ("text_delivered", 1),
        ("text_failed", 2),
    ]
    assert out[0]["acknowledged"] is True and out[1]["tries"] == 2 and out[2]["tries"] == 6
    assert out[2]["text"] == "#2 failed after 6 tries: the peer is gone"


def test_closing_fails_the_lines_still_unacknowledged() -> None:
    core = connected()
    core.send_text("last words", 2.0)
    drain(core)
    core.close()
    _, events = drain(core)
    assert [e for e in events if isinstance(e, TextFailed)] == [
        TextFailed(1, 1, "the chat was closed")
    ]


def test_a_partner_announcing_reliable_without_token_gets_plain_text() -> None:
    """An acknowledgement must carry the token: without ``token`` there is no acked chat."""
    core = connected("ack,large,reliable")
    core.send_text("hello", 2.0)
    [text], _ = drain(core)
    assert text.seq is None and not core.reliable


def test_a_day_of_tries_keeps_to_the_ceiling() -> None:
    """A partner that stays alive but never acknowledges (heart-beats only): the line goes
    every rto_max seconds for as long as that lasts, and the arithmetic holds."""
    sender = Sender(ReliableConfig(rto_max=8.0))
    sender.queue(1, ["a"], 0.0)
    sender.to_send(0.0)
    now = 0.0
    for _ in range(11_000):
        now = sender.due() or now
        sender.retransmit(now)
    assert sender.due() == pytest.approx(now + 8.0)


def test_an_ack_goes_to_the_partner_never_to_a_spoofed_source_and_stays_small() -> None:
    core = connected()
    victim = ("192.0.2.99", 53)
    # Thirty TEXTs beyond a hole, each claiming to come from a victim's address.
    for seq in range(2, 32):
        message = Message(MessageType.TEXT, "x\n", TOKEN, seq=seq)
        core.receive_datagram(encode(message), victim, 2.0)
    sent = core.datagrams_to_send(2.0)
    acks = [(decode(data), to) for data, to in sent if decode(data).type is MessageType.TEXT_ACK]
    assert acks and all(to == PEER for _, to in acks)
    text = encode(Message(MessageType.TEXT, "x\n", TOKEN, seq=31))
    assert max(len(encode(m)) for m, _ in acks) <= 2 * len(text)
    assert acks[-1][0].payload == "0;2-31"
    assert Ack.parse(acks[-1][0].payload, 64).selective == tuple(range(2, 32))


def test_a_line_refused_for_a_full_queue_changes_nothing() -> None:
    config = PeerConfig(reliable=ReliableConfig(window=1, max_queued=2))
    core = connected(config=config)
    for line in ("one", "two", "three"):
        core.send_text(line, 2.0)
    drain(core)
    with pytest.raises(LocalProtocolError, match="too many lines"):
        core.send_text("four", 2.0)
    assert drain(core) == ([], [])
    core.receive_datagram(ack("1"), PEER, 2.1)
    core.send_text("four", 2.2)
    assert [e for e in drain(core)[1] if isinstance(e, TextSent)] == [
        TextSent(4, "four", 1, acknowledged=True)
    ]


def test_an_ack_names_at_most_four_blocks_the_lowest_first() -> None:
    receiver = Receiver(64)
    for seq in (3, 4, 6, 8, 10, 12, 13):
        receiver.receive(seq, "x")
    ack = receiver.ack()
    assert ack.encode() == "0;3-4,6,8,10" and Ack.parse(ack.encode(), 64) == ack
    with pytest.raises(BogusAck, match="blocks"):
        Ack.parse("0;3,5,7,9,11", 64)
