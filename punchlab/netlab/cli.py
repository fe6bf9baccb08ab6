"""``punchlab netlab punch | matrix | natcheck | birthday | cleanup``: the lab from a shell.

Exit status of ``punch``: 0 when the peers connected and chatted both ways,
1 when they did not, 2 for a usage or environment error (not root, no nft).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from punchlab.netlab.lab import Lab, LabResult
from punchlab.netlab.nat_rules import LAB_KINDS
from punchlab.netlab.system import LabUnavailable, cleanup_leftovers
from punchlab.netlab.topologies import CGN_CELLS, CgnLab, SameNatLab
from punchlab.traversal import Route

__all__ = ["add_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands: Any) -> None:
    """``punchlab netlab ACTION``; each action's parser names its handler."""
    netlab = commands.add_parser(
        "netlab",
        help="real NATs: network namespaces and the kernel's NAT (Linux, root)",
        description="Build network namespaces joined by veth pairs, with nftables NATs, and "
        "run the real server and peers in them. Needs root, iproute2 and nftables.",
    )
    actions = netlab.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_punch(actions)
    _add_matrix(actions)
    _add_natcheck(actions)
    _add_birthday(actions)
    _add_cleanup(actions)


def _add_punch(actions: Any) -> None:
    """``netlab punch``: one pair of NATs; every option says its default."""
    punch = actions.add_parser(
        "punch",
        help="one punch between two NATs",
        description="Punch between a peer behind --nat-a and one behind --nat-b, print what "
        "happened and draw the sequence diagram. Exit 0 when they connected and chatted both "
        "ways, 1 when not, 2 for a usage or environment error (not root, no nft).",
    )
    for side in "ab":
        punch.add_argument(
            f"--nat-{side}",
            default="port-restricted-cone",
            choices=LAB_KINDS,
            help=f"NAT in front of peer {side.upper()} (default: %(default)s)",
        )
    punch.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="MS",
        help="one-way delay in ms on every public link, both ways, with netem or the lab's "
        "own delay line (default: %(default)s)",
    )
    punch.add_argument(
        "--loss",
        type=float,
        default=0.0,
        metavar="P",
        help="chance a datagram is dropped on each public link, 0..1 (default: %(default)s)",
    )
    punch.add_argument(
        "--original",
        action="store_true",
        help="the original Go client's algorithm: a 3 s HELLO ticker (default: punchlab's "
        "schedule, at once and then retried)",
    )
    punch.add_argument(
        "--no-ladder",
        action="store_true",
        help="punch and stop there (default: the server is an RFC 5780 server and the peers "
        "climb the traversal ladder, port prediction, birthday probing, relay, when the punch "
        "fails; the first line names the route that won)",
    )
    _add_shared_nat_options(punch)
    _add_punch_outputs(punch)
    punch.set_defaults(handler=_punch)


def _add_punch_outputs(punch: Any) -> None:
    """``--ipv6`` (another topology altogether), and where ``netlab punch`` writes."""
    punch.add_argument(
        "--ipv6",
        action="store_true",
        help="two IPv6 peers, each behind a home gateway that routes and filters (nftables "
        "inet: established flows pass, new inbound UDP is dropped) and translates nothing; "
        "--nat-a, --nat-b and --pcap do not apply (default: IPv4 behind NATs)",
    )
    punch.add_argument(
        "--output",
        "-o",
        default="netlab-punch.png",
        metavar="PNG",
        help="sequence diagram file (default: %(default)s)",
    )
    punch.add_argument(
        "--trace",
        metavar="FILE",
        help="also write the merged trace to FILE, JSON Lines (default: not written)",
    )
    punch.add_argument(
        "--pcap",
        metavar="DIR",
        help="capture every link on both sides of every NAT (tcpdump) into one pcapng file "
        "in DIR, and print each NAT's conntrack table (default: no capture)",
    )


def _add_shared_nat_options(punch: Any) -> None:
    """``--same-nat``, ``--hairpin``, ``--cgn`` and ``--no-private``: NATs that several share."""
    punch.add_argument(
        "--same-nat",
        action="store_true",
        help="both peers behind ONE NAT of --nat-a (port-restricted-cone, or symmetric without "
        "--hairpin), on its LAN 10.0.1.0/24: the server sees one public address for both "
        "(default: a NAT each)",
    )
    punch.add_argument(
        "--hairpin",
        action="store_true",
        help="with --same-nat: nftables rules that make the NAT hairpin (RFC 4787 REQ-9), "
        "which plain masquerade does not (default: no hairpinning)",
    )
    punch.add_argument(
        "--cgn",
        choices=CGN_CELLS,
        help="put the home NATs (--nat-a, --nat-b) behind a carrier-grade NAT (RFC 6888; "
        "inside 100.64.0.0/10, RFC 6598): the same one, or a different one each; a CGN maps "
        "endpoint-independently and hairpins (default: no CGN)",
    )
    punch.add_argument(
        "--no-private",
        action="store_true",
        help="the peers offer and try only public addresses, no private endpoints (default: "
        "they also try each other's local address when the server sees them behind one IP)",
    )


def _lab(args: argparse.Namespace) -> Lab:
    """The lab the options ask for; a ValueError says which options do not go together."""
    link = {"delay_ms": args.delay, "loss": args.loss}
    if args.hairpin and not args.same_nat:
        raise ValueError("--hairpin goes with --same-nat (a CGN always hairpins)")
    if args.same_nat and args.cgn:
        raise ValueError("choose --same-nat or --cgn, not both")
    if args.same_nat:
        return SameNatLab(args.nat_a, hairpin=args.hairpin, **link)
    if args.cgn:
        return CgnLab(args.cgn, args.nat_a, args.nat_b, **link)
    return Lab(args.nat_a, args.nat_b, **link)


def _add_matrix(actions: Any) -> None:
    """``netlab matrix``: every pair, against the simulator's claim."""
    matrix = actions.add_parser(
        "matrix",
        help="every pair of NAT kinds, compared with the simulator",
        description="Punch every ordered pair of the lab's NAT kinds on real NATs, climbing "
        "the traversal ladder where the punch fails, and print each pair's route next to the "
        "simulator's. Exit 0 when they all agree.",
    )
    matrix.add_argument(
        "--kinds",
        nargs="+",
        default=list(LAB_KINDS),
        choices=LAB_KINDS,
        metavar="KIND",
        help="the NAT kinds to pair, from: %(choices)s (default: all of them)",
    )
    matrix.set_defaults(handler=_matrix)


def _add_natcheck(actions: Any) -> None:
    """``netlab natcheck``: RFC 5780 discovery behind a real NAT, against coturn."""
    from punchlab.netlab.natcheck import CHECKERS

    natcheck = actions.add_parser(
        "natcheck",
        help="classify a real NAT with RFC 5780's tests, punchlab's and coturn's",
        description="Build one NAT of --nat in front of a host and a STUN server with two "
        "public addresses, run the chosen checker behind the NAT against the chosen server, "
        "and print the RFC 4787 mapping and filtering each found, beside the NAT's real "
        "behaviour. coturn's programs (turnserver, turnutils_natdiscovery) come from the "
        "Debian package coturn. Exit 0 when every answer agrees with the NAT.",
    )
    natcheck.add_argument(
        "--nat",
        default="port-restricted-cone",
        choices=LAB_KINDS,
        help="the NAT in front of the checker (default: %(default)s)",
    )
    for option, what in (("--client", "checker"), ("--server", "STUN server")):
        natcheck.add_argument(
            option,
            nargs="+",
            default=["punchlab"],
            choices=CHECKERS,
            help=f"the {what}: punchlab's, coturn's or both (default: punchlab)",
        )
    natcheck.add_argument(
        "-v", "--verbose", action="store_true", help="also print each checker's own output"
    )
    natcheck.set_defaults(handler=_natcheck)


def _add_birthday(actions: Any) -> None:
    """``netlab birthday``: birthday-paradox punching against the kernel's random ports."""
    birthday = actions.add_parser(
        "birthday",
        help="measure birthday-paradox punching through a real symmetric NAT",
        description="The hard side, behind a symmetric NAT (nftables masquerade random: Linux "
        "picks each outside port at random from 1024-65535, N = 64512), opens K sockets and "
        "sends one datagram from each to the easy side, behind a port-restricted cone; the "
        "easy side then probes random ports of the hard NAT (uniform over 1024-65535) until "
        "one reaches a hard-side socket. Prints each run to stderr and, at the end, the share "
        "of runs that hit within each probe count beside 1 - (1 - K/N)^n. Needs root, "
        "iproute2, nftables and conntrack. Exit 0 when the runs ran, 2 for a usage or "
        "environment error.",
    )
    birthday.add_argument(
        "--runs", type=int, default=20, metavar="N", help="runs (default: %(default)s)"
    )
    birthday.add_argument(
        "--open-ports",
        type=int,
        default=256,
        metavar="K",
        help="sockets the hard side opens per run (default: %(default)s)",
    )
    birthday.add_argument(
        "--probes",
        type=int,
        nargs="+",
        default=[64, 174, 1024],
        metavar="COUNT",
        help="probe counts to report success at; the largest is each run's cap "
        "(default: 64 174 1024)",
    )
    birthday.add_argument(
        "--rate",
        type=float,
        default=250.0,
        metavar="R",
        help="probes per second, 0 for as fast as possible (default: %(default)s)",
    )
    birthday.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the probe ports (the kernel's ports are not seeded) (default: %(default)s)",
    )
    birthday.set_defaults(handler=_birthday)


def _add_cleanup(actions: Any) -> None:
    """``netlab cleanup``: what a killed run left behind."""
    cleanup = actions.add_parser(
        "cleanup",
        help="remove namespaces a killed run left behind",
        description="Delete every network namespace whose name starts with 'punchlab-' "
        "(and with it its veth ends and nftables tables). Touches nothing else.",
    )
    cleanup.set_defaults(handler=_cleanup)


def _punch(args: argparse.Namespace) -> int:
    if not 0.0 <= args.loss <= 1.0 or args.delay < 0:
        print("punchlab netlab: --delay must be >= 0 and --loss between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if args.ipv6:
        return _punch_v6(args)
    try:
        lab = _lab(args)
    except ValueError as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with lab:
            result = lab.punch(
                original=args.original,
                capture=args.pcap,
                ladder=not args.no_ladder,
                private=not args.no_private,
            )
    except LabUnavailable as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.summary())
    if result.capture is not None:
        from punchlab.pcap import decode_rules

        print(f"capture written to {result.capture} (an interface per link)")
        rules = " ".join(f"-d {rule}" for rule in decode_rules(result.packets))
        print(f"  read it with: tshark -r {result.capture} {rules}")
        for box, table in result.conntrack.items():
            # The usual lab's keys are its sides; a shared NAT's are its boxes (nat, cgn-a).
            name = f"NAT {box.upper()}" if box in ("a", "b") else box.upper().replace("-", " ")
            print(f"conntrack -L in {name}:\n{table or '(empty)'}")
    _draw(result, args.output)
    if args.trace:
        print(f"trace written to {result.trace.save(args.trace)}")
    return EXIT_OK if result.connected else EXIT_FAILED


def _punch_v6(args: argparse.Namespace) -> int:
    """``netlab punch --ipv6``: the firewalls' punch, beside the simulator's."""
    from punchlab.netlab.ipv6 import punch_through_firewalls, v6_summary
    from punchlab.sim.ipv6 import firewall_drops, punch_v6

    if args.pcap:
        print("punchlab netlab: --pcap does not apply with --ipv6", file=sys.stderr)
        return EXIT_USAGE
    try:
        result, drops, unsolicited = punch_through_firewalls(
            delay_ms=args.delay, loss=args.loss, ladder=not args.no_ladder
        )
    except LabUnavailable as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(v6_summary(result))
    print(f"an unsolicited datagram to B before the punch: {unsolicited} dropped by firewall B")
    dropped = ", ".join(f"firewall {side.upper()} dropped {n}" for side, n in drops.items())
    print(f"during the punch: {dropped}")
    # nftables' conntrack keys a flow on both endpoints: address-and-port-dependent. The
    # lab delays each public link on leaving the box and on leaving the bridge: twice.
    strict = "address-and-port-dependent"
    latency = max(2 * args.delay / 1000, 0.0005)
    simulated = punch_v6(strict, strict, latency=latency, loss=args.loss)
    sim_drops = len(firewall_drops(simulated))
    print(f"simulator: {simulated.summary()}; its firewalls dropped {sim_drops}")
    _, verdict = route_verdict(simulated.route if simulated.connected else None, result.route)
    print(f"route: {verdict}")
    _draw(result, args.output, v6_summary(result))
    if args.trace:
        print(f"trace written to {result.trace.save(args.trace)}")
    return EXIT_OK if result.connected else EXIT_FAILED


def _draw(result: LabResult, output: str, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from punchlab.diagram import save_sequence_diagram

    # With captures the NATs are seen too: their rewrites and drops get lifelines.
    trace = result.capture_trace or result.trace
    written = save_sequence_diagram(trace, output, collapse=True, title=title or result.summary())
    print(f"sequence diagram written to {written}")


def _matrix(args: argparse.Namespace) -> int:
    from punchlab.sim import success_matrix

    predicted = success_matrix(tuple(args.kinds), discover=True)
    disagreements = 0
    total = len(args.kinds) ** 2
    done = 0
    try:
        for a in args.kinds:
            for b in args.kinds:
                with Lab(a, b) as lab:
                    result = lab.punch()
                done += 1
                agree, verdict = route_verdict(predicted.route(a, b), result.route)
                disagreements += not agree
                real = f"connects, {result.route.value}" if result.route else "fails"
                print(f"[{done}/{total}] {a} <-> {b}: {real}; {verdict}", flush=True)
    except LabUnavailable as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{total - disagreements}/{total} pairs agree with the simulator")
    return EXIT_OK if disagreements == 0 else EXIT_FAILED


def route_verdict(simulated: Route | None, real: Route | None) -> tuple[bool, str]:
    """Whether a real run agrees with the simulator's route, and the words for it.

    Birthday probing is a gamble: about 1 run in 60 needs more than 1,024 probes
    and the pair falls back to the relay, which is the ladder working as designed.
    """
    if simulated == real:
        return True, "agrees"
    if simulated is Route.BIRTHDAY and real is Route.RELAYED:
        return True, "agrees (birthday probing ran out of probes; the relay took over)"
    said = simulated.value if simulated else "no connection"
    return False, f"DISAGREES with the simulator ({said})"


def _natcheck(args: argparse.Namespace) -> int:
    import asyncio
    import shutil

    from punchlab.netlab.natcheck import natcheck

    if "coturn" in args.client + args.server and shutil.which("turnserver") is None:
        print("punchlab netlab: coturn is not installed (apt-get install coturn)", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = asyncio.run(natcheck(args.nat, tuple(args.client), tuple(args.server)))
    except LabUnavailable as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for result in results:
        if args.verbose:
            print(result.output.rstrip())
        print(result.summary())
    return EXIT_OK if all(result.agrees for result in results) else EXIT_FAILED


def _birthday(args: argparse.Namespace) -> int:
    from punchlab.netlab.birthday import BirthdayRun, measure_birthday

    def progress(run: BirthdayRun) -> None:
        print(f"[{run.number}/{args.runs}] {run.summary()}", file=sys.stderr, flush=True)

    try:
        result = measure_birthday(
            args.runs, args.probes, args.open_ports, args.rate, args.seed, progress
        )
    except (LabUnavailable, ValueError) as exc:
        print(f"punchlab netlab: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.text())
    return EXIT_OK


def _cleanup(args: argparse.Namespace) -> int:
    removed = cleanup_leftovers()
    print(f"removed {len(removed)} namespace(s)" + (": " + ", ".join(removed) if removed else ""))
    return EXIT_OK
