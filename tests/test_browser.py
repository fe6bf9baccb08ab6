"""The notebooks in a real browser: JupyterLab, Debian's Chromium, Playwright.

Starts a ``punchlab serve`` on loopback (ports chosen here) and JupyterLab on
loopback with fresh config, data, runtime, settings and workspace directories,
its kernels told about that server through ``PUNCHLAB_SERVER``. Each test
opens a copy of a notebook as a student gets it fresh (outputs stripped), runs
every cell from the menu, and clicks through it as a student does:

- 05's real-UDP panels: Register both, paste Bob's ID into Alice's panel,
  Connect, send a line each way (Enter one way, the Send button the other),
  with JupyterLab's default settings (widget messages go to kernel subshells)
  and again with subshells disabled;
- 07's classroom panel, chatting with a classmate who runs ``punchlab chat``;
- 05's simulated panels, until the live diagram has drawn the chat.

Screenshots of 04, 05 (the live diagram after a chat), 06 and 08 go to
``artifacts/browser/`` for a reviewer, with the servers' and browser's logs,
pass or fail. 08 runs its real NAT lab only as root (CI is root); elsewhere
the screenshot shows what the notebook says instead.

Needs ``chromium`` (Debian package; ``scripts/install-system-deps.sh`` installs
it). Without it the tests skip, unless ``PUNCHLAB_REQUIRE_BROWSER`` is set
(CI), in which case they fail.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from playwright.sync_api import Browser, Locator, Page, WebSocket, expect, sync_playwright

from punchlab import netlab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "browser"
OPENED = ["04-hole-punching", "05-nat-types", "06-chat", "07-classroom", "08-real-nats"]

#: Bounds, in seconds, for the subprocesses and in milliseconds for Playwright.
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 15.0
CHAT_LINE_TIMEOUT = 20.0
PAGE_LOAD_MS = 60_000
RUN_ALL_MS = 120_000
ACTION_MS = 20_000

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Containers often have a small /dev/shm; Chromium crashes when it fills.
    "--disable-dev-shm-usage",
    # Nothing but loopback: every host name other than 127.0.0.1 fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# -- processes ----------------------------------------------------------------------------


def find_chromium() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is not None:
        return path
    message = (
        "chromium is not installed (neither /usr/bin/chromium nor `chromium` on PATH); "
        "run scripts/install-system-deps.sh as root"
    )
    if os.environ.get("PUNCHLAB_REQUIRE_BROWSER"):
        pytest.fail(f"PUNCHLAB_REQUIRE_BROWSER is set but {message}", pytrace=False)
    pytest.skip(message)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(command: list[str], log: Path, **options: Any) -> subprocess.Popen[bytes]:
    """A subprocess in its own session (so its whole group can be killed), output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **options,
        )


def wait_until_answering(
    process: subprocess.Popen[bytes], request: urllib.request.Request, log: Path
) -> None:
    """Poll ``request`` until it answers 200 (bounded), or fail with the process's log."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"{process.args!r} exited with {process.returncode} before answering:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"{request.full_url} did not answer within {SERVER_START_TIMEOUT:.0f} s:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.1)  # polling interval, not a wait for something to happen


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM (JupyterLab then shuts its kernels down), SIGKILL the group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SERVER_STOP_TIMEOUT)


@pytest.fixture(scope="module")
def rendezvous() -> Iterator[str]:
    """``punchlab serve`` on loopback, on free ports; its URL."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    http_port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    url = f"http://127.0.0.1:{http_port}"
    log = ARTIFACTS / "serve.log"
    command = [sys.executable, "-m", "punchlab", "serve", "--host", "127.0.0.1"]
    command += ["--http-port", str(http_port), "--udp-port", str(udp_port)]
    process = start(command, log, cwd=ROOT)
    try:
        wait_until_answering(process, urllib.request.Request(f"{url}/get-udp-port"), log)
        yield url
    finally:
        stop(process)


# -- JupyterLab ---------------------------------------------------------------------------


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy a notebook as a student opens it fresh: no outputs, counts or widget state."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook.get("metadata", {}).pop("widgets", None)
    target.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    subshells: bool


def write_settings(settings: Path, *, subshells: bool) -> None:
    """User settings a fresh JupyterLab starts with: no news toast; subshells on or off."""
    plugins: dict[str, dict[str, object]] = {
        # Never ask about (or fetch) the Jupyter news feed: its toast would cover the panels.
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    if not subshells:  # what a user sets in Settings > Kernel Comms over subshells
        plugins["apputils-extension/kernels-settings"] = {"commsOverSubshells": "disabled"}
    for plugin, values in plugins.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def lab_command(port: int, token: str, root: Path, jupyter: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",  # CI runs as root; harmless otherwise
        "--ServerApp.terminals_enabled=False",
        f"--LabApp.workspaces_dir={jupyter / 'workspaces'}",
        f"--LabApp.user_settings_dir={jupyter / 'settings'}",
        # No news feed, no update check, no PyPI extension manager: nothing to fetch.
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]


def serve_lab(tmp: Path, server_url: str, *, subshells: bool) -> Iterator[Lab]:
    """JupyterLab on loopback, rooted in ``tmp/root``, until the generator is closed."""
    root = tmp / "root"
    root.mkdir()
    for name in OPENED:
        copy_without_outputs(NOTEBOOKS / f"{name}.ipynb", root / f"{name}.ipynb")
    jupyter = tmp / "jupyter"
    write_settings(jupyter / "settings", subshells=subshells)
    env = {
        **os.environ,
        # User-level directories only: the venv's share/jupyter and etc/jupyter (the
        # JupyterLab app, the widgets labextension, the python3 kernel) still count.
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "IPYTHONDIR": str(jupyter / "ipython"),
        "JUPYTER_WIDGETS_ECHO": "1",  # fill_and_sync waits for these echoes
        "PUNCHLAB_SERVER": server_url,  # the notebooks' real peers use `punchlab serve`
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    port, token = free_port(), secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}"
    log = ARTIFACTS / f"jupyterlab-{'subshells' if subshells else 'no-subshells'}.log"
    process = start(lab_command(port, token, root, jupyter), log, cwd=root, env=env)
    try:
        status = urllib.request.Request(
            f"{url}/api/status", headers={"Authorization": f"token {token}"}
        )
        wait_until_answering(process, status, log)
        yield Lab(url=url, token=token, root=root, subshells=subshells)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def lab(rendezvous: str) -> Iterator[Lab]:
    """JupyterLab with its default settings: widget comms over kernel subshells."""
    # Removed at the end (it holds the kernel's connection key), pass or fail.
    with tempfile.TemporaryDirectory(prefix="punchlab-browser-") as tmp:
        yield from serve_lab(Path(tmp), rendezvous, subshells=True)


@pytest.fixture
def lab_without_subshells(rendezvous: str) -> Iterator[Lab]:
    with tempfile.TemporaryDirectory(prefix="punchlab-browser-") as tmp:
        yield from serve_lab(Path(tmp), rendezvous, subshells=False)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            record_versions(launched)
            yield launched
        finally:
            launched.close()


#: What the notebooks' widgets depend on: tested here, lower bounds in pyproject, Binder's pins.
PINNED = ("jupyterlab", "ipykernel", "ipywidgets")


def record_versions(browser: Browser) -> None:
    """Which versions these clicks went through, next to the screenshots."""
    from importlib.metadata import version

    names = [*PINNED, "jupyterlab_widgets", "playwright"]
    lines = [f"{name} {version(name)}" for name in names] + [f"chromium {browser.version}"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "versions.txt").write_text("\n".join(lines) + "\n")


def test_binder_runs_the_versions_the_browser_tests_pin() -> None:
    """pyproject.toml's lower bounds for what the widgets depend on are Binder's exact pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    lower = {
        requirement.name: Version(spec.version)
        for requirement in map(Requirement, listed)
        for spec in requirement.specifier
        if requirement.name in PINNED and spec.operator == ">="
    }
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    pinned = {
        requirement.name: Version(spec.version)
        for requirement in (Requirement(line) for line in lines if "==" in line)
        for spec in requirement.specifier
    }
    assert sorted(lower) == sorted(PINNED)
    assert pinned == lower


# -- the page -----------------------------------------------------------------------------


class KernelSockets:
    """The page's websockets to the kernel: what the kernel tells the widgets, and how."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocket] = []
        self.sent: list[bytes] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        if "/api/kernels/" in socket.url:
            self.sockets.append(socket)
            socket.on("framesent", self._sent)

    def _sent(self, frame: str | bytes) -> None:
        self.sent.append(frame.encode() if isinstance(frame, str) else frame)

    def current(self) -> WebSocket:
        open_sockets = [socket for socket in self.sockets if not socket.is_closed()]
        assert open_sockets, "the page has no open websocket to the kernel"
        return open_sockets[-1]

    def comm_messages_to_subshells(self) -> tuple[int, int]:
        """How many clicks and typed values the page sent, and how many named a subshell."""
        comms = [
            frame
            for frame in self.sent
            if b'"msg_type":"comm_msg"' in frame
            and (b'"method":"custom"' in frame or b'"method":"update"' in frame)
        ]
        return len(comms), sum(1 for frame in comms if b'"subshell_id":"' in frame)


@contextmanager
def student_page(browser: Browser, shot: str) -> Iterator[tuple[Page, KernelSockets]]:
    """A fresh page; its screenshot (``shot``.png) and console go to the artifacts, pass or fail."""
    log: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    kernel = KernelSockets(page)
    page.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: log.append(f"request failed: {r.url} ({r.failure})"))
    try:
        yield page, kernel
    finally:
        try:
            page.screenshot(path=ARTIFACTS / f"{shot}.png")
        except Exception as exc:  # the browser may be what failed
            log.append(f"no screenshot: {exc}")
        (ARTIFACTS / f"{shot}.browser.log").write_text("\n".join(log) + "\n")
        page.close()


def open_and_run_all(page: Page, lab: Lab, name: str) -> None:
    """Open the notebook, wait for its kernel, Run All Cells, wait until every cell ran."""
    # A workspace of its own: the default one would reopen the notebooks of earlier pages.
    workspace = f"{name}-{secrets.token_hex(4)}"
    page.goto(
        f"{lab.url}/lab/workspaces/{workspace}/tree/{name}.ipynb?token={lab.token}",
        timeout=PAGE_LOAD_MS,
    )
    # The status bar's "Python 3 (ipykernel) | Idle" only once the kernel has answered
    # (the toolbar's execution indicator says idle while the kernel is still starting,
    # and Run All Cells clicked then silently runs nothing).
    kernel_status = page.get_by_title(f"Change kernel for {name}.ipynb")
    expect(kernel_status).to_have_text(re.compile(r"\| Idle$"), timeout=PAGE_LOAD_MS)
    run_all_cells(page)


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, then wait until every code cell has run (or one failed)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # Outputs were stripped, so a number in a prompt means that cell ran in this session.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .map((p) => p.textContent);
            const ran = prompts.some((p) => /\\[\\d+\\]/.test(p));
            return ran && !prompts.some((p) => p.includes('*'));
        }""",
        timeout=RUN_ALL_MS,
    )
    # Text content, not inner text: JupyterLab's default windowing mode skips rendering
    # cells out of view (content-visibility), and their inner text is empty.
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
    not_run = [n for n, prompt in enumerate(prompts, 1) if not re.search(r"\[\d+\]", prompt)]
    errors = page.locator(".jp-OutputArea-output[data-mime-type*='stderr']").all_text_contents()
    tracebacks = [e for e in errors if "Traceback" in e or "Error" in e]
    if not_run or tracebacks:
        pytest.fail(
            f"code cells {not_run} (counting code cells from 1) did not run, or one raised;"
            " Run All stops at the first error:\n" + "\n".join(errors)
        )


def fill_and_sync(field: Locator, text: str, kernel: KernelSockets) -> None:
    """Type ``text`` into a widget's field and wait until the kernel has applied it.

    The field's new value goes to the kernel as a widget ``update``, a button's click as
    a ``custom`` message. The kernel (ipykernel 7) may dispatch a comm message while the
    one before it is still being handled, so a click sent right after typing can reach the
    button's callback before the new value reaches the widget: the callback then reads the
    old value. A person is never that fast; the test waits for the kernel's ``echo_update``
    of the value (ipywidgets 8 echoes every update it applies) before clicking.
    """
    value = json.dumps(text).encode()

    def is_echo(frame: str | bytes) -> bool:
        data = frame.encode() if isinstance(frame, str) else frame
        return b'"echo_update"' in data and value in data

    with kernel.current().expect_event("framereceived", predicate=is_echo, timeout=ACTION_MS):
        field.fill(text)


def button(panel: Locator, label: str) -> Locator:
    # The accessible name starts with the Font Awesome icon's glyph: match the end only.
    return panel.get_by_role("button", name=re.compile(rf"\b{label}$"))


def peer_panel(page: Page, title: str) -> Locator:
    """The peer panel whose bold title is exactly ``title``."""
    heading = page.locator("b", has_text=re.compile(rf"^{re.escape(title)}$"))
    return page.locator(".punchlab-peer-panel").filter(has=heading)


def register(panel: Locator) -> str:
    """Press Register and return the ID the panel then shows."""
    button(panel, "Register").click()
    shown = panel.locator("code")
    expect(shown).to_have_text(re.compile(r"\S"), timeout=ACTION_MS)
    return (shown.text_content() or "").strip()


def expect_chat_line(panel: Locator, line: str) -> None:
    """Wait (bounded) until ``line`` is a whole line of the panel's chat log."""
    expect(panel.locator("textarea")).to_have_value(
        re.compile(rf"^{re.escape(line)}$", re.MULTILINE), timeout=ACTION_MS
    )


def scroll_to_middle(locator: Locator) -> None:
    """Bring an element to the middle of the notebook's view (for a screenshot)."""
    locator.scroll_into_view_if_needed(timeout=ACTION_MS)
    locator.evaluate("(e) => e.scrollIntoView({block: 'center'})")


# -- 05: real UDP, with and without subshells ---------------------------------------------------


def real_udp_chat(page: Page, kernel: KernelSockets, lab: Lab) -> None:
    """05's real-UDP panels: register both, paste Bob's ID, Connect, a line each way."""
    open_and_run_all(page, lab, "06-chat")
    # PUNCHLAB_SERVER is set: the notebook started no server of its own.
    expect(page.locator(".punchlab-server-panel")).to_have_count(0)
    alice, bob = peer_panel(page, "Alice (real)"), peer_panel(page, "Bob (real)")
    alice.scroll_into_view_if_needed(timeout=ACTION_MS)
    register(alice)
    bob_id = register(bob)

    fill_and_sync(alice.get_by_placeholder("paste the other peer's ID"), bob_id, kernel)
    button(alice, "Connect").click()
    connected = re.compile(r"^Connected to 127\.0\.0\.1:\d+ in [\d.]+ ms, route: direct\.$")
    expect(alice.get_by_text(connected)).to_be_visible(timeout=ACTION_MS)
    expect(bob.get_by_text(connected)).to_be_visible(timeout=ACTION_MS)

    alice.get_by_placeholder("type a line").fill("hello Bob, with Enter")
    alice.get_by_placeholder("type a line").press("Enter")
    expect_chat_line(bob, "peer: hello Bob, with Enter")
    expect_chat_line(alice, "you: hello Bob, with Enter  [delivered]")  # Bob acknowledged it

    bob.get_by_placeholder("type a line").fill("hello Alice, with Send")
    button(bob, "Send").click()
    expect_chat_line(alice, "peer: hello Alice, with Send")
    expect_chat_line(bob, "you: hello Alice, with Send  [delivered]")
    bob.scroll_into_view_if_needed()


def check_comms_went(kernel: KernelSockets, *, to_subshells: bool) -> None:
    """The setting under test really was in force: comm messages named a subshell or not."""
    comms, on_subshells = kernel.comm_messages_to_subshells()
    assert comms > 0, "the page sent no click or value: the widgets were not driven"
    if to_subshells:
        assert on_subshells == comms, f"{on_subshells} of {comms} widget messages went to subshells"
    else:
        assert on_subshells == 0, f"{on_subshells} of {comms} widget messages went to subshells"


@pytest.mark.browser
def test_real_udp_chat_with_default_settings(browser: Browser, lab: Lab) -> None:
    """JupyterLab 4.6's default sends widget messages to subshells: Connect must still work."""
    with student_page(browser, "05-real-udp-subshells") as (page, kernel):
        real_udp_chat(page, kernel, lab)
        check_comms_went(kernel, to_subshells=True)


@pytest.mark.browser
def test_real_udp_chat_with_subshells_disabled(
    browser: Browser, lab_without_subshells: Lab
) -> None:
    with student_page(browser, "05-real-udp-no-subshells") as (page, kernel):
        real_udp_chat(page, kernel, lab_without_subshells)
        check_comms_went(kernel, to_subshells=False)


# -- 07: the classroom panel and a classmate in a terminal ---------------------------------------


class Terminal:
    """A ``punchlab chat`` process: lines typed into it, lines it printed (bounded waits)."""

    def __init__(self, process: subprocess.Popen[str], transcript: IO[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._transcript = transcript
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._transcript.write(line)
            self._transcript.flush()
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str) -> re.Match[str]:
        """The first printed line (from now on) matching ``pattern``, within the bound."""
        deadline = time.monotonic() + CHAT_LINE_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        printed = "\n".join(self.seen)
        pytest.fail(f"`punchlab chat` never printed {pattern!r}; it printed:\n{printed}")

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


@contextmanager
def classmate(server_url: str) -> Iterator[Terminal]:
    """A classmate who runs ``punchlab chat --server URL`` in a terminal."""
    command = [sys.executable, "-u", "-m", "punchlab", "chat", "--server", server_url]
    command += ["--name", "classmate"]
    with (ARTIFACTS / "07-classmate.log").open("w", encoding="utf-8") as transcript:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            start_new_session=True,
            cwd=ROOT,
        )
        terminal = Terminal(process, transcript)
        try:
            yield terminal
        finally:
            if process.stdin is not None:
                process.stdin.close()  # end of input: the chat says goodbye and exits
            stop(process)
            terminal.reader.join(timeout=SERVER_STOP_TIMEOUT)  # before its transcript closes


@pytest.mark.browser
def test_classroom_panel_chats_with_a_classmate_in_a_terminal(
    browser: Browser, lab: Lab, rendezvous: str
) -> None:
    with student_page(browser, "07-classroom") as (page, kernel), classmate(rendezvous) as mate:
        open_and_run_all(page, lab, "07-classroom")
        me = peer_panel(page, "me")
        me.scroll_into_view_if_needed(timeout=ACTION_MS)
        register(me)
        mate_id = mate.expect(r"Your ID: (\S+)").group(1)

        fill_and_sync(me.get_by_placeholder("paste the other peer's ID"), mate_id, kernel)
        button(me, "Connect").click()
        expect(me.get_by_text(re.compile(r"^Connected to 127\.0\.0\.1:"))).to_be_visible(
            timeout=ACTION_MS
        )
        mate.expect(r"Connected")

        me.get_by_placeholder("type a line").fill("hello from the notebook")
        me.get_by_placeholder("type a line").press("Enter")
        mate.expect(r"hello from the notebook")
        mate.type("hello from the terminal")
        expect_chat_line(me, "peer: hello from the terminal")


# -- what students see: the figures --------------------------------------------------------------


@pytest.mark.browser
def test_the_live_diagram_draws_a_simulated_chat(browser: Browser, lab: Lab) -> None:
    """05's simulated panels: a chat, then the live diagram under them (screenshot)."""
    with student_page(browser, "06-chat-live-diagram") as (page, kernel):
        open_and_run_all(page, lab, "06-chat")
        alice, bob = peer_panel(page, "Alice"), peer_panel(page, "Bob")
        diagram = page.locator(".jp-CodeCell", has_text="LiveDiagram(").locator("img")
        register(alice)
        bob_id = register(bob)
        expect(diagram).to_be_visible(timeout=ACTION_MS)  # drawn once there was something
        registered = diagram.get_attribute("src") or ""

        fill_and_sync(alice.get_by_placeholder("paste the other peer's ID"), bob_id, kernel)
        button(alice, "Connect").click()
        expect(alice.get_by_text(re.compile(r"^Connected to "))).to_be_visible(timeout=ACTION_MS)
        # Each redraw replaces the image: wait for the punch's, then for the chat's.
        expect(diagram).not_to_have_attribute("src", registered, timeout=ACTION_MS)
        connected = diagram.get_attribute("src") or ""
        alice.get_by_placeholder("type a line").fill("hello from the browser")
        alice.get_by_placeholder("type a line").press("Enter")
        expect_chat_line(bob, "peer: hello from the browser")
        expect(diagram).not_to_have_attribute("src", connected, timeout=ACTION_MS)
        scroll_to_middle(diagram)
        painted(page, diagram)


def painted(page: Page, image: Locator) -> None:
    """Wait until ``image`` is decoded and two frames have been drawn since (for a screenshot)."""
    image.evaluate("(img) => img.decode()")
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


#: The notebooks whose first figure the screenshots show (the first code cell
#: with an image among its outputs, so a rewritten cell needs no change here).
FIGURES = ["04-hole-punching", "05-nat-types", "08-real-nats"]


@pytest.mark.browser
@pytest.mark.parametrize("name", FIGURES)
def test_the_figures_students_see(browser: Browser, lab: Lab, name: str) -> None:
    with student_page(browser, name) as (page, _):
        open_and_run_all(page, lab, name)
        if name == "08-real-nats" and not netlab.available():
            # Without root (ip, nft) the lab cannot run: its first cell says why, and no more.
            why = page.locator(".jp-CodeCell").first.locator(".jp-OutputArea-output")
            expect(why).to_contain_text(re.compile(r"\S"), timeout=ACTION_MS)
            scroll_to_middle(why)
            return
        image = page.locator(".jp-OutputArea-output img")
        cell = page.locator(".jp-CodeCell").filter(has=image).first
        cell.scroll_into_view_if_needed(timeout=ACTION_MS)
        figures = cell.locator(".jp-OutputArea-output img")
        expect(figures.first).to_be_visible(timeout=ACTION_MS)
        scroll_to_middle(figures.first)
        painted(page, figures.first)
