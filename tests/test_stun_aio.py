"""STUN on real loopback sockets, against coturn, the reference implementation.

coturn's ``turnserver`` and ``turnutils_natdiscovery`` come from the Debian
package ``coturn`` (``scripts/install-system-deps.sh``). Without them these
tests skip, unless ``PUNCHLAB_REQUIRE_COTURN`` is set (CI sets it), which
turns the skip into a failure. Linux answers on all of 127/8, so 127.0.0.1
and 127.0.0.2 are the server's two addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from punchlab.aio.server import RendezvousServer
from punchlab.aio.stun import StunServer, discover
from punchlab.messages import parse_features
from punchlab.natcheck import parse_server, report
from punchlab.stun.codec import Cls, StunMessage, encode, parse

PRIMARY_IP, ALTERNATE_IP = "127.0.0.1", "127.0.0.2"


def require_coturn() -> None:
    missing = [t for t in ("turnserver", "turnutils_natdiscovery") if shutil.which(t) is None]
    if not missing:
        return
    message = f"coturn is not installed ({', '.join(missing)} missing)"
    if os.environ.get("PUNCHLAB_REQUIRE_COTURN"):
        pytest.fail(f"PUNCHLAB_REQUIRE_COTURN is set but {message}", pytrace=False)
    pytest.skip(message)


def free_port_pair() -> int:
    """A port P with P and P + 1 free for UDP on both loopback addresses (for turnserver,
    which cannot be told port 0)."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            first.bind((PRIMARY_IP, 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            try:
                for ip, p in (
                    (ALTERNATE_IP, port),
                    (PRIMARY_IP, port + 1),
                    (ALTERNATE_IP, port + 1),
                ):
                    stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind(
                        (ip, p)
                    )
            except OSError:
                continue
            return port
    raise RuntimeError("no free pair of ports")


async def answers(address: tuple[str, int], within: float = 10.0) -> bool:
    """Whether a Binding request to ``address`` gets an answer, trying until ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.setblocking(False)
        while loop.time() < deadline:
            probe.sendto(encode(StunMessage(Cls.REQUEST, os.urandom(12))), address)
            try:
                await asyncio.wait_for(loop.sock_recv(probe, 2048), 0.2)
                return True
            except TimeoutError:
                continue
    return False


@contextlib.asynccontextmanager
async def turnserver() -> AsyncIterator[int]:
    """coturn's server on both loopback addresses, ports P and P + 1; yields P."""
    port = free_port_pair()
    process = await asyncio.create_subprocess_exec(
        "turnserver", "-n", "--no-auth", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp",
        "--listening-ip", PRIMARY_IP, "--listening-ip", ALTERNATE_IP,
        "--listening-port", str(port), "--alt-listening-port", str(port + 1),
        "--log-file", "/dev/null",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert await answers((ALTERNATE_IP, port + 1)), "turnserver did not start"
        yield port
    finally:
        process.terminate()
        await process.wait()


async def natdiscovery(port: int) -> str:
    process = await asyncio.create_subprocess_exec(
        "turnutils_natdiscovery", "-m", "-f", "-H", "-p", str(port), PRIMARY_IP,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return out.decode(errors="replace")


async def test_coturns_checker_agrees_with_punchlabs_server() -> None:
    require_coturn()
    async with StunServer(PRIMARY_IP, 0, alternate_ip=ALTERNATE_IP) as server:
        out = await natdiscovery(server.endpoints.primary[1])
    assert "NAT with Endpoint Independent Mapping!" in out
    assert "NAT with Endpoint Independent Filtering!" in out
    assert "successful hairpinning" in out


async def test_punchlabs_checker_agrees_with_coturns_server() -> None:
    require_coturn()
    async with turnserver() as port:
        result = await discover((PRIMARY_IP, port))
    assert result.problem is None, result.problem
    assert (result.mapping, result.filtering) == ("endpoint-independent",) * 2
    assert result.behind_nat is False and result.hairpinning is True
    assert result.tests[2].origin == (PRIMARY_IP, port)  # filtering test I, then the change:
    assert result.tests[3].origin == (ALTERNATE_IP, port + 1)


async def test_punchlabs_checker_against_its_own_server_shows_every_test() -> None:
    async with StunServer(PRIMARY_IP, 0, alternate_ip=ALTERNATE_IP) as server:
        primary = server.endpoints.primary
        result = await discover(primary)
        lines = report(result, primary)
    assert result.complete and result.behind_nat is False
    assert [t.name for t in result.tests] == [
        "mapping test I",
        "mapping test II",
        "filtering test I",
        "filtering test II",
        "hairpinning",
    ]
    assert "mapping: endpoint-independent (RFC 4787 section 4.1)" in lines
    assert any("EIM/EIF, the classic full cone" in line for line in lines)
    assert len(server.trace) >= 8  # four requests in, four answers out


async def test_the_rendezvous_port_answers_binding_and_announces_its_rfc5780_server() -> None:
    async with RendezvousServer(
        PRIMARY_IP, 0, 0, stun_alternate=ALTERNATE_IP, stun_port=0
    ) as server:
        assert server.udp_address is not None and server.stun is not None
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind((PRIMARY_IP, 0))
            peer.setblocking(False)
            peer.sendto(encode(StunMessage(Cls.REQUEST, os.urandom(12))), server.udp_address)
            binding = parse(await asyncio.wait_for(loop.sock_recv(peer, 2048), 5))
            assert binding.mapped() == peer.getsockname()
            register = b'{"type":"REGISTRATION","payload":"","features":"ack,large,token"}'
            peer.sendto(register, server.udp_address)
            answer = json.loads(await asyncio.wait_for(loop.sock_recv(peer, 2048), 5))
        port = server.stun.endpoints.primary[1]
        assert f"rfc5780={port}" in parse_features(answer["features"])


def test_natcheck_command_prints_the_classification() -> None:
    script = (
        "import asyncio, subprocess, sys\n"
        "from punchlab.aio.stun import StunServer\n"
        "async def main():\n"
        f"    async with StunServer({PRIMARY_IP!r}, 0, alternate_ip={ALTERNATE_IP!r}) as s:\n"
        "        port = s.endpoints.primary[1]\n"
        "        p = await asyncio.create_subprocess_exec(sys.executable, '-m', 'punchlab',\n"
        f"            'natcheck', '--server', f'{PRIMARY_IP}:{{port}}', stdout=-1)\n"
        "        out, _ = await p.communicate()\n"
        "        print(out.decode()); sys.exit(p.returncode)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "filtering: endpoint-independent" in done.stdout
    assert "behind a NAT: no" in done.stdout


def test_natcheck_without_a_server_says_what_to_give() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "punchlab", "natcheck"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PUNCHLAB_SERVER"},
    )
    assert done.returncode == 2 and "--server HOST[:PORT]" in done.stdout


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", ("192.0.2.1", 3478)),
        ("192.0.2.1:9", ("192.0.2.1", 9)),
        ("[::1]:5", ("::1", 5)),
    ],
)
def test_server_addresses_parse(text: str, address: tuple[str, int]) -> None:
    assert parse_server(text) == address


@pytest.mark.parametrize("text", ["", ":5", "host:0", "host:99999", "host:x"])
def test_bad_server_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)


def test_serve_refuses_an_rfc5780_server_on_a_wildcard_address() -> None:
    with pytest.raises(ValueError, match="one address"):
        RendezvousServer("0.0.0.0", stun_alternate=ALTERNATE_IP)


async def test_a_peer_learns_its_nat_in_the_background_and_still_connects() -> None:
    from punchlab.aio import Peer
    from punchlab.narrate import tell
    from punchlab.peer import NatDiscovered

    async with RendezvousServer(
        PRIMARY_IP, 0, 0, stun_alternate=ALTERNATE_IP, stun_port=0
    ) as server:
        found: asyncio.Queue[NatDiscovered] = asyncio.Queue()

        def listen(event: object) -> None:
            if isinstance(event, NatDiscovered):
                found.put_nowait(event)

        async with (
            Peer(server.url, host=PRIMARY_IP, name="alice", on_event=listen) as alice,
            Peer(server.url, host=PRIMARY_IP, name="bob") as bob,
        ):
            await alice.register(timeout=5)
            bob_id = await bob.register(timeout=5)
            await alice.connect(bob_id, timeout=5)  # the tests run beside the punch
            event = await asyncio.wait_for(found.get(), 20)
            assert alice.nat is event.result and event.result.complete
            assert (event.result.mapping, event.result.behind_nat) == (
                "endpoint-independent",
                False,
            )
            assert tell(event) == "No NAT in front of you: the server sees your own address."
            assert alice.trace.filter(types=["STUN"])  # the tests are in the peer's trace


async def test_against_a_server_without_rfc5780_no_test_runs() -> None:
    from punchlab.aio import Peer

    async with (
        RendezvousServer(PRIMARY_IP, 0, 0) as server,
        Peer(server.url, host=PRIMARY_IP) as peer,
    ):
        await peer.register(timeout=5)
        assert peer._nat_task is None and peer.nat is None
        assert not peer.trace.filter(types=["STUN"])
