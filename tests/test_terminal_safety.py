"""What the network says cannot drive a terminal, and cannot end a chat (DESIGN.md section 8).

Each test plays the attacker (or the odd server, or the user who closes
standard input) against the real ``punchlab`` command in a subprocess, and
reads every byte it writes.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
import re
import socket
import sys
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from punchlab import scripted
from punchlab.aio import RendezvousServer
from punchlab.display import ELLIPSIS, EscapingFormatter, printable
from tests.conftest import PeerFactory
from tests.standin import GO_ID, StandInServer

TIMEOUT = 10

#: Bytes a terminal acts on that must never come out: ESC, BEL, CR.
CONTROL_BYTES = (b"\x1b", b"\x07", b"\r")

#: What a hostile peer sends, and the line the chat must show for it.
HOSTILE_TEXTS = [
    ("\x1b]0;pwned\x07", r"Message: \x1b]0;pwned\x07"),  # sets the window title
    ("\x1b[2J\x1b[H", r"Message: \x1b[2J\x1b[H"),  # clears the screen
    (
        "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",  # an OSC 8 hyperlink
        "Message: \\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\",  # ESC \ is ST
    ),
    ("harmless\rMessage: forged", r"Message: harmless\rMessage: forged"),
    ("one\nMessage: forged", r"Message: one\nMessage: forged"),
    ("ding\x07\x07", r"Message: ding\x07\x07"),
    ("file \u202egnp.exe", r"Message: file \u202egnp.exe"),  # shows as "file exe.png"
    ("C1 CSI \x9b2J, back\x08space", r"Message: C1 CSI \x9b2J, back\x08space"),
]


class Command:
    """A ``punchlab`` process; every byte it writes (stdout and stderr) is kept in ``raw``."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.raw = bytearray()
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, stdin: int = asyncio.subprocess.PIPE) -> Command:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "punchlab",
            *args,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process)

    async def _read_line(self) -> str | None:
        assert self.process.stdout is not None
        raw = await self.process.stdout.readline()
        if not raw:
            return None
        self.raw += raw
        line = raw.decode("utf-8", "replace").rstrip("\n")
        self.lines.append(line)
        return line

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read lines until one matches; fail with everything read if none does in time."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while (line := await self._read_line()) is not None:
                    if match := re.search(pattern, line):
                        return match
        except TimeoutError:
            pass
        pytest.fail(f"no line matching {pattern!r}; output was:\n" + "\n".join(self.lines))

    async def expect_line(self, line: str) -> None:
        """Read until this exact line is printed."""
        await self.expect(f"^{re.escape(line)}$")

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    def close_input(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    async def finish(self) -> int:
        """Read the rest of the output and the exit status; fail if it does not end in time."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while await self._read_line() is not None:
                    pass
                return await self.process.wait()
        except TimeoutError:
            pytest.fail("the process did not end; output was:\n" + "\n".join(self.lines))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def assert_no_control_bytes(self) -> None:
        for byte in CONTROL_BYTES:
            assert byte not in self.raw, f"{byte!r} reached the terminal:\n{bytes(self.raw)!r}"


@pytest.fixture
async def commands() -> AsyncIterator[list[Command]]:
    """Processes started by a test; killed at the end whatever happened."""
    started: list[Command] = []
    try:
        yield started
    finally:
        for command in started:
            if command.process.returncode is None:
                command.process.kill()
            await command.process.wait()


async def start(commands: list[Command], *args: str, **kwargs: Any) -> Command:
    command = await Command.start(*args, **kwargs)
    commands.append(command)
    return command


# -- printable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("hello, world", "hello, world"),
        ("\x1b]0;pwned\x07", r"\x1b]0;pwned\x07"),
        ("a\tb\nc\rd", r"a\tb\nc\rd"),
        ("\x00\x08\x7f", r"\x00\x08\x7f"),
        ("\x85\x9b\x9f", r"\x85\x9b\x9f"),  # C1: NEL, CSI, APC
        ("\u202a\u202e\u2066\u2069\u200e\u061c", r"\u202a\u202e\u2066\u2069\u200e\u061c"),
        ("zero\u200bwidth\ufeff\u2028\u2029", r"zero\u200bwidth\ufeff\u2028\u2029"),
        ("tag\U000e0041", r"tag\U000e0041"),
        ("lone \ud800", r"lone \ud800"),
        ("¯\\_(ツ)_/¯ C:\\x1b", r"¯\_(ツ)_/¯ C:\x1b"),  # a backslash is shown as it is
        (
            "Grüße, 你好, مرحبا, नमस्ते, 👩\u200d💻, a\xa0b",
            "Grüße, 你好, مرحبا, नमस्ते, 👩\u200d💻, a\xa0b",
        ),
    ],
)
def test_printable_escapes_controls_python_style(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_cuts_at_the_limit_but_never_inside_an_escape() -> None:
    assert printable("abcdef", limit=6) == "abcdef"
    assert printable("abcdefg", limit=6) == "abcde" + ELLIPSIS
    assert printable("ab\x1bcdef", limit=6) == "ab" + ELLIPSIS
    assert printable("\x1b" * 1000, limit=9) == r"\x1b\x1b" + ELLIPSIS
    with pytest.raises(ValueError):
        printable("x", limit=0)


_SHOWN_RAW = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_printable_is_one_safe_line_that_reads_back_as_the_text(text: str, limit: int) -> None:
    shown = printable(text)
    hidden = [c for c in shown if unicodedata.category(c) in _SHOWN_RAW]
    assert set(hidden) <= {"\u200c", "\u200d"}  # only the joiners scripts need
    if "\\" not in text:  # then what is shown reads back, in Python, as the text
        assert ast.literal_eval('"' + shown.replace('"', '\\"') + '"') == text
    cut = printable(text, limit)
    assert len(cut) <= limit
    assert cut == shown or (cut.endswith(ELLIPSIS) and shown.startswith(cut[:-1]))


def test_log_lines_are_escaped_but_not_their_tracebacks() -> None:
    formatter = EscapingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "got %s", ("\x1b[2J",), None)
    assert formatter.format(record) == r"WARNING got \x1b[2J"


def test_the_scripted_peers_json_lines_already_escape_controls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scripted._emit("text", text="".join(text for text, _ in HOSTILE_TEXTS))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.isascii()  # json.dumps escapes all of it
    assert not [c for c in out[:-1] if unicodedata.category(c) == "Cc"]


# -- the chat ---------------------------------------------------------------------------


async def test_a_peers_escape_sequences_reach_the_chat_escaped(
    commands: list[Command], server: RendezvousServer, make_peer: PeerFactory
) -> None:
    chat = await start(commands, "chat", "--server", server.url)
    chat_id = (await chat.expect(r"Your ID: (\S+)")).group(1)
    attacker = await make_peer("attacker")
    await attacker.connect(chat_id, timeout=TIMEOUT)
    await chat.expect("Type a message")
    for text, shown in HOSTILE_TEXTS:
        await attacker.send_text(text)
        await chat.expect_line(shown)
    chat.close_input()
    assert await chat.finish() == 0
    chat.assert_no_control_bytes()


async def test_a_hostile_servers_identifier_and_errors_are_shown_escaped(
    commands: list[Command],
) -> None:
    error = "\x1b[2J\x1b]0;pwned\x07no such peer\r"
    async with StandInServer(
        registration_answer="\x1b]0;pwned\x07\u202eid",
        start_status=404,
        start_body=json.dumps({"error": error}).encode(),
    ) as standin:
        chat = await start(commands, "chat", "--server", standin.url)
        await chat.expect_line(r"Your ID: \x1b]0;pwned\x07\u202eid")
        await chat.type("someone")
        await chat.expect_line(
            r"Could not connect: \x1b[2J\x1b]0;pwned\x07no such peer\r. Type another ID, or wait."
        )
        chat.close_input()
        assert await chat.finish() == 0
        # With --peer the error ends the command, and main() prints it.
        dialer = await start(commands, "chat", "--server", standin.url, "--peer", "someone")
        await dialer.expect_line(r"punchlab: \x1b[2J\x1b]0;pwned\x07no such peer\r")
        assert await dialer.finish() == 1
    chat.assert_no_control_bytes()
    dialer.assert_no_control_bytes()


async def test_the_servers_log_shows_what_peers_send_escaped(commands: list[Command]) -> None:
    serve = await start(
        commands, "serve", "--host", "127.0.0.1", "--http-port", "0", "--udp-port", "0"
    )
    port = int((await serve.expect(r"UDP port (\d+)")).group(1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(
            json.dumps({"type": "\x1b]0;pwned\x07", "payload": ""}).encode(), ("127.0.0.1", port)
        )
    line = (await serve.expect(r"rejected datagram from 127\.0\.0\.1:\d+: .*pwned.*")).group(0)
    assert r"\x1b]0;pwned\x07" in line
    serve.assert_no_control_bytes()


# -- nothing from the network ends a chat that waits ---------------------------------------


async def register_like_go(server: RendezvousServer) -> tuple[socket.socket, str]:
    """A Go-style client's registration: a bare REGISTRATION, the identifier back."""
    assert server.udp_address is not None
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    await loop.sock_sendto(sock, b'{"type":"REGISTRATION","payload":""}', server.udp_address)
    async with asyncio.timeout(TIMEOUT):
        answer = json.loads(await loop.sock_recv(sock, 2048))
    return sock, str(answer["payload"])


@pytest.mark.slow
async def test_a_punch_that_fails_while_waiting_is_said_and_the_chat_waits_on(
    commands: list[Command], server: RendezvousServer, make_peer: PeerFactory
) -> None:
    chat = await start(commands, "chat", "--server", server.url, "--punch-timeout", "1")
    chat_id = (await chat.expect(r"Your ID: (\S+)")).group(1)
    # One request naming the waiting user, then silence: no HELLO is ever answered.
    sock, initiator_id = await register_like_go(server)
    with sock:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.url}/start-communication",
                json={"peerInitiator": initiator_id, "peer": chat_id},
            ) as response,
        ):
            assert response.status == 200
        await chat.expect(r"wants to talk: punching")
        await chat.expect(
            r"^A peer at 127\.0\.0\.1:\d+ asked to connect but the punch failed: .+; "
            r"still waiting\. Type an ID, or wait\.$"
        )
    friend = await make_peer("friend")
    await friend.connect(chat_id, timeout=TIMEOUT)
    await chat.expect("Type a message")
    await friend.send_text("still here")
    await chat.expect_line("Message: still here")
    chat.close_input()
    assert await chat.finish() == 0


async def test_a_go_servers_empty_400_is_said_and_the_chat_waits_on(
    commands: list[Command],
) -> None:
    async with StandInServer(start_status=400, start_body=b"") as standin:
        chat = await start(commands, "chat", "--server", standin.url)
        await chat.expect_line(f"Your ID: {GO_ID}")
        for mistyped in ("3f2b8c1e", "3f2b8c1e-5d4a"):
            await chat.type(mistyped)
            await chat.expect(
                r"^Could not connect: POST http://127\.0\.0\.1:\d+/start-communication answered "
                r"400 without a JSON object\. Type another ID, or wait\.$"
            )
        assert chat.process.returncode is None
        chat.close_input()
        assert await chat.finish() == 0


# -- the end of input quits, at every stage --------------------------------------------------


def assert_quit_cleanly(chat: Command, code: int) -> None:
    assert code == 0, chat.output
    assert "End of input: leaving the chat." in chat.lines
    assert "Traceback" not in chat.output and "Exception" not in chat.output


async def test_chat_from_dev_null_quits_cleanly(
    commands: list[Command], server: RendezvousServer
) -> None:
    # /dev/null is a character device the event loop cannot watch (epoll: EPERM).
    chat = await start(commands, "chat", "--server", server.url, stdin=asyncio.subprocess.DEVNULL)
    assert_quit_cleanly(chat, await chat.finish())


async def test_input_that_ends_before_registration_quits_at_once(
    commands: list[Command],
) -> None:
    async with StandInServer(registration_answer=None) as silent:  # never answers REGISTRATION
        chat = await start(commands, "chat", "--server", silent.url)
        chat.close_input()
        assert_quit_cleanly(chat, await chat.finish())
    assert not any(line.startswith("Your ID") for line in chat.lines)


async def test_input_that_ends_while_waiting_quits_cleanly(
    commands: list[Command], server: RendezvousServer
) -> None:
    chat = await start(commands, "chat", "--server", server.url)
    await chat.expect("Type a peer's ID")
    chat.close_input()
    assert_quit_cleanly(chat, await chat.finish())


async def test_input_that_ends_while_chatting_quits_cleanly(
    commands: list[Command], server: RendezvousServer, make_peer: PeerFactory
) -> None:
    chat = await start(commands, "chat", "--server", server.url)
    chat_id = (await chat.expect(r"Your ID: (\S+)")).group(1)
    friend = await make_peer("friend")
    await friend.connect(chat_id, timeout=TIMEOUT)
    await chat.expect("Type a message")
    chat.close_input()
    assert_quit_cleanly(chat, await chat.finish())


async def test_lines_typed_before_the_end_of_input_are_still_acted_on(
    commands: list[Command], server: RendezvousServer
) -> None:
    chat = await start(commands, "chat", "--server", server.url)
    await chat.type("nobody-has-this-id")
    chat.close_input()  # very likely before the registration is answered
    await chat.expect(r"Could not connect: .*'nobody-has-this-id'")
    assert_quit_cleanly(chat, await chat.finish())
