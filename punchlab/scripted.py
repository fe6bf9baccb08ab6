"""``punchlab peer``: a peer that follows a script and reports in JSON lines.

For labs and scripts rather than people: register, connect to an ID (or wait
to be connected to), send lines, expect the other side's lines, optionally
stay silent for a while and do it again, then exit 0 if every round got an
answer and 1 if not. Each step is printed as one JSON object per line, so a
program driving several peers (the NAT lab does) can follow along.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from punchlab.aio import Peer
from punchlab.aio.peer import PEER_TRACE_EVENTS
from punchlab.errors import PunchlabError
from punchlab.messages import format_address
from punchlab.narrate import tell
from punchlab.peer import (
    Connected,
    NatDiscovered,
    PeerAddressChanged,
    PeerConfig,
    PeerEvent,
    RouteChanged,
    TextDelivered,
    TextFailed,
    TextSent,
)
from punchlab.trace import Trace

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    peer = commands.add_parser(
        "peer",
        help="a scripted peer that reports in JSON lines (for labs and scripts)",
        description="Register, connect to --connect ID (or wait to be connected to), send "
        "--send lines and wait for the other side's, --rounds times with --silence seconds "
        "in between (after a silence the connecting side speaks first). Prints one JSON "
        "object per step; exits 0 when every round got an answer, 1 when not.",
    )
    peer.add_argument("--server", required=True, help="rendezvous server URL")
    peer.add_argument("--connect", metavar="ID", help="connect to this peer (else wait)")
    peer.add_argument("--name", default="peer", help="name in the trace (default: %(default)s)")
    peer.add_argument(
        "--port", type=int, default=5000, help="local UDP port (default: %(default)s)"
    )
    peer.add_argument("--send", default="hello", help="line to send each round")
    peer.add_argument("--rounds", type=int, default=1, help="exchanges to make (default: 1)")
    peer.add_argument(
        "--silence", type=float, default=0.0, help="seconds of silence between rounds"
    )
    peer.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to connect / to get an answer"
    )
    peer.add_argument(
        "--punch-timeout", type=float, default=10.0, help="give up punching after this"
    )
    peer.add_argument("--heartbeat", type=float, default=3.0, help="heart-beat interval, 0 = off")
    peer.add_argument("--original", action="store_true", help="the original Go client's algorithm")
    peer.add_argument(
        "--no-acks",
        action="store_true",
        help="plain TEXT as the Go client sends it: no numbering, no acknowledgements",
    )
    peer.add_argument(
        "--no-ladder",
        action="store_true",
        help="punch directly and stop there: no port prediction, birthday probing or relay",
    )
    peer.add_argument(
        "--no-private",
        action="store_true",
        help="offer and try only public addresses: no local address in REGISTRATION, no "
        "HELLO to a partner's private endpoint (so no `private` route behind one NAT)",
    )
    peer.add_argument(
        "--trace", metavar="FILE", help="write the trace to FILE (JSON Lines) on exit"
    )
    peer.add_argument(
        "--pcap", metavar="FILE", help="write the trace to FILE as a pcapng capture on exit"
    )


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)


def _on_event(event: PeerEvent) -> None:
    """The facts as JSON, and ``text``: the sentence the CLI and the widgets show."""
    if isinstance(event, Connected):
        _emit(
            "connected",
            peer=format_address(event.peer_address),
            elapsed=event.elapsed,
            route=event.route.value,
            probes=event.probes,
            text=tell(event),
        )
    elif isinstance(event, RouteChanged):
        _emit("route_changed", old=event.old.value, new=event.new.value, text=tell(event))
    elif isinstance(event, PeerAddressChanged):
        _emit(
            "peer_address_changed",
            old=format_address(event.old),
            new=format_address(event.new),
            text=tell(event),
        )
    elif isinstance(event, NatDiscovered):
        result = event.result
        _emit("nat", mapping=result.mapping, filtering=result.filtering, text=tell(event))
    elif isinstance(event, TextSent | TextDelivered | TextFailed):
        _line_event(event)


def _line_event(event: TextSent | TextDelivered | TextFailed) -> None:
    """Each line's state: ``text_sent`` (``acknowledged``: a delivery report will follow),
    then ``text_delivered`` or ``text_failed``, all naming the line by its number."""
    if isinstance(event, TextSent):
        _emit(
            "text_sent",
            line=event.line,
            pieces=event.pieces,
            acknowledged=event.acknowledged,
            text=tell(event),
        )
    elif isinstance(event, TextDelivered):
        _emit(
            "text_delivered",
            line=event.line,
            tries=event.tries,
            elapsed=event.elapsed,
            text=tell(event),
        )
    else:
        _emit("text_failed", line=event.line, tries=event.tries, text=tell(event))


def _config(args: argparse.Namespace) -> PeerConfig:
    heartbeat = args.heartbeat if args.heartbeat > 0 else None
    # Without heart-beats nothing tells a silent peer from a gone one, so the
    # script does not give up on the peer; the NAT may still forget the mapping.
    peer_timeout = 30.0 if heartbeat else 24 * 3600.0
    fields: dict[str, Any] = {
        "punch_timeout": args.punch_timeout,
        "heartbeat_interval": heartbeat,
        "peer_timeout": peer_timeout,
        "private": not args.no_private,
    }
    if args.no_acks:
        fields["reliable"] = None
    if args.original:
        return PeerConfig.seed_compatible(**fields)
    return PeerConfig(ladder=not args.no_ladder, **fields)


async def run(args: argparse.Namespace) -> int:
    trace = Trace(max_events=PEER_TRACE_EVENTS, keep_data=bool(args.pcap))
    async with Peer(
        args.server,
        port=args.port,
        config=_config(args),
        name=args.name,
        on_event=_on_event,
        trace=trace,
    ) as peer:
        try:
            return await _script(peer, args)
        except PunchlabError as exc:
            _emit("failed", reason=str(exc), state=peer.state.value)
            return 1
        finally:
            if args.trace:
                peer.trace.save(args.trace)
            if args.pcap:
                peer.trace.save_pcap(args.pcap)


async def _script(peer: Peer, args: argparse.Namespace) -> int:
    peer_id = await peer.register(timeout=args.timeout)
    await peer.wait_for_nat_mapping(timeout=args.timeout)  # the traversal ladder needs it
    _emit("registered", id=peer_id, local=format_address(peer.local_address or ("0.0.0.0", 0)))
    if args.connect:
        _emit("connecting", to=args.connect)
        await peer.connect(args.connect, timeout=args.punch_timeout + 2)
    else:
        await peer.wait_connected(timeout=args.timeout + args.punch_timeout)
    for number in range(1, args.rounds + 1):
        # After a silence only the initiator speaks first, so that the two
        # sides do not punch a fresh hole by sending at the same moment: the
        # experiment is whether the old one is still open.
        answer_first = number > 1 and not args.connect
        if number > 1 and args.silence:
            _emit("silent", seconds=args.silence)
            await asyncio.sleep(args.silence)  # the silence is the experiment
        if not answer_first:
            await peer.send_text(f"{args.send} #{number}")
        try:
            text = await peer.receive_text(
                timeout=args.timeout + (args.silence if answer_first else 0)
            )
        except TimeoutError:
            _emit("failed", reason=f"no answer in round {number}", state=peer.state.value)
            return 1
        _emit("text", text=text, round=number)
        if answer_first:
            await peer.send_text(f"{args.send} #{number}")
    _emit("done", state=peer.state.value)
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 1
