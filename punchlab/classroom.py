"""Which rendezvous server a notebook's real peers use, and where their sockets bind.

A notebook must run top to bottom with no network (Run All, nbval, Binder):
unless told otherwise it starts its own server inside the kernel, on
loopback, on ports the system picks. A teacher points it at the class's
server by setting ``PUNCHLAB_SERVER`` (or the notebook's ``SERVER_URL``), or
opens the notebook's own server to the class with ``host="0.0.0.0"``; a test
points it at a ``punchlab serve`` it started.
"""

from __future__ import annotations

import ipaddress
import os
from typing import NamedTuple
from urllib.parse import urlsplit

from punchlab.aio import DEFAULT_HTTP_PORT, DEFAULT_UDP_PORT, RendezvousServer

__all__ = ["SERVER_ENV", "NotebookServer", "is_loopback", "notebook_server", "peer_host_for"]

#: The environment variable that names the class's server, e.g. ``http://192.168.1.20:8088``.
SERVER_ENV = "PUNCHLAB_SERVER"


class NotebookServer(NamedTuple):
    """The server's URL, the server itself when it runs in this kernel, and the peers' bind host."""

    url: str
    server: RendezvousServer | None
    peer_host: str


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (a server there needs no network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def peer_host_for(url: str) -> str:
    """Where a peer binds to reach the server at ``url``: loopback stays loopback.

    A socket bound to 127.0.0.1 cannot send to another machine, and one bound
    to every address would answer the LAN when only loopback is meant.
    """
    host = urlsplit(url).hostname or ""
    return "127.0.0.1" if is_loopback(host) else "0.0.0.0"


async def notebook_server(url: str | None = None, *, host: str = "127.0.0.1") -> NotebookServer:
    """The server named by ``url`` (or ``$PUNCHLAB_SERVER``), else one started here on ``host``.

    On loopback the ports are the system's choice, so Run All never collides
    with anything; on another host (a teacher's ``"0.0.0.0"``) they are the
    well-known 8088 and 8089 that ``punchlab chat`` expects.
    """
    chosen = url if url else os.environ.get(SERVER_ENV, "")
    if chosen:
        chosen = chosen.strip().rstrip("/")
        return NotebookServer(chosen, None, peer_host_for(chosen))
    local = is_loopback(host)
    server = RendezvousServer(
        host,
        udp_port=0 if local else DEFAULT_UDP_PORT,
        http_port=0 if local else DEFAULT_HTTP_PORT,
    )
    await server.start()
    return NotebookServer(server.url, server, peer_host_for(server.url))
