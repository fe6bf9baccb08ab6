"""RFC 5780 discovery behind the kernel's real NAT, checked against coturn.

One lab: a NAT of the chosen kind in front of one host, and a STUN server
with two public addresses (203.0.113.1 and .2). The server is punchlab's
(``punchlab serve --stun-alternate``) or coturn's ``turnserver``; the checker
is punchlab's (``punchlab natcheck``) or coturn's ``turnutils_natdiscovery``.
Each answer is read from the program's own output and compared with the
behaviours of the NAT the lab built.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from dataclasses import dataclass

from punchlab.netlab.lab import ALTERNATE_SERVER_IP, SERVER_IP, STUN_PORT, Lab
from punchlab.netlab.system import interrupt_all

__all__ = ["ALTERNATE_SERVER_IP", "CHECKERS", "LabNatCheck", "expected_behaviours", "natcheck"]

CHECKERS = ("punchlab", "coturn")

_COTURN_WORDS = {
    "Endpoint Independent": "endpoint-independent",
    "Address Dependent": "address-dependent",
    "Address and Port Dependent": "address-and-port-dependent",
}


def expected_behaviours(kind: str) -> tuple[str, str]:
    """(mapping, filtering) of the lab's NAT ``kind`` (the simulator's preset of that name)."""
    if kind == "none":
        return ("endpoint-independent", "endpoint-independent")
    from punchlab.sim import PRESETS

    config = PRESETS[kind]
    return (config.mapping.value, config.filtering.value)


@dataclass(frozen=True)
class LabNatCheck:
    """One checker's answer behind one real NAT, against one server."""

    kind: str
    client: str
    server: str
    mapping: str | None
    filtering: str | None
    output: str

    @property
    def agrees(self) -> bool:
        return (self.mapping, self.filtering) == expected_behaviours(self.kind)

    def summary(self) -> str:
        expected = "/".join(expected_behaviours(self.kind))
        verdict = "agrees" if self.agrees else f"expected {expected}"
        found = f"mapping {self.mapping or 'unknown'}, filtering {self.filtering or 'unknown'}"
        return (
            f"{self.kind:21} {self.client:8} checker, {self.server:8} server: {found} ({verdict})"
        )


def read_punchlab(output: str) -> tuple[str | None, str | None]:
    """The verdicts in ``punchlab natcheck``'s report."""
    verdicts: list[str | None] = []
    for part in ("mapping", "filtering"):
        match = re.search(rf"^{part}: ([a-z-]+)", output, re.MULTILINE)
        verdicts.append(None if match is None or match.group(1) == "unknown" else match.group(1))
    return verdicts[0], verdicts[1]


def read_coturn(output: str) -> tuple[str | None, str | None]:
    """The verdicts in ``turnutils_natdiscovery -m -f``'s output."""
    result: list[str | None] = []
    for part in ("Mapping", "Filtering"):
        match = re.search(rf"NAT with (.+?) {part}!", output)
        no_nat = "No NAT! (Endpoint Independent Mapping)" in output
        if match is None and part == "Mapping" and no_nat:
            result.append("endpoint-independent")
        else:
            result.append(None if match is None else _COTURN_WORDS.get(match.group(1)))
    return result[0], result[1]


async def _stun_ready(lab: Lab, address: tuple[str, int], within: float = 15.0) -> None:
    """Wait until ``address`` answers a Binding request, asked from the server's own box."""
    probe = (
        "import os, socket, sys, time\n"
        "from punchlab.stun.codec import Cls, StunMessage, encode\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)\n"
        f"end = time.monotonic() + {within}\n"
        "while time.monotonic() < end:\n"
        f"    s.sendto(encode(StunMessage(Cls.REQUEST, os.urandom(12))), {address!r})\n"
        "    try:\n        s.recv(2048); sys.exit(0)\n"
        "    except OSError:\n        pass\n"
        "sys.exit(1)\n"
    )
    process = await lab.start_process("srv", sys.executable, "-c", probe)
    if await process.wait() != 0:
        raise RuntimeError(f"the STUN server at {address[0]}:{address[1]} never answered")


async def _start_server(lab: Lab, server: str) -> asyncio.subprocess.Process:
    if server == "punchlab":
        arguments = [
            sys.executable, "-m", "punchlab", "serve", "--host", SERVER_IP, "--quiet",
            *lab.rfc5780_server_arguments(),
        ]  # fmt: skip
    else:
        arguments = [
            "turnserver", "-n", "--no-auth", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp",
            "--listening-ip", SERVER_IP, "--listening-ip", ALTERNATE_SERVER_IP,
            "--listening-port", str(STUN_PORT), "--alt-listening-port", str(STUN_PORT + 1),
            "--log-file", "/dev/null",
        ]  # fmt: skip
    process = await lab.start_process("srv", *arguments)
    try:
        await _stun_ready(lab, (ALTERNATE_SERVER_IP, STUN_PORT + 1))
    except BaseException:
        await interrupt_all([process])
        raise
    return process


async def _run_client(lab: Lab, client: str) -> tuple[tuple[str | None, str | None], str]:
    if client == "punchlab":
        arguments = [sys.executable, "-m", "punchlab", "natcheck", "--server", SERVER_IP]
    else:
        arguments = ["turnutils_natdiscovery", "-m", "-f", SERVER_IP]
    process = await lab.start_process("peer-a", *arguments)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.communicate()
        raise
    text = output.decode(errors="replace")
    return (read_punchlab(text) if client == "punchlab" else read_coturn(text)), text


async def natcheck(
    kind: str, clients: tuple[str, ...] = CHECKERS, servers: tuple[str, ...] = CHECKERS
) -> list[LabNatCheck]:
    """Every chosen checker against every chosen server, behind one real NAT of ``kind``."""
    results = []
    with Lab(kind, "none") as lab:
        lab.add_alternate_address()  # coturn listens on it too
        for server in servers:
            process = await _start_server(lab, server)
            try:
                for client in clients:
                    (mapping, filtering), text = await _run_client(lab, client)
                    results.append(LabNatCheck(kind, client, server, mapping, filtering, text))
            finally:
                await interrupt_all([process])
    return results
