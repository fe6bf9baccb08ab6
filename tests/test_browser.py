"""The chat notebook in a real browser: JupyterLab, Debian's Chromium, Playwright.

Starts JupyterLab on loopback with fresh config, data, runtime, settings and
workspace directories, opens a copy of ``notebooks/05-chat.ipynb`` (outputs
stripped), runs every cell from the menu, and does what a student does with the
first two peer panels: Register both, paste Bob's ID into Alice's panel,
Connect, send a line, and see it arrive in Bob's chat log.

Needs ``chromium`` (Debian package; ``scripts/install-system-deps.sh`` installs
it). Without it the test skips, unless ``PUNCHLAB_REQUIRE_BROWSER`` is set (CI),
in which case it fails. A screenshot goes to ``artifacts/browser/chat.png`` and
the server's and the browser's logs next to it, pass or fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, WebSocket, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "05-chat.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
SCREENSHOT = ARTIFACTS / "chat.png"

#: Bounds, in seconds, for the server and in milliseconds for Playwright.
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 15.0
PAGE_LOAD_MS = 60_000
RUN_ALL_MS = 60_000
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


def wait_until_serving(process: subprocess.Popen[bytes], url: str, token: str, log: Path) -> None:
    """Poll ``/api/status`` until it answers 200 (bounded), or fail with the server's log."""
    request = urllib.request.Request(
        f"{url}/api/status", headers={"Authorization": f"token {token}"}
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with {process.returncode} before answering:\n"
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
                f"JupyterLab did not answer {url}/api/status within {SERVER_START_TIMEOUT:.0f} s:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.1)  # polling interval, not a wait for something to happen


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (JupyterLab then shuts its kernels down), SIGKILL the group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SERVER_STOP_TIMEOUT)


@pytest.fixture
def jupyterlab() -> Iterator[Lab]:
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} is missing: this test runs that notebook", pytrace=False)
    # Removed at the end (it holds the kernel's connection key), pass or fail.
    with tempfile.TemporaryDirectory(prefix="punchlab-browser-") as tmp:
        yield from serve(Path(tmp))


def serve(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on loopback, rooted in ``tmp_path/root``, until the generator is closed."""
    root = tmp_path / "root"
    root.mkdir()
    copy_without_outputs(NOTEBOOK, root / NOTEBOOK.name)
    jupyter = tmp_path / "jupyter"
    env = {
        **os.environ,
        # User-level directories only: the venv's share/jupyter and etc/jupyter (the
        # JupyterLab app, the widgets labextension, the python3 kernel) still count.
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "IPYTHONDIR": str(jupyter / "ipython"),
        "JUPYTER_WIDGETS_ECHO": "1",  # fill_and_sync waits for these echoes
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    # Never ask about (or fetch) the Jupyter news feed: its toast would cover the panels.
    notification = jupyter / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = free_port()
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}"
    command = [
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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(process, url, token, log)
        yield Lab(url=url, token=token, root=root)
    finally:
        stop(process)


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
    if not_run:
        errors = page.locator(".jp-OutputArea-output[data-mime-type*='stderr']").all_text_contents()
        pytest.fail(
            f"code cells {not_run} (counting code cells from 1) did not run; Run All stops"
            " at the first error:\n" + "\n".join(errors)
        )


class KernelSockets:
    """The page's websockets to the kernel, to see what the kernel tells the widgets."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocket] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        if "/api/kernels/" in socket.url:
            self.sockets.append(socket)

    def current(self) -> WebSocket:
        open_sockets = [socket for socket in self.sockets if not socket.is_closed()]
        assert open_sockets, "the page has no open websocket to the kernel"
        return open_sockets[-1]


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


def chat_in_browser(page: Page, lab: Lab) -> None:
    kernel = KernelSockets(page)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}", timeout=PAGE_LOAD_MS)
    # The status bar's "Python 3 (ipykernel) | Idle" only once the kernel has answered
    # (the toolbar's execution indicator says idle while the kernel is still starting,
    # and Run All Cells clicked then silently runs nothing).
    kernel_status = page.get_by_title(f"Change kernel for {NOTEBOOK.name}")
    expect(kernel_status).to_have_text(re.compile(r"\| Idle$"), timeout=PAGE_LOAD_MS)
    run_all_cells(page)

    panels = page.locator(".punchlab-peer-panel")
    expect(panels.nth(1)).to_be_visible(timeout=ACTION_MS)
    alice, bob = panels.nth(0), panels.nth(1)

    button(alice, "Register").click()
    button(bob, "Register").click()
    bob_id_code = bob.locator("code")
    expect(bob_id_code).to_have_text(re.compile(r"\S"), timeout=ACTION_MS)
    expect(alice.locator("code")).to_have_text(re.compile(r"\S"), timeout=ACTION_MS)
    bob_id = (bob_id_code.text_content() or "").strip()

    fill_and_sync(alice.get_by_placeholder("paste the other peer's ID"), bob_id, kernel)
    button(alice, "Connect").click()
    expect(alice.get_by_text(re.compile(r"^Connected to "))).to_be_visible(timeout=ACTION_MS)

    fill_and_sync(alice.get_by_placeholder("type a line"), "hello from the browser", kernel)
    button(alice, "Send").click()
    expect(bob.locator("textarea")).to_have_value(
        re.compile(r"^peer: hello from the browser$", re.MULTILINE), timeout=ACTION_MS
    )
    expect(alice.locator("textarea")).to_have_value(
        re.compile(r"^you: hello from the browser$", re.MULTILINE), timeout=ACTION_MS
    )
    bob.scroll_into_view_if_needed()


def button(panel: Locator, label: str) -> Locator:
    # The accessible name starts with the Font Awesome icon's glyph: match the end only.
    return panel.get_by_role("button", name=re.compile(rf"\b{label}$"))


@pytest.mark.browser
def test_chat_notebook_in_chromium(chromium: str, jupyterlab: Lab) -> None:
    browser_log: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: browser_log.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: browser_log.append(f"page error: {e}"))
            page.on(
                "requestfailed",
                lambda r: browser_log.append(f"request failed: {r.url} ({r.failure})"),
            )
            try:
                chat_in_browser(page, jupyterlab)
            finally:
                try:
                    page.screenshot(path=SCREENSHOT)
                except Exception as exc:  # the browser may be what failed
                    browser_log.append(f"no screenshot: {exc}")
                (ARTIFACTS / "browser.log").write_text("\n".join(browser_log) + "\n")
        finally:
            browser.close()
