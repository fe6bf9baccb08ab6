"""The command line as a teacher and students use it: real processes on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from punchlab.cli import build_parser, main
from punchlab.trace import Trace

TIMEOUT = 10


class Proc:
    """A punchlab process whose output we read line by line, with bounded waits."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Proc:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "punchlab",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process)

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read lines until one matches; fail with everything read if none does in time."""
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    raw = await self.process.stdout.readline()
                    if not raw:
                        break
                    line = raw.decode().rstrip("\n")
                    self.lines.append(line)
                    if match := re.search(pattern, line):
                        return match
        except TimeoutError:
            pass
        pytest.fail(f"no line matching {pattern!r}; output was:\n" + "\n".join(self.lines))

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self) -> int:
        async with asyncio.timeout(TIMEOUT):
            return await self.process.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def procs() -> AsyncIterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()
        await proc.process.wait()


async def test_a_class_serves_registers_connects_and_chats(procs: list[Proc]) -> None:
    server = await Proc.start("serve", "--host", "127.0.0.1", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    url = (await server.expect(r"HTTP (http://127\.0\.0\.1:\d+)")).group(1)

    alice = await Proc.start("chat", "--server", url, "--name", "alice")
    bob = await Proc.start("chat", "--server", url, "--name", "bob")
    procs += [alice, bob]
    await alice.expect(r"Your ID: \S+")
    bob_id = (await bob.expect(r"Your ID: (\S+)")).group(1)

    await alice.type(bob_id)
    await alice.expect(r"Connected to 127\.0\.0\.1:\d+")
    await bob.expect(r"Connected to 127\.0\.0\.1:\d+")
    await alice.expect("Type a message")
    await bob.expect("Type a message")

    await alice.type("hi bob")
    await bob.expect(r"^Message: hi bob$")
    await bob.type("hi alice")
    await alice.expect(r"^Message: hi alice$")

    await server.expect(r"registered \S+ from 127\.0\.0\.1")
    await server.expect(rf"introduced \S+ \(127\.0\.0\.1:\d+\) to {bob_id}")

    assert alice.process.stdin is not None
    alice.process.stdin.close()
    assert await alice.finish() == 0
    server.process.send_signal(signal.SIGINT)
    assert await server.finish() == 0


async def test_chat_with_an_unknown_id_says_so_and_keeps_waiting(procs: list[Proc]) -> None:
    server = await Proc.start("serve", "--host", "127.0.0.1", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    url = (await server.expect(r"HTTP (http://127\.0\.0\.1:\d+)")).group(1)
    alice = await Proc.start("chat", "--server", url)
    procs.append(alice)
    await alice.expect("Your ID")
    await alice.type("nobody-has-this-id")
    await alice.expect(r"Could not connect: .*unknown peer identifier 'nobody-has-this-id'")
    assert alice.process.returncode is None


async def test_chat_without_a_server_fails_with_a_clear_message(procs: list[Proc]) -> None:
    server = await Proc.start("serve", "--host", "127.0.0.1", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    url = (await server.expect(r"HTTP (http://127\.0\.0\.1:\d+)")).group(1)
    server.process.send_signal(signal.SIGINT)
    await server.finish()
    alice = await Proc.start("chat", "--server", url)
    procs.append(alice)
    await alice.expect(r"punchlab: cannot reach the rendezvous server")
    assert await alice.finish() == 1


async def test_loopback_demo_prints_the_connection_and_the_trace(procs: list[Proc]) -> None:
    demo = await Proc.start("demo", "--loopback")
    procs.append(demo)
    await demo.expect(r"A and B connected in [\d.]+ ms")
    await demo.expect(r"B got: hello from A")
    await demo.expect(r"delivered\s+A\s+.*SUCCESS")
    assert await demo.finish() == 0


def test_demo_punches_simulated_nats_and_writes_the_diagram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "ladder.png"
    trace = tmp_path / "run.jsonl"
    args = ["demo", "--nat-a", "full-cone", "--nat-b", "symmetric", "-o", str(png)]
    code = main([*args, "--trace", str(trace)])
    out = capsys.readouterr().out
    assert code == 0
    assert "full-cone <-> symmetric: connected in" in out
    assert "translated  NAT B" in out and "NAT B (symmetric, public address" in out
    assert f"sequence diagram written to {png.resolve()}" in out
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    assert Trace.load(trace).count("delivered", "SUCCESS") >= 2


def test_demo_of_a_failing_pair_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "fail.png"
    assert main(["demo", "--nat-b", "symmetric", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "port-restricted-cone <-> symmetric: no connection" in out
    assert "filtered by NAT" in out and png.exists()


def test_demo_refuses_a_bad_loss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--loss", "1.5"]) == 2
    assert "--loss is a probability" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["serve"], ["chat"], ["demo"]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: punchlab" in capsys.readouterr().out


def test_a_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([])
    assert exit_info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err
