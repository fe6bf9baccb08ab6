"""The HTTP listener against slow and numerous connections (Slowloris), and dual stack.

Every test uses real sockets on loopback with port 0, waits on events or
polls with a bounded timeout, and never sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import resource
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from punchlab.addresses import normalise_ip, same_host
from punchlab.aio.http_guard import AcceptErrorThrottle, HttpLimits, fd_connection_cap
from punchlab.aio.server import RendezvousServer
from tests.conftest import ipv6_loopback_works

WAIT = 5.0
PARTIAL_REQUEST = b"GET /get-udp-port HTTP/1.1\r\nHost: slow"
ROOT = Path(__file__).resolve().parent.parent


# -- helpers --------------------------------------------------------------------------


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serving(**limits: Any) -> AsyncIterator[RendezvousServer]:
    async with RendezvousServer("127.0.0.1", 0, 0, http_limits=HttpLimits(**limits)) as server:
        yield server


@contextlib.asynccontextmanager
async def raw_connection(
    server: RendezvousServer, data: bytes = b""
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    assert server.http_address is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_address[1])
    try:
        writer.write(data)
        await writer.drain()
        yield reader, writer
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: its status and body."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), body


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait)."""
    async with asyncio.timeout(WAIT):
        return await reader.read()


async def get_udp_port(base_url: str) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session,
        session.get(f"{base_url}/get-udp-port") as response,
    ):
        assert response.status == 200
        body = await response.json()
    return int(body["port"])


# -- header deadline ------------------------------------------------------------------


async def test_half_request_line_is_closed_at_the_header_deadline() -> None:
    async with serving(header_timeout=0.5) as server:
        assert server.http_guard is not None and server.udp_address is not None
        async with raw_connection(server, b"GET /get-udp-po") as (slow, _):
            # Meanwhile a complete request on another connection is answered.
            assert await get_udp_port(server.url) == server.udp_address[1]
            assert await closed_by_server(slow) == b""
        assert server.http_guard.timed_out == 1


async def test_idle_keep_alive_connection_is_closed_at_the_header_deadline() -> None:
    request = b"GET /get-udp-port HTTP/1.1\r\nHost: x\r\n\r\n"
    async with serving(header_timeout=0.5) as server, raw_connection(server, request) as (r, w):
        assert server.http_guard is not None
        status, _ = await read_response(r)
        assert status == 200
        # The connection stays usable for a next request until the deadline...
        w.write(request)
        status, _ = await read_response(r)
        assert status == 200
        # ...and is closed when no further request starts in time.
        assert await closed_by_server(r) == b""
        assert server.http_guard.timed_out == 1


async def test_slow_body_gets_408_with_a_json_error() -> None:
    head = b"POST /start-communication HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n{"
    async with serving(body_timeout=0.3) as server, raw_connection(server, head) as (r, _):
        status, body = await read_response(r)
        assert status == 408
        assert "error" in json.loads(body)
        # The rest of the body is given up: the connection closes now, no lingering.
        assert await closed_by_server(r) == b""


# -- connection cap -------------------------------------------------------------------


async def test_at_the_cap_the_oldest_connection_waiting_for_headers_makes_room() -> None:
    async with serving(max_connections=3, header_timeout=60) as server:
        guard = server.http_guard
        assert guard is not None
        async with contextlib.AsyncExitStack() as stack:
            slow = []
            for _ in range(3):
                slow.append(await stack.enter_async_context(raw_connection(server, b"GET /")))
                await until(lambda: guard.open_connections == len(slow))
            await get_udp_port(server.url)
            assert await closed_by_server(slow[0][0]) == b""
            assert guard.evicted == 1
            assert guard.timed_out == 0
            assert not slow[1][0].at_eof() and not slow[2][0].at_eof()


async def test_at_the_cap_a_slow_body_makes_room_too() -> None:
    """Headers sent, body trickling: such a connection must not hold its descriptor
    at the cap either (a review found 459 of them locked every new client out)."""
    head = b"POST /start-communication HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n{"
    async with serving(max_connections=2, body_timeout=60, header_timeout=60) as server:
        guard = server.http_guard
        assert guard is not None
        async with raw_connection(server, head) as (first, _), raw_connection(server, head):
            await until(lambda: guard.open_connections == 2 and guard.waiting_connections == 2)
            assert await get_udp_port(server.url) > 0
            assert await closed_by_server(first) == b""
            assert guard.evicted == 1 and guard.refused == 0


@pytest.mark.parametrize(
    "limits",
    [
        {"header_timeout": 0},
        {"body_timeout": -1},
        {"header_timeout": float("nan")},
        {"max_connections": 0},
        {"fd_reserve": -1},
    ],
)
def test_nonsense_limits_are_refused(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HttpLimits(**limits)


def test_the_cap_leaves_descriptors_free_below_the_soft_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = fd_connection_cap(accept_burst=128, reserve=64)
    assert cap is not None
    assert cap <= soft - 128 - 64 - len(os.listdir("/proc/self/fd")) + 1


# -- accept errors --------------------------------------------------------------------


def accept_error_record() -> logging.LogRecord:
    """A record as asyncio's default exception handler logs a failed accept()."""
    exc = OSError(errno.EMFILE, "Too many open files")
    return logging.getLogger("asyncio").makeRecord(
        "asyncio",
        logging.ERROR,
        __file__,
        1,
        "socket.accept() out of system resource\nsocket: <socket fd=6>",
        (),
        (OSError, exc, None),
    )


def test_accept_errors_pass_once_a_second_with_a_count() -> None:
    now = [100.0]
    throttle = AcceptErrorThrottle(clock=lambda: now[0])
    passed = []
    for i in range(3000):  # 1,000 errors a second for three seconds
        now[0] = 100.0 + i / 1000
        record = accept_error_record()
        if throttle.filter(record):
            passed.append(record)
    assert len(passed) == 3
    messages = [record.getMessage() for record in passed]
    assert "suppressed" not in messages[0]
    assert "999 more suppressed" in messages[1] and "999 more suppressed" in messages[2]
    assert all("Too many open files" in m and "\n" not in m for m in messages)
    assert all(record.exc_info is None for record in passed)  # no traceback per line
    # asyncio's retries that fire after the listener closed count in the same flood.
    retry = logging.makeLogRecord(
        {
            "name": "asyncio",
            "msg": "Exception in callback BaseSelectorEventLoop._start_serving(<fn>, <sock>)",
            "exc_info": (ValueError, ValueError("Invalid file descriptor: -1"), None),
        }
    )
    assert not throttle.filter(retry)
    now[0] += 1.0
    assert throttle.filter(retry)
    assert "1000 more suppressed" in retry.getMessage() and retry.exc_info is None
    other = logging.makeLogRecord({"name": "asyncio", "msg": "Task was destroyed"})
    assert throttle.filter(other) and other.getMessage() == "Task was destroyed"


@pytest.mark.slow
async def test_the_throttle_is_on_the_asyncio_logger_only_while_a_server_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def throttles() -> list[AcceptErrorThrottle]:
        found = logging.getLogger("asyncio").filters
        return [f for f in found if isinstance(f, AcceptErrorThrottle)]

    loop = asyncio.get_running_loop()
    exc = OSError(errno.EMFILE, "Too many open files")
    async with serving(), serving():
        assert len(throttles()) == 1
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(500):
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc}
                )
        lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
        assert len(lines) == 1
    # Kept a moment after close for asyncio's pending accept retries, then removed.
    await until(lambda: throttles() == [])


# -- the Slowloris attack, against a server process with 1,024 descriptors ------------

SERVER_SCRIPT = """
import asyncio, logging, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from punchlab.aio.http_guard import HttpLimits
from punchlab.aio.server import RendezvousServer

async def main() -> None:
    limits = HttpLimits(header_timeout=float(sys.argv[1]))
    async with RendezvousServer("127.0.0.1", 0, 0, http_limits=limits) as server:
        print(server.http_address[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

ATTACK_CONNECTIONS = 1100


@contextlib.contextmanager
def fd_limit_at_least(count: int) -> Iterator[None]:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = before
    if soft < count:
        hard = max(hard, count) if hard != resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


async def slow_client(port: int, opened: list[socket.socket]) -> None:
    """Connect, send part of a request line and headers, and never finish."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    opened.append(sock)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, PARTIAL_REQUEST)


async def attack(port: int, opened: list[socket.socket]) -> int:
    """Open the slow connections; how many connected and sent (bounded wait)."""
    tasks = [asyncio.create_task(slow_client(port, opened)) for _ in range(ATTACK_CONNECTIONS)]
    done, pending = await asyncio.wait(tasks, timeout=20)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return sum(1 for task in done if task.exception() is None)


async def legitimate_get(port: int, deadline: float) -> int:
    """Status of a GET /get-udp-port, retrying new connections until ``deadline``."""
    request = b"GET /get-udp-port HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    loop = asyncio.get_running_loop()
    while True:
        try:
            async with asyncio.timeout(min(5.0, deadline - loop.time())):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(request)
                    status, _ = await read_response(reader)
                    return status
                finally:
                    writer.close()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if loop.time() >= deadline:
                raise


def accept_error_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if "out of system resource" in line)


@pytest.mark.slow
async def test_slowloris_cannot_lock_out_a_legitimate_client(tmp_path: Path) -> None:
    """1,100 half-open connections against 1,024 descriptors; a GET still gets its 200.

    The header deadline is set far beyond the wait for the legitimate request,
    so only the connection cap can let it through in time.
    """
    stderr_path = tmp_path / "server.stderr"
    opened: list[socket.socket] = []
    loop = asyncio.get_running_loop()
    with fd_limit_at_least(4096), stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER_SCRIPT,
            "300",
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            async with asyncio.timeout(20):
                port = int(await proc.stdout.readline())
            connected = await attack(port, opened)
            started = loop.time()
            status = await legitimate_get(port, deadline=started + 30)
            elapsed = loop.time() - started
        finally:
            for sock in opened:
                sock.close()
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
    log_text = stderr_path.read_text(errors="replace")
    errors = accept_error_lines(log_text)
    print(
        f"\nslowloris: {connected}/{ATTACK_CONNECTIONS} slow connections opened; "
        f"legitimate GET answered {status} after {elapsed:.3f} s; "
        f"{errors} accept-error log lines; server log {len(log_text.splitlines())} lines"
    )
    assert connected >= 1024  # more than the server has descriptors
    assert status == 200
    assert errors <= 5
    assert proc.returncode == 0, log_text[-2000:]


# -- dual stack -----------------------------------------------------------------------


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback")
async def test_host_any_ipv6_also_answers_ipv4_clients() -> None:
    async with RendezvousServer("::", 0, 0) as server:
        assert server.http_address is not None and server.udp_address is not None
        assert server.http_address[0] == "::"
        port = server.http_address[1]
        assert server.url == f"http://127.0.0.1:{port}"
        assert await get_udp_port(f"http://127.0.0.1:{port}") == server.udp_address[1]
        assert await get_udp_port(f"http://[::1]:{port}") == server.udp_address[1]


# -- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),
        ("::FFFF:7f00:1", "127.0.0.1", True),
        ("0:0:0:0:0:0:0:1", "::1", True),
        ("::1", "127.0.0.1", False),
        ("::ffff:10.0.0.1", "10.0.0.2", False),
        ("not an address", "not an address", True),
        ("not an address", "127.0.0.1", False),
        ("", "::", False),
        ("127.0.0.1:8089", "127.0.0.1", False),
    ],
)
def test_same_host(a: str, b: str, same: bool) -> None:
    assert same_host(a, b) is same


def test_normalise_ip() -> None:
    assert normalise_ip("::ffff:192.0.2.7") == "192.0.2.7"
    assert normalise_ip("2001:DB8::0:1") == "2001:db8::1"
    assert normalise_ip("192.0.2.7") == "192.0.2.7"
    assert normalise_ip("garbage%%") == "garbage%%"
