"""Errors punchlab raises on purpose, split the way DESIGN.md asks.

A *local* error is our own misuse (a wrong call, a bug). A *remote* error is
bad input from the network: drivers count it, trace it and drop it, and it
never escapes a receive loop. The rest are the clear failures a user sees
when something outside goes wrong (a server that does not answer, a peer that
cannot be reached).
"""

from __future__ import annotations

__all__ = [
    "ConnectFailed",
    "LocalProtocolError",
    "PunchlabError",
    "RegistrationFailed",
    "RemoteProtocolError",
    "ServerError",
    "ServerUnreachable",
    "UnknownPeer",
]


class PunchlabError(Exception):
    """Base of every error punchlab raises on purpose."""


class LocalProtocolError(PunchlabError):
    """Our own side misused the protocol (a bug or a wrong call, never the network)."""


class RemoteProtocolError(PunchlabError):
    """The network sent something we cannot accept; counted, traced and dropped."""

    reason = "malformed"


class ServerUnreachable(PunchlabError):
    """The rendezvous server's HTTP endpoint did not answer."""


class ServerError(PunchlabError):
    """The rendezvous server answered with an error we did not expect."""


class RegistrationFailed(PunchlabError):
    """No REGISTRATION answer came back over UDP."""


class UnknownPeer(PunchlabError):
    """The server does not know the identifier we asked to talk to (HTTP 404)."""


class ConnectFailed(PunchlabError):
    """Hole punching did not succeed before the deadline, or the peer went away."""
