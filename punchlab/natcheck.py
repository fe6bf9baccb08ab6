"""``punchlab natcheck``: what kind of NAT am I behind, with the evidence and what it means.

The report is one function, :func:`report`, so the command, the NAT lab and a
notebook all print the same words.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import TYPE_CHECKING

from punchlab.messages import Address, format_address
from punchlab.stun.discovery import DiscoveryResult

if TYPE_CHECKING:
    from punchlab.cli import Commands

__all__ = ["add_parser", "matrix_row", "parse_server", "report"]

#: What each behaviour is called in RFC 4787, for the report.
_SECTIONS = {"mapping": "RFC 4787 section 4.1", "filtering": "RFC 4787 section 5"}


def parse_server(text: str, default_port: int = 3478) -> Address:
    """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) as an address; ValueError says what is wrong."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") or str(default_port)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, str(default_port)
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not a port: {port_text!r}")
    return host, int(port_text)


def matrix_row(mapping: str, filtering: str) -> tuple[str, str, int]:
    """The success-matrix name of this NAT, its classic alias, and how many of the nine
    NAT behaviours punchlab's peer connects with from behind it (simulated)."""
    from punchlab.sim import BEHAVIOURS, PRESETS, Behaviour, success_matrix
    from punchlab.sim.nat import behaviour_config

    config = behaviour_config(Behaviour(mapping), Behaviour(filtering))
    behaviours = (config.mapping, config.filtering)
    alias = next((n for n, c in PRESETS.items() if (c.mapping, c.filtering) == behaviours), "")
    row = success_matrix([config, *BEHAVIOURS.values()]).cells
    connects = sum(row[(config.name, other)].connected for other in BEHAVIOURS)
    return config.name, alias, connects


def report(result: DiscoveryResult, server: Address) -> list[str]:
    """The classification, the evidence for it, and what it means for hole punching."""
    lines = [f"RFC 5780 tests against {format_address(server)}:"]
    lines += [f"  {test.describe()}" for test in result.tests]
    if result.public is not None:
        lines.append(f"public address: {format_address(result.public)}")
    if result.behind_nat is not None:
        nat = "yes" if result.behind_nat else "no (the server sees your own address)"
        lines.append(f"behind a NAT: {nat}")
    for part in ("mapping", "filtering"):
        value = getattr(result, part)
        lines.append(f"{part}: {value or 'unknown'}" + (f" ({_SECTIONS[part]})" if value else ""))
    if result.hairpinning is not None:
        seen = "yes" if result.hairpinning else "not seen (off, or hidden by the NAT's filter)"
        lines.append(f"hairpinning: {seen}")
    if result.problem:
        lines.append(f"problem: {result.problem}")
    if result.mapping and result.filtering:
        name, alias, connects = matrix_row(result.mapping, result.filtering)
        also = f", the classic {alias.replace('-', ' ')}" if alias else ""
        you = "no NAT in front of you, as open as" if result.behind_nat is False else "you are"
        lines.append(
            f"for punching: {you} {name}{also}; punchlab's peer connects with {connects} of "
            "the 9 NAT behaviours from here (the row of the success matrix, notebook 5)"
        )
        if connects < 9:
            lines.append(
                "  the rest need port prediction or a relay (RFC 5128 section 3.5, TURN RFC 8656)"
            )
    return lines


def add_parser(commands: Commands) -> None:
    """``punchlab natcheck [--server HOST[:PORT]]``."""
    natcheck = commands.add_parser(
        "natcheck",
        help="find out what kind of NAT this machine is behind (RFC 5780)",
        description="Run RFC 5780's NAT behaviour tests against an RFC 5780 STUN server (two "
        "IP addresses: 'punchlab serve --host IP1 --stun-alternate IP2', or coturn's "
        "turnserver with two --listening-ip) and print the RFC 4787 mapping and filtering, "
        "the evidence for each, and what it means for hole punching.",
    )
    natcheck.add_argument(
        "--server",
        default=None,
        metavar="HOST[:PORT]",
        help="the RFC 5780 server (default port 3478; default host: PUNCHLAB_SERVER's host)",
    )
    natcheck.add_argument("--no-hairpinning", action="store_true", help="skip the hairpinning test")
    natcheck.add_argument(
        "--timeout", type=float, default=30.0, help="give up after this many seconds (default: 30)"
    )
    natcheck.set_defaults(handler=_run)


def _default_server() -> str | None:
    from urllib.parse import urlsplit

    url = os.environ.get("PUNCHLAB_SERVER", "")
    return urlsplit(url).hostname if url else None


def _run(args: argparse.Namespace) -> int:
    from punchlab.aio.stun import discover

    text = args.server or _default_server()
    if not text:
        print("punchlab natcheck: give --server HOST[:PORT] (an RFC 5780 STUN server)")
        return 2
    try:
        server = parse_server(text)
    except ValueError as exc:
        print(f"punchlab natcheck: --server: {exc}")
        return 2
    print(f"testing against {format_address(server)} (a few seconds: unanswered tests wait)...")
    result = asyncio.run(
        discover(server, hairpinning=not args.no_hairpinning, give_up_after=args.timeout)
    )
    for line in report(result, server):
        print(line)
    return 0 if result.complete else 1
