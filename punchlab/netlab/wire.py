"""A delay line for kernels without netem: Ethernet frames held, then passed on.

``python -m punchlab.netlab.wire --delay 20 --loss 0.1 --seed 0 a0:a1 b0:b1``
runs inside a namespace that holds both ends of each public link; every frame
that arrives on one interface of a pair leaves the other after ``delay`` ms
(or is dropped with probability ``loss``). It is the lab's own cable: the IP
packets, the NATs and the sockets on either side stay the kernel's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import socket
import sys

__all__ = ["main"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65535


def _open(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


async def _run(pairs: list[tuple[str, str]], delay: float, loss: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    sockets: dict[str, socket.socket] = {}
    for left, right in pairs:
        sockets[left], sockets[right] = _open(left), _open(right)

    def forward(source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                frame, address = source.recvfrom(MAX_FRAME)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own transmission, seen on the way out
            if loss and rng.random() < loss:
                continue
            loop.call_later(delay, _send, target, frame)

    for left, right in pairs:
        a, b = sockets[left], sockets[right]
        loop.add_reader(a.fileno(), forward, a, b)
        loop.add_reader(b.fileno(), forward, b, a)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("wire ready", flush=True)
    await stop.wait()


def _send(target: socket.socket, frame: bytes) -> None:
    with contextlib.suppress(OSError):  # the link went down: the lab is being torn down
        target.send(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay in ms")
    parser.add_argument("--loss", type=float, default=0.0, help="chance a frame is lost, 0..1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("pairs", nargs="+", metavar="IF:IF", help="interfaces to join")
    args = parser.parse_args(argv)
    pairs = []
    for pair in args.pairs:
        left, sep, right = pair.partition(":")
        if not (left and sep and right):
            parser.error("each pair is two interface names joined by ':'")
        pairs.append((left, right))
    asyncio.run(_run(pairs, args.delay / 1000.0, args.loss, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
