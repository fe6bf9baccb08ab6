"""The asyncio driver: the protocol core on real UDP sockets and aiohttp."""

from punchlab.aio.peer import Peer
from punchlab.aio.server import DEFAULT_HTTP_PORT, DEFAULT_UDP_PORT, RendezvousServer

__all__ = ["DEFAULT_HTTP_PORT", "DEFAULT_UDP_PORT", "Peer", "RendezvousServer"]
