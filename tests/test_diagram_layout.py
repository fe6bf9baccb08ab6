"""The diagrams' pure geometry: label placement, the cut time axis, arrows, the state machine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from punchlab.diagram_arrows import Arrow, Point
from punchlab.diagram_layout import (
    UNSEEN_REACH,
    Box,
    LabelRequest,
    TimeAxis,
    arrow_geometry,
    busy_spans,
    place_labels,
    state_layout,
)
from punchlab.peer import TRANSITIONS, PeerState, Trigger
from punchlab.trace import EventKind

# -- place_labels ---------------------------------------------------------------------------

coordinate = st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=1, max_value=120, allow_nan=False, allow_infinity=False)
request = st.builds(
    LabelRequest,
    width=size,
    height=st.floats(min_value=1, max_value=30),
    candidates=st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=5).map(tuple),
)


def boxes_of(requests: list[LabelRequest], centres: list[tuple[float, float]]) -> list[Box]:
    return [Box.around(c, r.width, r.height) for r, c in zip(requests, centres, strict=True)]


@pytest.mark.slow
@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(request, max_size=40))
def test_placed_labels_never_overlap(requests: list[LabelRequest]) -> None:
    centres = place_labels(requests)
    for a, b in itertools.combinations(boxes_of(requests, centres), 2):
        assert not a.overlaps(b)


@pytest.mark.slow
@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(request, max_size=30))
def test_labels_only_move_vertically_from_one_of_their_spots(requests: list[LabelRequest]) -> None:
    for r, (x, y) in zip(requests, place_labels(requests), strict=True):
        assert x in {cx for cx, _ in r.candidates}
        if (x, y) not in r.candidates:
            assert x == r.candidates[0][0], "a label that had to move moves from its best spot"


@pytest.mark.slow
@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(request, max_size=25), st.data())
def test_labels_keep_off_obstacles_and_inside_roomy_bounds(
    requests: list[LabelRequest], data: st.DataObject
) -> None:
    obstacles = [Box.around(data.draw(st.tuples(coordinate, coordinate)), 40, 10) for _ in range(3)]
    bounds = Box(-50, -50, 600, 20000)  # room enough below for everything
    centres = place_labels(requests, obstacles=obstacles, bounds=bounds)
    for box in boxes_of(requests, centres):
        assert not any(box.overlaps(o) for o in obstacles)
        assert bounds.y0 - 1e-6 <= box.y0 and box.y1 <= bounds.y1 + 1e-6


def test_a_free_first_choice_is_kept_and_a_taken_one_tries_the_next_spot() -> None:
    first = LabelRequest(20, 10, ((0, 0),))
    second = LabelRequest(20, 10, ((5, 2), (100, 2)))
    assert place_labels([first, second]) == [(0, 0), (100, 2)]


def test_a_label_with_no_free_spot_moves_the_least_it_can() -> None:
    wall = LabelRequest(20, 10, ((0, 0),))
    crowded = LabelRequest(20, 10, ((0, 3),))
    # Above the wall's top (5) the label's centre must be at 10; below, at -10: 10 is nearer.
    assert place_labels([wall, crowded]) == [(0, 0), (0, 10)]


def test_labels_are_slid_sideways_into_bounds() -> None:
    [(x, _)] = place_labels([LabelRequest(40, 10, ((195, 50),))], bounds=Box(0, 0, 200, 100))
    assert x == 180


def test_touching_boxes_do_not_overlap() -> None:
    assert not Box(0, 0, 10, 10).overlaps(Box(10, 0, 20, 10))
    assert Box(0, 0, 10, 10).overlaps(Box(9, 9, 20, 20))


# -- the time axis --------------------------------------------------------------------------


def test_a_quick_punch_after_a_long_idle_wait_fills_the_axis() -> None:
    # Registration (1 ms), 400 ms of nothing, then a 3 ms punch.
    axis = TimeAxis.fit([(0.0, 1.0), (401.0, 402.0), (402.5, 404.0)])
    low, high = axis.shown_range
    punch = axis.to_display(404.0) - axis.to_display(401.0)
    assert punch / (high - low) > 0.6
    [cut] = axis.breaks
    assert (cut.start, cut.end) == (1.0, 401.0)
    assert cut.idle == 400.0


def test_pauses_no_longer_than_the_busy_time_around_them_keep_their_length() -> None:
    # 20 ms flights with 15 ms pauses between them: a punch's rhythm, uncut.
    flights = [(t, t + 20.0) for t in (0.0, 35.0, 70.0)]
    axis = TimeAxis.fit(flights)
    assert axis.breaks == ()
    assert [axis.to_display(t) for t in (0.0, 35.0, 90.0)] == [0.0, 35.0, 90.0]


def test_gaps_too_short_to_be_worth_cutting_stay() -> None:
    # A 0.2 ms pause between two 0.1 ms flights, before 100 ms of steady traffic: the
    # pause is longer than its neighbours, but a cut would be drawn taller than it.
    axis = TimeAxis.fit([(0.0, 0.1), (0.3, 0.4), (0.5, 100.5)])
    assert axis.breaks == ()


def test_a_pause_longer_than_its_neighbours_is_cut_when_that_pays() -> None:
    # Two 1 ms exchanges 1.5 ms apart, then 500 ms of nothing: both gaps are cut.
    axis = TimeAxis.fit([(0.0, 1.0), (2.5, 3.5), (503.5, 504.0)])
    assert [(b.start, b.end) for b in axis.breaks] == [(1.0, 2.5), (3.5, 503.5)]


def test_compress_false_is_plain_linear_time() -> None:
    axis = TimeAxis.fit([(0.0, 1.0), (401.0, 404.0)], compress=False)
    assert axis.breaks == ()
    assert axis.to_display(402.0) == 402.0


def test_instantaneous_events_are_spaced_evenly() -> None:
    axis = TimeAxis.fit([(0.0, 0.0), (500.0, 500.0), (1000.0, 1000.0)])
    shown = [axis.to_display(t) for t in (0.0, 500.0, 1000.0)]
    assert len(axis.breaks) == 2
    assert shown[1] - shown[0] == pytest.approx(shown[2] - shown[1])


@settings(derandomize=True, max_examples=200, deadline=None)
@example(flights=[(0.0, 0.0), (3666.0, 0.01)])  # a break's edge, once read as inside it
@example(flights=[(0.0, 2.225073858507203e-309), (1.0, 0.0)])  # a cut of nothing
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5000, allow_nan=False),
            st.floats(min_value=0, max_value=50, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_axis_keeps_time_order_and_inverts(flights: list[tuple[float, float]]) -> None:
    axis = TimeAxis.fit([(start, start + length) for start, length in flights])
    times = sorted({t for a, b in busy_spans((s, s + n) for s, n in flights) for t in (a, b)})
    shown = [axis.to_display(t) for t in times]
    assert shown == sorted(shown)
    for t, y in zip(times, shown, strict=True):
        assert axis.to_time(y) == pytest.approx(t, abs=1e-6)


# -- arrows ---------------------------------------------------------------------------------


def test_an_unseen_datagram_stops_short_of_the_next_lifeline_towards_its_receiver() -> None:
    arrow = Arrow("HELLO", "...", [Point(1.0, "B")], EventKind.SENT, toward="A")
    geometry = arrow_geometry(arrow, {"A": 0, "server": 1, "B": 2}, lambda t: t * 1000)
    assert geometry.end == "unseen"
    assert geometry.points == ((2.0, 1000.0), (2.0 - UNSEEN_REACH, 1000.0))
    assert UNSEEN_REACH < 1
    assert all(1.0 < x < 2.0 for x, _ in geometry.label_spots)


def test_a_loss_on_a_link_stops_between_lifelines() -> None:
    points = [Point(0.0, "A"), Point(0.001, "NAT A"), Point(0.01, "NAT A")]
    arrow = Arrow("HELLO", "...", points, EventKind.DROPPED, "lost on link", toward="server")
    geometry = arrow_geometry(arrow, {"A": 0, "NAT A": 1, "server": 2}, lambda t: t)
    assert geometry.end == "cross"
    x, _ = geometry.points[-1]
    assert 1 < x < 2


# -- the state machine ----------------------------------------------------------------------


def test_state_layout_places_every_state_and_every_transition() -> None:
    layout = state_layout(TRANSITIONS)
    assert set(layout.positions) == set(PeerState)
    expected = {(s, t) for (s, trig), t in TRANSITIONS.items() if trig is not Trigger.CLOSE}
    assert {(e.source, e.target) for e in layout.edges} == expected
    assert layout.closed is PeerState.CLOSED
    lowest = min(y for state, (_, y) in layout.positions.items() if state is not PeerState.CLOSED)
    assert layout.positions[PeerState.CLOSED][1] < lowest
    assert f"{len(PeerState) - 1} states" in layout.close_note


def test_state_layout_columns_follow_the_distance_from_idle() -> None:
    layout = state_layout(TRANSITIONS)
    column = {state: x for state, (x, _) in layout.positions.items()}
    assert column[PeerState.IDLE] < column[PeerState.REGISTERING] < column[PeerState.REGISTERED]
    assert column[PeerState.PUNCHING] < column[PeerState.CONNECTED]


def test_edges_back_bend_and_a_pair_of_opposite_edges_keep_their_labels_apart() -> None:
    layout = state_layout(TRANSITIONS)
    edges = {(e.source, e.target): e for e in layout.edges}
    back = edges[(PeerState.PUNCHING, PeerState.FAILED)]
    forth = edges[(PeerState.FAILED, PeerState.PUNCHING)]
    assert back.bend > 0 and forth.bend == 0
    (px, py), (fx, fy) = layout.positions[PeerState.PUNCHING], layout.positions[PeerState.FAILED]
    # Opposite sides of the line between the two states.
    side = [
        (lx - fx) * (py - fy) - (ly - fy) * (px - fx) for lx, ly in (back.label_at, forth.label_at)
    ]
    assert side[0] * side[1] < 0
