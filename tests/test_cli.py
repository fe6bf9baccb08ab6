"""The command line as a teacher and students use it: real processes on loopback."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from punchlab import cli, course_files
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


async def two_students_connect(procs: list[Proc], url: str, seen: str) -> tuple[Proc, Proc, str]:
    """Alice and Bob start ``punchlab chat`` on ``url``, Alice types Bob's ID, and both say
    they are connected to an address matching ``seen``; returns them and Bob's ID."""
    alice = await Proc.start("chat", "--server", url, "--name", "alice")
    bob = await Proc.start("chat", "--server", url, "--name", "bob")
    procs += [alice, bob]
    await alice.expect(r"Your ID: \S+")
    bob_id = (await bob.expect(r"Your ID: (\S+)")).group(1)
    await alice.type(bob_id)
    await alice.expect(rf"Connected to {seen}")
    await bob.expect(rf"Connected to {seen}")
    return alice, bob, bob_id


async def test_a_class_serves_registers_connects_and_chats(procs: list[Proc]) -> None:
    server = await Proc.start("serve", "--host", "127.0.0.1", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    url = (await server.expect(r"HTTP (http://127\.0\.0\.1:\d+)")).group(1)

    alice, bob, bob_id = await two_students_connect(procs, url, r"127\.0\.0\.1:\d+")
    await alice.expect("Type a message")
    await bob.expect("Type a message")

    await alice.type("hi bob")
    await alice.expect(r"^#1 sent: hi bob$")  # each line's state, as the chat tells it
    await bob.expect(r"^Message: hi bob$")
    await alice.expect(r"^#1 delivered")
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
    argv = ["demo", "--nat-b", "symmetric", "--no-ladder", "-o", str(png)]
    assert main(argv) == 1  # as `netlab punch`
    out = capsys.readouterr().out
    assert "port-restricted-cone <-> symmetric: no connection" in out
    assert "filtered by NAT" in out and png.exists()


@pytest.mark.parametrize(
    ("nat_b", "route"),
    [("symmetric", "birthday ("), ("port-restricted-cone", "direct;"), ("none", "direct;")],
)
def test_demo_names_the_route_that_won(
    nat_b: str, route: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--nat-b", nat_b, "-o", str(tmp_path / "d.png")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"<-> {nat_b}: connected in" in first and route in first


def test_demo_puts_both_homes_behind_one_carrier_grade_nat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--cgn", "same", "-o", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert "connected in" in out.splitlines()[0]
    # The homes' NATs sit on the shared address space, and the CGN turns the HELLOs round.
    assert "CGN (carrier-grade, public address" in out and "100.64.0." in out


def test_demo_refuses_a_bad_loss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--loss", "1.5"]) == 2
    assert "--loss is a probability" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--hairpin"], "--hairpin goes with --same-nat"),
        (["--same-nat", "--nat-a", "full-cone"], "not 'full-cone'"),
        (["--same-nat", "--nat-a", "symmetric", "--hairpin"], "symmetric NAT cannot hairpin"),
        (["--same-nat", "--cgn", "same"], "not both"),
        (["--cgn", "different", "--nat-b", "none"], "not 'none'"),
    ],
)
def test_netlab_punch_refuses_shared_nat_options_that_do_not_go_together(
    argv: list[str], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any namespace is built: this runs without root.
    assert main(["netlab", "punch", *argv]) == 2
    assert why in capsys.readouterr().err


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


# -- every option says what it does and what it is by default -------------------------


def subparser(*path: str) -> argparse.ArgumentParser:
    """The parser of ``punchlab PATH...`` (e.g. ``netlab punch``)."""
    parser = build_parser()
    for name in path:
        [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = commands.choices[name]
    return parser


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    return (a for a in parser._actions if not isinstance(a, argparse._HelpAction))


@pytest.mark.parametrize(
    "command",
    [["netlab", "punch"], ["netlab", "matrix"], ["serve"], ["chat"], ["demo"], ["lab"]],
    ids=" ".join,
)
def test_help_describes_and_defaults_every_option(command: list[str]) -> None:
    for action in options(subparser(*command)):
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"punchlab {' '.join(command)}: {name} has no help"
        assert "default" in action.help, f"punchlab {' '.join(command)}: {name}: no default"


def test_every_command_names_its_handler() -> None:
    for path in [["serve"], ["chat"], ["demo"], ["lab"], ["peer"], ["netlab", "cleanup"]]:
        assert callable(subparser(*path).get_default("handler")), path


# -- serve: what students type, and a busy port ---------------------------------------


def test_students_get_the_outward_address_first_then_every_other() -> None:
    chosen = cli.student_addresses(
        outward=lambda: "192.168.1.20",
        named=lambda: ["127.0.1.1", "10.0.0.5", "192.168.1.20", "0.0.0.0", "10.0.0.5"],
    )
    assert chosen == ["192.168.1.20", "10.0.0.5"]


def test_students_get_the_outward_address_when_the_hostname_is_loopback() -> None:
    # Debian and Ubuntu map the hostname to 127.0.1.1: the old rule printed nothing.
    chosen = cli.student_addresses(outward=lambda: "10.1.2.3", named=lambda: ["127.0.1.1"])
    assert chosen == ["10.1.2.3"]


def test_an_offline_machine_says_students_cannot_reach_it() -> None:
    assert cli.student_addresses(outward=lambda: None, named=lambda: ["127.0.1.1"]) == []
    [line] = cli._student_lines("0.0.0.0", 8088, addresses=list)
    assert "no network address found" in line and "http://127.0.0.1:8088" in line


def test_student_lines_for_each_host() -> None:
    def found() -> list[str]:
        return ["192.168.1.20", "fd00::2"]

    assert cli._student_lines("::", 80, found, v6=list) == [
        "  students: punchlab chat --server http://192.168.1.20:80",
        "  students: punchlab chat --server http://[fd00::2]:80",
    ]
    # On ::, the address the machine sends IPv6 from is offered too (on 0.0.0.0 it is not).
    outward = cli._student_lines("::", 80, lambda: ["192.168.1.20"], v6=lambda: ["2001:db8::20"])
    assert outward[-1] == "  students: punchlab chat --server http://[2001:db8::20]:80"
    assert len(cli._student_lines("0.0.0.0", 80, found, v6=lambda: ["2001:db8::20"])) == 2
    assert cli._student_lines("10.0.0.7", 80, found) == [
        "  students: punchlab chat --server http://10.0.0.7:80"
    ]
    [hint] = cli._student_lines("127.0.0.1", 80, found)
    assert "--host 0.0.0.0" in hint


class ProbeSocket:
    """Stands in for socket.socket: records what the probe does, sends nothing."""

    calls: ClassVar[list[tuple[str, Any]]] = []
    fail: ClassVar[OSError | None] = None

    def __init__(self, family: int, kind: int) -> None:
        self.calls.append(("socket", (family, kind)))

    def connect(self, address: tuple[str, int]) -> None:
        self.calls.append(("connect", address))
        if self.fail is not None:
            raise self.fail

    def getsockname(self) -> tuple[str, int]:
        return ("10.9.8.7", 40000)

    def __getattr__(self, name: str) -> Any:  # send, sendto ...: the probe must not
        raise AssertionError(f"the probe called socket.{name}")

    def __enter__(self) -> ProbeSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.calls.append(("close", None))


def test_the_outward_address_comes_from_a_connected_udp_socket_to_test_net(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ProbeSocket, "calls", [])
    monkeypatch.setattr(cli.socket, "socket", ProbeSocket)
    assert cli._outward_address() == "10.9.8.7"
    assert ProbeSocket.calls == [
        ("socket", (socket.AF_INET, socket.SOCK_DGRAM)),
        ("connect", ("192.0.2.1", 9)),  # RFC 5737 documentation address
        ("close", None),
    ]


def test_no_route_means_no_outward_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProbeSocket, "calls", [])
    monkeypatch.setattr(ProbeSocket, "fail", OSError(errno.ENETUNREACH, "Network unreachable"))
    monkeypatch.setattr(cli.socket, "socket", ProbeSocket)
    assert cli._outward_address() is None


async def test_serve_prints_the_address_students_reach_it_at(procs: list[Proc]) -> None:
    # Listens on every address (ports chosen by the kernel) but sends nothing.
    expected = cli._outward_address()
    server = await Proc.start("serve", "--host", "0.0.0.0", "--http-port", "0", "--udp-port", "0")
    procs.append(server)
    port = (await server.expect(r"HTTP http://127\.0\.0\.1:(\d+)")).group(1)
    if expected is None:
        await server.expect("no network address found")
    else:
        await server.expect(rf"students: punchlab chat --server http://{expected}:{port}$")


async def test_serve_says_which_udp_port_is_busy(procs: list[Proc]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        server = await Proc.start(
            "serve", "--host", "127.0.0.1", "--udp-port", str(port), "--http-port", "0"
        )
        procs.append(server)
        await server.expect(rf"UDP port {port} is already in use.*--udp-port")
        assert await server.finish() == 2


async def test_serve_says_which_http_port_is_busy(procs: list[Proc]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = await Proc.start(
            "serve", "--host", "127.0.0.1", "--http-port", str(port), "--udp-port", "0"
        )
        procs.append(server)
        await server.expect(rf"HTTP port {port} is already in use.*--http-port")
        assert await server.finish() == 2


# -- lab: the course in a folder of the student's --------------------------------------


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands `punchlab lab` would have started (nothing is started)."""
    commands: list[list[str]] = []

    def launch(command: list[str]) -> int:
        commands.append(list(command))
        return 0

    monkeypatch.setattr(course_files, "launch", launch)
    monkeypatch.setattr(course_files, "jupyterlab_installed", lambda: True)
    return commands


def test_lab_copies_the_course_says_where_and_opens_chapter_one(
    tmp_path: Path, launched: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "my course"
    assert main(["lab", str(folder), "--no-browser", "--port", "8899"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == [n.name for n in course_files.course_notebooks()]
    assert names[0].startswith("01-") and len(names) >= 7
    assert f"Copied {len(names)} notebook(s) into {folder}" in capsys.readouterr().out
    [command] = launched
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={folder}" in command
    assert "--ServerApp.port=8899" in command and "--no-browser" in command
    assert command[-1] == str(folder / names[0])
    json.loads((folder / names[0]).read_text())  # a whole notebook


def test_lab_never_overwrites_a_students_notebook(
    tmp_path: Path, launched: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    first, *rest = course_files.course_notebooks()
    mine = tmp_path / first.name
    mine.write_text("my answers")
    assert main(["lab", str(tmp_path)]) == 0
    assert mine.read_text() == "my answers"
    out = capsys.readouterr().out
    assert f"Kept your own 1 notebook(s) in {tmp_path}, unchanged: {first.name}" in out
    assert f"Copied {len(rest)} notebook(s)" in out
    assert main(["lab", str(tmp_path)]) == 0  # a second run keeps everything
    assert "Copied" not in capsys.readouterr().out
    assert launched[-1][-1] == str(tmp_path / first.name)


def test_lab_defaults_to_a_course_folder_here(
    tmp_path: Path, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lab"]) == 0
    assert (tmp_path / "punchlab-course").is_dir()
    assert "--no-browser" not in launched[0]
    assert not any(arg.startswith("--ServerApp.port") for arg in launched[0])


def test_lab_without_jupyterlab_says_what_to_install(
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(course_files, "jupyterlab_installed", lambda: False)
    assert main(["lab", str(tmp_path / "course")]) == 2
    assert 'pip install "punchlab[lab]"' in capsys.readouterr().err
    assert launched == [] and not (tmp_path / "course").exists()


def test_lab_refuses_a_file_for_a_folder(
    tmp_path: Path, launched: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes").write_text("mine")
    assert main(["lab", str(tmp_path / "notes")]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err
    assert (tmp_path / "notes").read_text() == "mine" and launched == []


def test_jupyterlab_is_told_to_allow_root_only_for_root(tmp_path: Path) -> None:
    def command(root: bool) -> list[str]:
        return course_files.lab_command(tmp_path, "01.ipynb", port=None, browser=True, root=root)

    assert "--allow-root" in command(True)
    assert "--allow-root" not in command(False)


async def test_the_cli_the_scripted_peer_and_the_widgets_say_the_same(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One renderer of peer events (punchlab.narrate.tell) for every place a person reads."""
    from punchlab import scripted
    from punchlab.peer import Connected
    from punchlab.sim import Network
    from punchlab.sim.session import SimSession
    from punchlab.widgets import PeerPanel

    event = Connected(("198.51.100.7", 62001), 0.0123)
    sentence = "Connected to 198.51.100.7:62001 in 12 ms, route: direct."
    cli._chat_event(event)
    scripted._on_event(event)
    printed, json_line = capsys.readouterr().out.splitlines()
    assert printed == sentence
    assert json.loads(json_line)["text"] == sentence
    net = Network(seed=0)
    net.add_server()
    panel = PeerPanel(SimSession(net).peer(net.add_peer("A")))
    panel._on_event(event)
    assert panel.status_text == sentence
