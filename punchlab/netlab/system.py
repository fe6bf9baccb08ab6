"""The few system commands the lab needs (ip, nft, sysctl), with clear errors.

Every namespace the lab creates is named with :data:`PREFIX`, so a killed run
can be cleaned up without touching anything else on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

__all__ = [
    "PREFIX",
    "LabUnavailable",
    "cleanup_leftovers",
    "delete_namespace",
    "lab_problems",
    "namespaces",
    "run",
]

#: Every namespace of the lab starts with this; nothing else is ever touched.
PREFIX = "punchlab-"


class LabUnavailable(RuntimeError):
    """This machine cannot run the lab (not root, no ip or nft, no namespaces)."""


def lab_problems() -> list[str]:
    """Why the lab cannot run here; empty when it can."""
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (network namespaces and nftables)")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("ethtool", "ethtool")):
        if shutil.which(tool) is None:
            problems.append(f"needs the `{tool}` command (Debian package {package})")
    if not os.path.exists("/proc/self/ns/net"):
        problems.append("needs network namespaces in the kernel")
    return problems


def run(command: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    """Run a command, returning its output; a failure names the command and its error."""
    result = subprocess.run(
        list(command), input=input, capture_output=True, text=True, timeout=30, check=False
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise RuntimeError(f"`{' '.join(command)}` failed: {detail}")
    return result.stdout


def namespaces() -> list[str]:
    """The lab's own namespaces that exist right now."""
    if shutil.which("ip") is None:
        return []
    names = []
    for line in run(["ip", "netns", "list"], check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            names.append(name)
    return names


def cleanup_leftovers(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces left by a killed run (only ours: ``prefix`` must start with PREFIX).

    Deleting a namespace deletes its veth ends and its nftables tables too.
    """
    if not prefix.startswith(PREFIX):
        raise ValueError(f"refusing to clean up namespaces not starting with {PREFIX!r}")
    removed = []
    for name in namespaces():
        if name.startswith(prefix):
            delete_namespace(name)
            removed.append(name)
    return removed


def delete_namespace(name: str) -> None:
    """Kill whatever still runs inside ``name``, then delete it."""
    for pid in run(["ip", "netns", "pids", name], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run(["ip", "netns", "delete", name], check=False)


async def interrupt_all(processes: list[asyncio.subprocess.Process], within: float = 10.0) -> None:
    """SIGINT every process still running (a server saves its trace, tcpdump its packets),
    then wait for each, draining its output so its pipes close while the loop runs, and
    kill what is still there after ``within`` seconds."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            async with asyncio.timeout(within):
                await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.communicate()
    processes.clear()
