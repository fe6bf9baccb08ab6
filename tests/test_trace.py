"""The trace of DESIGN.md section 4: recording, filtering, JSON Lines, merging, the table."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from punchlab.messages import MAX_DATAGRAM_BYTES, Message, MessageType, encode
from punchlab.trace import EventKind, Trace, TraceEvent

A = ("10.0.0.2", 5000)
A_PUBLIC = ("198.51.100.7", 62001)
SERVER = ("203.0.113.1", 9000)
B_PUBLIC = ("198.51.100.9", 40000)


def wire(message_type: MessageType, payload: str = "...") -> bytes:
    return encode(Message(message_type, payload))


def event(
    time: float,
    actor: str = "a",
    kind: EventKind = EventKind.SENT,
    msg_type: str = "HELLO",
    **extra: object,
) -> TraceEvent:
    fields: dict[str, object] = {"src": "1.1.1.1:1", "dst": "2.2.2.2:2", **extra}
    return TraceEvent(time=time, kind=kind, actor=actor, msg_type=msg_type, **fields)  # type: ignore[arg-type]


@pytest.fixture
def session() -> Trace:
    """A small registration and punch, as the simulator would record it."""
    trace = Trace()
    trace.datagram(EventKind.SENT, 1.000, "peer-a", A, SERVER, wire(MessageType.REGISTRATION, ""))
    trace.record(
        TraceEvent(
            time=1.001,
            kind=EventKind.TRANSLATED,
            actor="nat-a",
            src="10.0.0.2:5000",
            dst="203.0.113.1:9000",
            msg_type="REGISTRATION",
            new_src="198.51.100.7:62001",
            packet=1,
        )
    )
    trace.datagram(
        EventKind.DELIVERED, 1.020, "server", A_PUBLIC, SERVER, wire(MessageType.REGISTRATION, "")
    )
    trace.datagram(
        EventKind.SENT, 1.021, "server", SERVER, A_PUBLIC, wire(MessageType.REGISTRATION, "id-a")
    )
    trace.datagram(
        EventKind.DROPPED,
        2.500,
        "nat-b",
        A_PUBLIC,
        B_PUBLIC,
        wire(MessageType.HELLO),
        reason="filtered",
        packet=7,
    )
    trace.datagram(
        EventKind.DELIVERED, 3.000, "peer-a", B_PUBLIC, A, wire(MessageType.TEXT, "hi\n")
    )
    return trace


# -- recording -----------------------------------------------------------------------------


def test_datagram_records_described_event() -> None:
    trace = Trace()
    returned = trace.datagram(
        EventKind.SENT, 0.5, "peer-a", A, "203.0.113.1:9000", wire(MessageType.TEXT, "hello\n")
    )
    assert len(trace) == 1
    assert trace[0] is returned
    assert returned == TraceEvent(
        time=0.5,
        kind=EventKind.SENT,
        actor="peer-a",
        src="10.0.0.2:5000",
        dst="203.0.113.1:9000",
        msg_type="TEXT",
        payload="hello",
    )


def test_datagram_keeps_reason_and_packet() -> None:
    trace = Trace()
    ev = trace.datagram(
        EventKind.DROPPED, 1.0, "link", A, SERVER, wire(MessageType.HELLO), reason="lost", packet=3
    )
    assert ev.kind is EventKind.DROPPED
    assert ev.reason == "lost"
    assert ev.packet == 3
    assert ev.msg_type == "HELLO"
    assert ev.payload == "..."


def test_datagram_describes_bad_bytes_without_raising() -> None:
    trace = Trace()
    junk = trace.datagram(EventKind.DELIVERED, 0.0, "server", A, SERVER, b"\xff\x00junk")
    unknown = trace.datagram(
        EventKind.DELIVERED, 0.1, "server", A, SERVER, b'{"type":"FUTURE","payload":"x"}'
    )
    big = trace.datagram(
        EventKind.DELIVERED, 0.2, "server", A, SERVER, b"x" * (MAX_DATAGRAM_BYTES + 1)
    )
    assert (junk.msg_type, junk.payload) == ("MALFORMED", "6 bytes")
    assert (unknown.msg_type, unknown.payload) == ("FUTURE", "")
    assert big.msg_type == "OVERSIZED"
    assert len(trace) == 3


def test_datagram_shortens_long_payloads() -> None:
    trace = Trace()
    ev = trace.datagram(EventKind.SENT, 0.0, "a", A, SERVER, wire(MessageType.TEXT, "z" * 500))
    assert ev.payload.startswith("zzz")
    assert ev.payload.endswith("…")
    assert len(ev.payload) < 100


# -- reading -------------------------------------------------------------------------------


def test_filter_by_actors(session: Trace) -> None:
    only = session.filter(actors=["peer-a"])
    assert [e.actor for e in only] == ["peer-a", "peer-a"]
    assert [e.time for e in only] == [1.000, 3.000]
    assert len(session) == 6  # the original is untouched


def test_filter_by_types(session: Trace) -> None:
    registrations = session.filter(types=["REGISTRATION"])
    assert len(registrations) == 4
    assert {e.msg_type for e in registrations} == {"REGISTRATION"}
    assert len(session.filter(types=[MessageType.HELLO, MessageType.TEXT])) == 2


def test_filter_by_kinds(session: Trace) -> None:
    assert [e.actor for e in session.filter(kinds=[EventKind.DROPPED])] == ["nat-b"]
    delivered_or_sent = session.filter(kinds=["delivered", "sent"])
    assert [e.time for e in delivered_or_sent] == [1.000, 1.020, 1.021, 3.000]


def test_filter_by_time_range_is_inclusive(session: Trace) -> None:
    window = session.filter(time_range=(1.020, 2.500))
    assert [e.time for e in window] == [1.020, 1.021, 2.500]


def test_filter_combines_criteria(session: Trace) -> None:
    result = session.filter(actors=["server"], kinds=[EventKind.SENT], types=["REGISTRATION"])
    assert len(result) == 1
    assert result[0].payload == "id-a"
    assert len(session.filter(actors=["server"], time_range=(2.0, 5.0))) == 0


def test_filter_without_criteria_copies(session: Trace) -> None:
    copy = session.filter()
    assert copy == session
    assert copy is not session
    copy.record(event(9.0))
    assert len(session) == 6


def test_filter_rejects_unknown_kind(session: Trace) -> None:
    with pytest.raises(ValueError):
        session.filter(kinds=["exploded"])


def test_count(session: Trace) -> None:
    assert session.count(EventKind.SENT) == 2
    assert session.count("delivered") == 2
    assert session.count(EventKind.DELIVERED, "TEXT") == 1
    assert session.count(EventKind.SENT, "HELLO") == 0
    assert session.count(EventKind.DROPPED, "HELLO") == 1
    assert session.count(EventKind.IGNORED) == 0


def test_actors_in_order_of_first_appearance(session: Trace) -> None:
    assert session.actors() == ["peer-a", "nat-a", "server", "nat-b"]
    assert Trace().actors() == []


def test_sequence_protocol(session: Trace) -> None:
    assert len(session) == 6
    assert [e.time for e in session] == [1.000, 1.001, 1.020, 1.021, 2.500, 3.000]
    assert session[-1].msg_type == "TEXT"
    assert session != Trace(session.events[:-1])
    assert session != session.events


# -- JSON Lines ----------------------------------------------------------------------------


def test_jsonl_round_trip(session: Trace) -> None:
    text = session.to_jsonl()
    assert text.count("\n") == len(session)
    assert Trace.from_jsonl(text) == session


def test_jsonl_lines_are_json_objects_without_empty_extras(session: Trace) -> None:
    lines = session.to_jsonl().splitlines()
    first = json.loads(lines[0])
    assert first == {
        "time": 1.0,
        "kind": "sent",
        "actor": "peer-a",
        "src": "10.0.0.2:5000",
        "dst": "203.0.113.1:9000",
        "msg_type": "REGISTRATION",
    }
    translated = json.loads(lines[1])
    assert translated["new_src"] == "198.51.100.7:62001"
    assert translated["packet"] == 1
    assert "new_dst" not in translated


def test_jsonl_is_stable(session: Trace) -> None:
    assert session.to_jsonl() == Trace.from_jsonl(session.to_jsonl()).to_jsonl()


def test_jsonl_keeps_zero_time_and_zero_packet() -> None:
    trace = Trace([event(0.0, packet=0)])
    loaded = Trace.from_jsonl(trace.to_jsonl())
    assert loaded[0].time == 0.0
    assert loaded[0].packet == 0


def test_empty_trace_round_trip() -> None:
    assert Trace().to_jsonl() == ""
    assert Trace.from_jsonl("") == Trace()


def test_from_jsonl_skips_blank_lines(session: Trace) -> None:
    text = "\n" + session.to_jsonl().replace("\n", "\n\n") + "   \n"
    assert Trace.from_jsonl(text) == session


def test_save_and_load(session: Trace, tmp_path: Path) -> None:
    path = session.save(tmp_path / "run.jsonl")
    assert path == tmp_path / "run.jsonl"
    assert path.read_text(encoding="utf-8") == session.to_jsonl()
    assert Trace.load(path) == session
    assert Trace.load(str(path)) == session


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "object"),
        ('{"kind": "sent", "actor": "a"}', "time"),
        ('{"time": 1.0, "actor": "a"}', "kind"),
        ('{"time": 1.0, "kind": "sent"}', "actor"),
        ('{"time": 1.0, "kind": "exploded", "actor": "a"}', "exploded"),
        ('{"time": "soon", "kind": "sent", "actor": "a"}', "soon"),
        ('{"time": null, "kind": "sent", "actor": "a"}', ""),
        ('{"time": 1.0, "kind": "sent", "actor": "a", "packet": "x"}', ""),
        # A trace from another machine: no invented actor, no time that is not a time.
        ('{"time": 1.0, "kind": "sent", "actor": null}', "actor"),
        ('{"time": 1.0, "kind": "sent", "actor": ""}', "actor"),
        ('{"time": "nan", "kind": "sent", "actor": "a"}', "nan"),
        ('{"time": NaN, "kind": "sent", "actor": "a"}', "nan"),
        ('{"time": Infinity, "kind": "sent", "actor": "a"}', "inf"),
        ('{"time": true, "kind": "sent", "actor": "a"}', "True"),
    ],
)
def test_from_jsonl_names_the_bad_line(session: Trace, bad: str, what: str) -> None:
    lines = session.to_jsonl().splitlines()
    lines.insert(2, bad)
    with pytest.raises(ValueError, match="line 3") as info:
        Trace.from_jsonl("\n".join(lines))
    assert what in str(info.value)


def test_from_jsonl_bad_first_line() -> None:
    with pytest.raises(ValueError, match="line 1"):
        Trace.from_jsonl("{")


event_text = st.text(max_size=30)
events = st.builds(
    TraceEvent,
    time=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    kind=st.sampled_from(list(EventKind)),
    actor=st.text(min_size=1, max_size=10),
    src=event_text,
    dst=event_text,
    msg_type=event_text,
    payload=event_text,
    reason=event_text,
    new_src=event_text,
    new_dst=event_text,
    packet=st.none() | st.integers(min_value=0, max_value=2**40),
)


@pytest.mark.slow
@settings(derandomize=True, max_examples=200)
@given(st.lists(events, max_size=5))
def test_jsonl_round_trip_arbitrary_events(items: list[TraceEvent]) -> None:
    trace = Trace(items)
    assert Trace.from_jsonl(trace.to_jsonl()) == trace


@settings(derandomize=True, max_examples=200)
@given(st.text(max_size=60))
def test_jsonl_round_trip_any_received_text(text: str) -> None:
    """Whatever a peer types, the trace of it saves and loads back unchanged."""
    trace = Trace()
    trace.datagram(
        EventKind.DELIVERED, 1.0, "peer-b", A_PUBLIC, B_PUBLIC, wire(MessageType.TEXT, text)
    )
    assert Trace.from_jsonl(trace.to_jsonl()) == trace


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_jsonl_round_trip_unicode_line_separators(separator: str, tmp_path: Path) -> None:
    trace = Trace()
    payload = f"one{separator}two"
    trace.datagram(EventKind.SENT, 1.0, "peer-a", A, B_PUBLIC, wire(MessageType.TEXT, payload))
    assert trace[0].payload == payload
    assert Trace.from_jsonl(trace.to_jsonl()) == trace
    assert Trace.load(trace.save(tmp_path / "sep.jsonl")) == trace


# -- merging -------------------------------------------------------------------------------


def test_merge_interleaves_by_time() -> None:
    left = Trace([event(1.0, "a"), event(3.0, "a"), event(5.0, "a")])
    right = Trace([event(2.0, "b"), event(4.0, "b")])
    merged = Trace.merge(left, right)
    assert [(e.time, e.actor) for e in merged] == [
        (1.0, "a"),
        (2.0, "b"),
        (3.0, "a"),
        (4.0, "b"),
        (5.0, "a"),
    ]
    assert len(left) == 3
    assert len(right) == 2


def test_merge_ties_keep_argument_order() -> None:
    first = Trace([event(1.0, "x", payload="x1"), event(1.0, "x", payload="x2")])
    second = Trace([event(1.0, "y", payload="y1")])
    third = Trace([event(0.5, "z"), event(1.0, "z", payload="z1")])
    merged = Trace.merge(second, first, third)
    assert [e.payload or e.actor for e in merged] == ["z", "y1", "x1", "x2", "z1"]
    merged = Trace.merge(first, second, third)
    assert [e.payload or e.actor for e in merged] == ["z", "x1", "x2", "y1", "z1"]


def test_merge_edge_cases(session: Trace) -> None:
    assert Trace.merge() == Trace()
    assert Trace.merge(session) == session
    assert Trace.merge(Trace(), session, Trace()) == session


def test_merge_of_saved_runs(session: Trace, tmp_path: Path) -> None:
    server_side = session.filter(actors=["server"])
    peer_side = session.filter(actors=["peer-a", "nat-a", "nat-b"])
    server_side.save(tmp_path / "server.jsonl")
    peer_side.save(tmp_path / "peer.jsonl")
    merged = Trace.merge(Trace.load(tmp_path / "peer.jsonl"), Trace.load(tmp_path / "server.jsonl"))
    assert merged == session


# -- table ---------------------------------------------------------------------------------


def test_table_of_empty_trace() -> None:
    assert Trace().table() == "(empty trace)"
    assert str(Trace()) == "(empty trace)"


def test_table_contents(session: Trace) -> None:
    table = session.table()
    lines = table.splitlines()
    assert len(lines) == 1 + len(session)
    header = lines[0].split()
    assert header == ["ms", "event", "actor", "from", "to", "type", "detail"]
    assert lines[1].split()[:2] == ["0.0", "sent"]
    assert lines[2].split()[0] == "1.0"
    assert lines[3].split()[0] == "20.0"
    assert lines[5].split()[0] == "1500.0"
    assert lines[6].split()[0] == "2000.0"
    for name in ("REGISTRATION", "HELLO", "TEXT"):
        assert name in table
    assert "10.0.0.2:5000 -> 198.51.100.7:62001" in lines[2]
    assert lines[5].endswith("filtered")
    assert lines[6].endswith("hi")
    assert str(session) == table


def test_table_columns_line_up(session: Trace) -> None:
    lines = session.table().splitlines()
    column = lines[0].index("type")
    for line in lines[1:]:
        assert line[column:].split()[0] in ("REGISTRATION", "HELLO", "TEXT")


def test_table_translated_destination() -> None:
    trace = Trace(
        [
            event(
                0.0,
                "nat-b",
                EventKind.TRANSLATED,
                dst="198.51.100.9:40000",
                new_dst="10.0.1.2:5000",
            )
        ]
    )
    assert "198.51.100.9:40000 -> 10.0.1.2:5000" in trace.table()


def test_table_with_start(session: Trace) -> None:
    lines = session.table(start=0.0).splitlines()
    assert lines[1].split()[0] == "1000.0"
    assert lines[6].split()[0] == "3000.0"


def test_table_limit_notice(session: Trace) -> None:
    table = session.table(limit=2)
    lines = table.splitlines()
    assert len(lines) == 1 + 2 + 1
    assert lines[-1] == "... 4 more events"
    assert "TEXT" not in table
    assert "more events" not in session.table(limit=6)
    assert "more events" not in session.table(limit=100)


def test_table_limit_zero_does_not_claim_empty(session: Trace) -> None:
    table = session.table(limit=0)
    assert table != "(empty trace)"
    assert "6 more events" in table


def test_a_bounded_trace_keeps_the_newest_events() -> None:
    trace = Trace(max_events=100)
    for index in range(1000):
        trace.record_http(EventKind.SENT, float(index), "A", "1.2.3.4:5", "5.6.7.8:9", str(index))
    assert 100 <= len(trace) <= 125
    assert trace[-1].payload == "999"
    assert trace[0].time == 1000 - len(trace)


def test_a_datagram_noted_for_later_reads_as_if_described_at_once() -> None:
    eager, lazy = Trace(), Trace()
    for trace, note in ((eager, eager.datagram), (lazy, lazy.datagram_later)):
        note(EventKind.DELIVERED, 1.0, "server", A_PUBLIC, SERVER, wire(MessageType.REGISTRATION))
        trace.record_http(EventKind.SENT, 1.5, "peer-a", A, SERVER, "POST /start-communication")
        note(EventKind.SENT, 2.0, "server", SERVER, B_PUBLIC, b"\xffjunk")
    assert len(lazy) == 3
    assert lazy.events == eager.events
    assert [e.msg_type for e in lazy] == ["REGISTRATION", "HTTP", "MALFORMED"]


def test_len_of_a_trace_does_not_describe_what_was_noted() -> None:
    trace = Trace()
    trace.datagram_later(EventKind.SENT, 1.0, "server", SERVER, A_PUBLIC, wire(MessageType.TEXT))
    assert len(trace) == 1 and trace._noted  # counted, still raw
    assert trace[0].msg_type == "TEXT" and not trace._noted


def test_a_bounded_trace_keeps_the_newest_datagrams_noted_for_later() -> None:
    trace = Trace(max_events=100)
    trace.record_http(EventKind.SENT, -1.0, "A", A, SERVER, "first")
    for index in range(1000):
        trace.datagram_later(EventKind.SENT, float(index), "A", A, SERVER, wire(MessageType.TEXT))
        assert len(trace) <= 125
    assert len(trace) >= 100
    assert trace[-1].time == 999.0
    assert trace[0].time == 1000 - len(trace)


def test_a_trace_of_big_datagrams_keeps_their_descriptions_not_their_bytes() -> None:
    trace = Trace(max_events=1000)
    tracemalloc.start()
    try:
        for index in range(2000):
            data = wire(MessageType.TEXT, f"{index:05d}" + "z" * 8000)  # 8 KB each
            trace.datagram_later(EventKind.DELIVERED, float(index), "server", A, SERVER, data)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(trace) <= 1250
    assert held < 1250 * 1024  # the bytes themselves would be 10 MB
    assert trace[-1].payload.startswith("01999zzz") and trace[-1].payload.endswith("…")
