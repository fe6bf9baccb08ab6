"""punchlab: learn, teach and see UDP hole punching."""

from punchlab.errors import (
    ConnectFailed,
    LocalProtocolError,
    PunchlabError,
    RegistrationFailed,
    RemoteProtocolError,
    ServerError,
    ServerUnreachable,
    UnknownPeer,
)
from punchlab.messages import Message, MessageType, decode, encode
from punchlab.peer import TRANSITIONS, PeerConfig, PeerCore, PeerState
from punchlab.server import RendezvousCore
from punchlab.trace import EventKind, Trace, TraceEvent

__version__ = "0.1.0"

__all__ = [
    "TRANSITIONS",
    "ConnectFailed",
    "EventKind",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "PeerConfig",
    "PeerCore",
    "PeerState",
    "PunchlabError",
    "RegistrationFailed",
    "RemoteProtocolError",
    "RendezvousCore",
    "ServerError",
    "ServerUnreachable",
    "Trace",
    "TraceEvent",
    "UnknownPeer",
    "__version__",
    "decode",
    "encode",
]
