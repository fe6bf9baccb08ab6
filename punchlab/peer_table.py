"""The peer's state table: the one place that says what may happen in each state.

For every state it lists the transitions (trigger -> next state), the timers
that run while the peer is in it, and whether datagrams from the introduced
partner mean anything there. :class:`punchlab.peer.PeerCore` reads it to act
(a timer is armed on entering a state that lists it and disarmed on leaving),
the diagram draws it, the widgets ask it which states can be introduced, and
the tests check the code against it. A new way to connect adds a state with
its timers here, not ``if``s in the core.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "LADDER_NOTE",
    "LADDER_STATES",
    "PUNCHING_STATES",
    "STATES",
    "TIMER_ORDER",
    "TRANSITIONS",
    "PeerState",
    "StateSpec",
    "Timer",
    "Trigger",
    "accepts_introduction",
    "ladder_transitions",
]


class PeerState(enum.StrEnum):
    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    PUNCHING = "punching"
    PREDICTING = "predicting ports"
    PROBING = "birthday probing"
    RELAYING = "relaying"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    CLOSED = "closed"


class Trigger(enum.StrEnum):
    REGISTER = "register"
    REGISTRATION_ANSWERED = "REGISTRATION answered"
    REGISTRATION_TIMEOUT = "registration timed out"
    INTRODUCED = "introduced"
    SUCCESS_RECEIVED = "SUCCESS received"
    PUNCH_TIMEOUT = "punching timed out"
    PREDICT = "direct failed: predict ports"
    PROBE = "direct failed: birthday probe"
    RELAY = "no hole: relay"
    PEER_SILENT = "peer went silent"
    CLOSE = "close"


class Timer(enum.StrEnum):
    """What a peer does on its own, at a time it chose."""

    REGISTRATION_RETRY = "send REGISTRATION (again)"
    PUNCH_DEADLINE = "give up punching"
    HELLO = "send HELLO (again)"
    SERVER_BEAT = "HEART-BEAT to the server"
    PEER_SILENCE = "declare a silent peer gone"
    PEER_BEAT = "HEART-BEAT to the peer"
    ESCALATE = "try the next way to connect"
    REPORT = "tell the partner about our NAT (relayed)"
    PROBE = "send the next birthday probes"
    DIRECT_RETRY = "try direct again (while relayed)"
    RETRANSMIT = "send unacknowledged TEXT again"


#: When several timers are due at once they run in this order: a give-up
#: before the retry it ends, the server's beat before a state change re-arms it.
TIMER_ORDER: tuple[Timer, ...] = tuple(Timer)


@dataclass(frozen=True)
class StateSpec:
    """One row of the table."""

    transitions: Mapping[Trigger, PeerState]
    #: Timers running in this state: armed on entry (if not already running),
    #: disarmed on leaving for a state that does not list them.
    timers: frozenset[Timer] = frozenset()
    #: Timers armed afresh on entering this state even if already running.
    restart: frozenset[Timer] = frozenset()
    #: Whether HELLO, SUCCESS, TEXT and HEART-BEAT from the partner count here.
    talks_to_peer: bool = False
    #: Whether the server heart-beat goes at the faster waiting pace here.
    waiting: bool = False
    #: Whether HELLOs go through the server's relay instead of straight to the peer.
    relays: bool = False
    description: str = field(default="", compare=False)


_S, _T, _M = PeerState, Trigger, Timer


def _closable(transitions: dict[Trigger, PeerState]) -> Mapping[Trigger, PeerState]:
    """Every state but CLOSED can be closed."""
    return MappingProxyType({**transitions, _T.CLOSE: _S.CLOSED})


#: The peer's states. A trigger not listed for a state is a local error.
STATES: Mapping[PeerState, StateSpec] = MappingProxyType(
    {
        _S.IDLE: StateSpec(_closable({_T.REGISTER: _S.REGISTERING})),
        _S.REGISTERING: StateSpec(
            _closable(
                {_T.REGISTRATION_ANSWERED: _S.REGISTERED, _T.REGISTRATION_TIMEOUT: _S.FAILED}
            ),
            timers=frozenset({_M.REGISTRATION_RETRY}),
        ),
        _S.REGISTERED: StateSpec(
            _closable({_T.INTRODUCED: _S.PUNCHING}),
            timers=frozenset({_M.SERVER_BEAT}),
            waiting=True,
        ),
        # The traversal ladder (punchlab.traversal): direct first, then the
        # rung both sides choose from what they know, the relay last. The
        # punch's deadline runs on from the introduction through every rung.
        _S.PUNCHING: StateSpec(
            _closable(
                {
                    _T.SUCCESS_RECEIVED: _S.CONNECTED,
                    _T.PUNCH_TIMEOUT: _S.FAILED,
                    _T.PREDICT: _S.PREDICTING,
                    _T.PROBE: _S.PROBING,
                    _T.RELAY: _S.RELAYING,
                }
            ),
            timers=frozenset({_M.HELLO, _M.PUNCH_DEADLINE, _M.SERVER_BEAT, _M.ESCALATE, _M.REPORT}),
            talks_to_peer=True,
        ),
        _S.PREDICTING: StateSpec(
            _closable(
                {
                    _T.SUCCESS_RECEIVED: _S.CONNECTED,
                    _T.PUNCH_TIMEOUT: _S.FAILED,
                    _T.RELAY: _S.RELAYING,
                }
            ),
            timers=frozenset({_M.HELLO, _M.PUNCH_DEADLINE, _M.SERVER_BEAT, _M.ESCALATE}),
            restart=frozenset({_M.ESCALATE}),
            talks_to_peer=True,
        ),
        _S.PROBING: StateSpec(
            _closable(
                {
                    _T.SUCCESS_RECEIVED: _S.CONNECTED,
                    _T.PUNCH_TIMEOUT: _S.FAILED,
                    _T.RELAY: _S.RELAYING,
                }
            ),
            timers=frozenset({_M.HELLO, _M.PUNCH_DEADLINE, _M.SERVER_BEAT, _M.ESCALATE, _M.PROBE}),
            restart=frozenset({_M.ESCALATE}),
            talks_to_peer=True,
        ),
        _S.RELAYING: StateSpec(
            _closable({_T.SUCCESS_RECEIVED: _S.CONNECTED, _T.PUNCH_TIMEOUT: _S.FAILED}),
            timers=frozenset({_M.HELLO, _M.PUNCH_DEADLINE, _M.SERVER_BEAT}),
            restart=frozenset({_M.HELLO}),
            talks_to_peer=True,
            relays=True,
        ),
        _S.CONNECTED: StateSpec(
            _closable({_T.PEER_SILENT: _S.DISCONNECTED}),
            # The server keeps hearing from a connected peer (as Go clients do
            # not), so its registration is still there for a later introduction.
            # A relayed connection keeps trying the direct path. Numbered TEXTs
            # (punchlab.reliable) go again until acknowledged or the peer is gone.
            timers=frozenset(
                {_M.PEER_BEAT, _M.PEER_SILENCE, _M.SERVER_BEAT, _M.DIRECT_RETRY, _M.RETRANSMIT}
            ),
            talks_to_peer=True,
        ),
        # A registered peer whose punch failed or whose partner vanished may
        # be introduced again (to the same or another peer).
        _S.FAILED: StateSpec(
            _closable({_T.INTRODUCED: _S.PUNCHING}), timers=frozenset({_M.SERVER_BEAT})
        ),
        _S.DISCONNECTED: StateSpec(
            _closable({_T.INTRODUCED: _S.PUNCHING}),
            timers=frozenset({_M.SERVER_BEAT}),
            restart=frozenset({_M.SERVER_BEAT}),
        ),
        _S.CLOSED: StateSpec(MappingProxyType({})),
    }
)

#: Every allowed transition, ``(state, trigger) -> next state`` (the table, flat).
TRANSITIONS: Mapping[tuple[PeerState, Trigger], PeerState] = MappingProxyType(
    {
        **{
            (state, trigger): new
            for state, spec in STATES.items()
            for trigger, new in spec.transitions.items()
            if trigger is not _T.CLOSE
        },
        **{(state, _T.CLOSE): _S.CLOSED for state in PeerState if state is not _S.CLOSED},
    }
)


#: The states of a punch under way: each ends in CONNECTED on a SUCCESS.
PUNCHING_STATES: frozenset[PeerState] = frozenset(
    state
    for state, spec in STATES.items()
    if spec.transitions.get(Trigger.SUCCESS_RECEIVED) is PeerState.CONNECTED
)


#: The traversal ladder's rungs after the direct punch (punchlab.traversal).
LADDER_STATES: frozenset[PeerState] = frozenset(
    {PeerState.PREDICTING, PeerState.PROBING, PeerState.RELAYING}
)


def ladder_transitions(*, ladder: bool) -> Mapping[tuple[PeerState, Trigger], PeerState]:
    """The table seen two ways, for two readable drawings: without the ladder's rungs
    (the peer's life), or only the punch and its rungs (how it climbs)."""
    if not ladder:
        return MappingProxyType(
            {
                (state, trigger): new
                for (state, trigger), new in TRANSITIONS.items()
                if state not in LADDER_STATES and new not in LADDER_STATES
            }
        )
    # The punch and every rung end in CONNECTED on a SUCCESS and in FAILED at the
    # deadline: the drawing says so once (LADDER_NOTE) instead of with eight arrows.
    return MappingProxyType({key: new for key, new in TRANSITIONS.items() if new in LADDER_STATES})


#: What the ladder's drawing leaves out, and says instead.
LADDER_NOTE = (
    f"from {PeerState.PUNCHING.value} and every rung: {Trigger.SUCCESS_RECEIVED.value} "
    f"-> {PeerState.CONNECTED.value}; {Trigger.PUNCH_TIMEOUT.value} -> {PeerState.FAILED.value}"
)


def accepts_introduction(state: PeerState) -> bool:
    """Whether a peer in ``state`` may be introduced (and so may ask to be)."""
    return Trigger.INTRODUCED in STATES[state].transitions
