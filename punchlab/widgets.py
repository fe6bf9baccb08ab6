"""ipywidgets panels for the notebooks: a peer, the teacher's server, a live diagram.

A peer's sockets, timers and HTTP session belong to the event loop they were
made on: the kernel's main loop, where a notebook cell makes the panel. Widget
callbacks may run elsewhere: JupyterLab 4.6 sends widget messages to kernel
*subshells* by default, and a subshell runs the callback on its own thread
with its own loop. So a callback does no work itself: it hands a coroutine to
the panel's loop (captured when the panel is made), whatever thread it runs
on. What that coroutine has to say goes into widget state (a status line, the
chat log), never to ``print``; an error it did not expect is shown too, in
red, with its type. The panels work the same with a real
:class:`punchlab.aio.Peer` and with a simulated
:class:`punchlab.sim.session.AsyncSimPeer`.

Text from the network (chat lines, identifiers, error messages) is shown
through :func:`punchlab.display.printable`, so a control character or bidi
override shows as its escape, and through :func:`html.escape` wherever a
widget renders HTML (``HTML`` widgets); a ``Textarea`` shows its value as text.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import io
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import ipywidgets as w

from punchlab.display import printable
from punchlab.errors import (
    ConnectFailed,
    LocalProtocolError,
    PunchlabError,
    ServerUnreachable,
    UnknownPeer,
)
from punchlab.messages import Address, format_address
from punchlab.narrate import line_state, tell
from punchlab.peer import (
    Connected,
    Disconnected,
    Failed,
    Introduced,
    NatDiscovered,
    PeerAddressChanged,
    PeerState,
    Registered,
    RouteChanged,
    StateChanged,
    TextDelivered,
    TextFailed,
    TextReceived,
    TextSent,
    Trigger,
)
from punchlab.peer_table import accepts_introduction
from punchlab.server import (
    DatagramIgnored,
    PeerIntroduced,
    PeerRegistered,
    PeerRelayed,
    RegistrationExpired,
)
from punchlab.trace import EventKind, Trace

__all__ = ["LiveDiagram", "PeerPanel", "ServerPanel", "connect_panels", "side_by_side"]

log = logging.getLogger(__name__)

#: How long ``connect`` waits for the punch, in (real or virtual) seconds.
CONNECT_TIMEOUT = 12.0


#: What the teacher's panel keeps and how often it redraws (a flood must not stall it).
SERVER_LOG_LINES = 200
SERVER_TABLE_ROWS = 100
SERVER_REDRAW = 0.5

#: How much of an identifier or a status line is shown (a server chooses identifiers).
ID_SHOWN = 100
STATUS_SHOWN = 500

#: The status line's colours: ordinary news, and what went wrong.
INFO_COLOUR = "#333333"
ERROR_COLOUR = "#b00020"


def _html(text: str, limit: int | None = None) -> str:
    """``text`` for an HTML widget: control characters escaped, then markup escaped."""
    return html.escape(printable(text, limit))


def punch_failed_text(reason: str, address: Address | None) -> str:
    """What a failed punch means and what to try: both sides see it, not just the initiator."""
    to = f" to {format_address(address)}" if address is not None else ""
    return (
        f"The punch failed: {reason}. The HELLOs{to}, or their answers, were dropped by a NAT "
        "on the way. Try: Connect again; if it fails again, one side is probably behind a "
        "symmetric NAT, which a punch alone gets through only from a public address or a full "
        "or restricted cone (notebook 5). Port prediction, birthday probing and the relay "
        "(notebook 10) need punchlab on both sides and a punchlab server; or try from another "
        "network, such as a phone's hotspot."
    )


#: Lines a peer panel's chat log keeps (the oldest go first).
CHAT_LOG_LINES = 500


@dataclass(eq=False)
class _Entry:
    """One line of a peer panel's chat log, and for our own lines their state."""

    text: str
    state: str = ""

    def __str__(self) -> str:
        return f"{self.text}  [{self.state}]" if self.state else self.text


class PanelPeer(Protocol):
    """What a panel needs of a peer: :class:`punchlab.aio.Peer` and ``AsyncSimPeer`` both fit."""

    name: str

    @property
    def state(self) -> PeerState: ...
    @property
    def id(self) -> str | None: ...
    @property
    def trace(self) -> Trace: ...
    @property
    def server_url(self) -> str: ...
    def add_listener(self, callback: Callable[[Any], None]) -> None: ...
    async def register(self, timeout: float | None = None) -> str: ...
    async def connect(self, peer_id: str, timeout: float | None = None) -> None: ...
    async def send_text(self, text: str) -> Any: ...


_STATE_TEXT = {
    PeerState.IDLE: "Not registered yet: press Register.",
    PeerState.REGISTERING: "Registering with the server…",
    PeerState.REGISTERED: "Registered. Paste another peer's ID and press Connect, or wait.",
    PeerState.PUNCHING: "Punching: sending HELLO, waiting for SUCCESS…",
    PeerState.PREDICTING: "Direct failed: aiming HELLOs at the ports the NAT should open next…",
    PeerState.PROBING: "Direct failed: birthday probing (many ports, paced)…",
    PeerState.RELAYING: "No hole: talking through the server's relay…",
    PeerState.CONNECTED: "Connected.",
    PeerState.DISCONNECTED: "The peer went silent: disconnected.",
    PeerState.FAILED: "Failed.",
    PeerState.CLOSED: "Closed.",
}


class _Displayed:
    """Shows its ``widget`` when it is the value of a notebook cell."""

    widget: w.Widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]


def _running_loop() -> asyncio.AbstractEventLoop:
    """The loop a panel is made on: it owns the peer's sockets, so all work goes there."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "make a panel where its peer's event loop runs (a notebook cell, or a coroutine), "
            "or pass loop="
        ) from None


Work = Callable[[], Coroutine[Any, Any, None]]


class _Tasks:
    """Work that callbacks hand to the owner loop, kept referenced until done.

    ``start`` may be called on any thread (a kernel subshell's included): the
    coroutine always runs on ``loop``. An exception it raises goes to
    ``on_error`` (the panel shows it) instead of vanishing with the task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_error: Callable[[Exception], None]):
        self.loop = loop
        self._on_error = on_error
        self._lock = threading.Lock()
        self._running: set[concurrent.futures.Future[None]] = set()

    def start(self, work: Work) -> None:
        """Run ``work()`` on the owner loop, from whichever thread this is called."""
        coroutine = self._guarded(work)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError as exc:  # the owner loop is closed: say so, do not hide it
            coroutine.close()
            self._on_error(exc)
            return
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._running.discard(future)

    async def _guarded(self, work: Work) -> None:
        try:
            await work()
        except Exception as exc:
            log.info("a panel's task failed", exc_info=True)
            self._on_error(exc)

    async def wait(self) -> None:
        """Until every piece of work handed over so far has finished (tests use this)."""
        while True:
            with self._lock:
                pending = [future for future in self._running if not future.done()]
            if not pending:
                return
            await asyncio.wait([asyncio.wrap_future(future) for future in pending])


class PeerPanel(_Displayed):
    """Register, show your ID, type a peer's ID, connect, chat.

    ``panel.widget`` is what a notebook displays (the panel displays itself
    too). The buttons, and Enter in the message box, only hand work to the
    panel's loop; ``await panel.idle()`` waits for it. Make the panel on the
    loop that runs its peer (a notebook cell does), or pass ``loop``.
    """

    def __init__(
        self,
        peer: PanelPeer,
        *,
        title: str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.peer = peer
        self.loop = loop if loop is not None else _running_loop()
        self.tasks = _Tasks(self.loop, self._failed)
        self._last_trigger: Trigger | None = None
        self._introduced_to: Address | None = None
        #: The chat log's lines (the newest CHAT_LOG_LINES), and our own lines not yet
        #: delivered or failed, by their number (their state is shown beside them).
        self._entries: deque[_Entry] = deque(maxlen=CHAT_LOG_LINES)
        self._pending: dict[int, _Entry] = {}
        self.title = w.HTML(f"<b>{_html(title or peer.name)}</b>")
        self.register_button = w.Button(
            description="Register", button_style="primary", icon="id-card"
        )
        self.my_id = w.HTML(self._id_html(None))
        self.peer_id = w.Text(placeholder="paste the other peer's ID", description="Peer ID")
        self.connect_button = w.Button(description="Connect", icon="plug", disabled=True)
        self.status = w.HTML(self._status_html(_STATE_TEXT[PeerState.IDLE]))
        self.progress = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(visibility="hidden"))
        self.log = w.Textarea(
            placeholder="chat lines appear here",
            disabled=True,
            layout=w.Layout(width="100%", height="9em"),
        )
        # continuous_update=False: the value reaches the kernel when the line is
        # submitted (Enter, or leaving the box), which is when it is sent.
        self.message = w.Text(
            placeholder="type a line, press Enter",
            description="Message",
            disabled=True,
            continuous_update=False,
        )
        self.send_button = w.Button(description="Send", icon="paper-plane", disabled=True)
        self._wire()
        self.widget = self._layout()
        peer.add_listener(self._on_event)

    def _wire(self) -> None:
        """Every callback only hands work over: it may run on a subshell's thread."""
        self.register_button.on_click(lambda _: self.tasks.start(self.register))
        self.connect_button.on_click(lambda _: self.tasks.start(self._connect_typed))
        self.send_button.on_click(lambda _: self.tasks.start(self.send_typed))
        self.message.observe(self._on_message_submitted, "value")

    def _layout(self) -> w.VBox:
        box = w.VBox(
            [
                self.title,
                w.HBox([self.register_button, self.my_id]),
                w.HBox([self.peer_id, self.connect_button]),
                self.status,
                self.progress,
                self.log,
                w.HBox([self.message, self.send_button]),
            ],
            layout=w.Layout(border="1px solid #d0d7de", padding="6px", width="100%"),
        )
        box.add_class("punchlab-peer-panel")
        return box

    # -- actions (each is what a button schedules) ------------------------------------------

    async def register(self) -> None:
        self.register_button.disabled = True
        try:
            await self.peer.register()
        except ServerUnreachable as exc:
            self._error(f"Server unreachable: {exc}")
            self.register_button.disabled = False
        except (PunchlabError, OSError) as exc:
            self._error(f"Registration failed: {exc}")
            self.register_button.disabled = False

    async def connect(self, peer_id: str) -> None:
        peer_id = peer_id.strip()
        if not peer_id:
            self._error("Type the other peer's ID first.")
            return
        if peer_id == self.peer.id:
            self._error("That is your own ID: paste the other peer's.")
            return
        self.connect_button.disabled = True
        ticker = asyncio.ensure_future(self._show_progress())
        try:
            await self.peer.connect(peer_id, timeout=CONNECT_TIMEOUT)
        except UnknownPeer:
            self._error(f"No peer has the ID {peer_id!r}: the server answered 404. Check it.")
        except ServerUnreachable as exc:
            self._error(f"Server unreachable: {exc}")
        except ConnectFailed as exc:
            if not self._punch_failed():  # a failed punch has said why and what to try
                self._error(f"Could not connect: {exc}")
        except (PunchlabError, OSError) as exc:
            self._error(f"Could not connect: {exc}")
        finally:
            ticker.cancel()
            self.progress.layout.visibility = "hidden"
            self.connect_button.disabled = self.peer.state is PeerState.CONNECTED

    async def _connect_typed(self) -> None:
        """Connect to the ID in the box as it is when the work runs (after the click)."""
        await self.connect(self.peer_id.value)

    async def send(self, text: str) -> None:
        """Send ``text`` as one chat line and show it in the log."""
        if not text:
            return
        try:
            await self.peer.send_text(text)
        except LocalProtocolError as exc:
            self._error(f"Cannot send: {exc}")
        # The line is shown from the peer's TextSent, with its state beside it.

    async def send_typed(self) -> None:
        """Send the line in the message box, once: Enter and the Send button both end here.

        The box is emptied before sending, so a click that follows an Enter (or
        the blur that precedes a click) finds nothing left to send twice.
        """
        text = self.message.value
        if not text:
            return
        self.message.value = ""
        await self.send(text)

    def _on_message_submitted(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.tasks.start(self.send_typed)

    async def idle(self) -> None:
        """Wait until everything the buttons scheduled has finished."""
        await self.tasks.wait()

    # -- what the peer tells us -----------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, StateChanged):
            self._last_trigger = event.trigger
            self._info(_STATE_TEXT[event.new])
            self._enable_for(event.new)
        elif isinstance(event, Registered):
            self.my_id.value = self._id_html(event.peer_id)
        elif isinstance(event, Introduced):
            self._introduced_to = event.peer_address
            if (text := tell(event)) is not None:
                self._info(text)
        elif isinstance(event, PeerAddressChanged):
            self._introduced_to = event.new
            self._append(f"({tell(event)})")
        elif isinstance(event, NatDiscovered):
            self._append(f"({tell(event)})")
        elif isinstance(event, Connected | RouteChanged):
            self._info(tell(event) or "")
        elif isinstance(event, TextReceived):
            self._append(f"peer: {event.text}")
        elif isinstance(event, TextSent | TextDelivered | TextFailed):
            self._line_state(event)
        elif isinstance(event, Failed) and self._punch_failed():
            self._error(punch_failed_text(event.reason, self._introduced_to))
        elif isinstance(event, Failed | Disconnected):
            self._error(event.reason)

    def _punch_failed(self) -> bool:
        return self.peer.state is PeerState.FAILED and self._last_trigger is Trigger.PUNCH_TIMEOUT

    def _enable_for(self, state: PeerState) -> None:
        """Enable what makes sense in ``state``: connect when registered, chat when connected."""
        registered = accepts_introduction(state)
        self.connect_button.disabled = not (registered and self.peer.id)
        connected = state is PeerState.CONNECTED
        self.message.disabled = self.send_button.disabled = not connected

    def _failed(self, exc: Exception) -> None:
        """A task's unexpected error: shown with its type, the controls usable again."""
        self._error(f"{type(exc).__name__}: {exc}")
        self.progress.layout.visibility = "hidden"
        state = self.peer.state
        self.register_button.disabled = state is not PeerState.IDLE
        self._enable_for(state)

    async def _show_progress(self) -> None:
        """Fill the bar while punching: HELLOs sent so far against the usual handful."""
        self.progress.layout.visibility = "visible"
        try:
            while True:
                hellos = sum(
                    1
                    for e in self.peer.trace.events[-400:]
                    if e.kind is EventKind.SENT
                    and e.actor == self.peer.name
                    and e.msg_type == "HELLO"
                )
                self.progress.value = min(1.0, hellos / 10)
                self.progress.description = f"HELLO x{hellos}"
                await asyncio.sleep(0.1)
        except Exception as exc:  # the bar's own failure is shown too, never lost
            log.info("the progress bar failed", exc_info=True)
            self._error(f"{type(exc).__name__}: {exc}")

    # -- display helpers ------------------------------------------------------------------

    @staticmethod
    def _id_html(peer_id: str | None) -> str:
        if peer_id is None:
            return "<i>no ID yet</i>"
        # user-select: all makes one click select the whole ID for copying.
        return f"Your ID: <code style='user-select: all'>{_html(peer_id, ID_SHOWN)}</code>"

    @staticmethod
    def _status_html(text: str, colour: str = INFO_COLOUR) -> str:
        return f"<span style='color: {colour}'>{_html(text, STATUS_SHOWN)}</span>"

    def _info(self, text: str) -> None:
        self.status.value = self._status_html(text)

    def _error(self, text: str) -> None:
        self.status.value = self._status_html(text, ERROR_COLOUR)

    def _append(self, line: str) -> _Entry:
        """One line of the chat log: a Textarea shows text, so only control characters matter."""
        entry = _Entry(printable(line))
        self._entries.append(entry)
        self._render()
        return entry

    def _line_state(self, event: TextSent | TextDelivered | TextFailed) -> None:
        """Our line, shown when sent, its state updated when delivered or failed."""
        if isinstance(event, TextSent):
            entry = self._append(f"you: {event.text}")
            entry.state = line_state(event)
            if event.acknowledged:
                self._pending[event.line] = entry
        elif event.line in self._pending:
            self._pending.pop(event.line).state = line_state(event)
        self._render()

    def _render(self) -> None:
        self.log.value = "".join(f"{entry}\n" for entry in self._entries)

    @property
    def status_text(self) -> str:
        """The status line without markup (tests and notebooks read it)."""
        value = str(self.status.value)
        return html.unescape(value[value.index(">") + 1 : value.rindex("<")])

    @property
    def status_is_error(self) -> bool:
        """Whether the status line is shown in red (something went wrong)."""
        return ERROR_COLOUR in str(self.status.value)


class ServerPanel(_Displayed):
    """The teacher's view: who registered, who was introduced to whom, what was refused.

    A public server may be flooded: the panel keeps its last
    :data:`SERVER_LOG_LINES` lines, counts refused datagrams by reason (one
    line for the first of each reason), shows at most :data:`SERVER_TABLE_ROWS`
    registrations, and redraws at most every :data:`SERVER_REDRAW` seconds.
    """

    def __init__(self, server: Any, *, title: str = "Rendezvous server") -> None:
        self.server = server
        self.title = w.HTML(f"<b>{_html(title)}</b>")
        self.counts = w.HTML()
        self.table = w.HTML()
        self.log = w.Textarea(disabled=True, layout=w.Layout(width="100%", height="8em"))
        self.widget = w.VBox(
            [self.title, self.counts, self.table, self.log],
            layout=w.Layout(border="1px solid #d0d7de", padding="6px"),
        )
        self.widget.add_class("punchlab-server-panel")
        self.registered = 0
        self.repeated = 0
        self.introduced = 0
        self.relayed_pairs: set[tuple[str, str]] = set()
        self.refused: Counter[str] = Counter()
        self.redraws = 0
        self._lines: deque[str] = deque(maxlen=SERVER_LOG_LINES)
        self._redraw_due: asyncio.TimerHandle | None = None
        self._last_redraw = float("-inf")
        server.add_listener(self._on_event)
        self._redraw()

    def _on_event(self, event: object) -> None:
        if isinstance(event, PeerRegistered):
            if event.repeated:
                self.repeated += 1  # a retry whose answer was lost: the same peer
            else:
                self.registered += 1
                self._append(
                    f"registered {event.peer_id[:8]}… from {format_address(event.address)}"
                )
        elif isinstance(event, PeerIntroduced):
            self.introduced += 1
            intro = event.introduction
            self._append(
                f"introduced {intro.initiator_id[:8]}… ({format_address(intro.initiator_address)})"
                f" to {intro.peer_id[:8]}… ({format_address(intro.peer_address)})"
            )
        elif isinstance(event, PeerRelayed):
            pair = (event.from_id, event.to_id)
            known = pair in self.relayed_pairs or len(self.relayed_pairs) >= SERVER_LOG_LINES
            if not known:  # once per direction (and a bounded set); the count says the rest
                self.relayed_pairs.add(pair)
                self._append(f"relaying from {event.from_id[:8]}… to {event.to_id[:8]}…")
        elif isinstance(event, RegistrationExpired):
            self._append(f"{event.peer_id[:8]}… went silent: registration expired")
        elif isinstance(event, DatagramIgnored):
            self.refused[event.reason] += 1
            if self.refused[event.reason] == 1:
                self._append(
                    f"refused a datagram from {format_address(event.address)}: {event.reason}"
                    " (more like it are counted above)"
                )
        self._schedule_redraw()

    def _append(self, line: str) -> None:
        self._lines.append(printable(line))

    def _schedule_redraw(self) -> None:
        """Redraw now if the last redraw is old enough, else once, a little later."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (a plain simulation): draw now
            self._redraw()
            return
        wait = self._last_redraw + SERVER_REDRAW - loop.time()
        if wait <= 0:
            self._redraw()
        elif self._redraw_due is None:
            self._redraw_due = loop.call_later(wait, self._redraw)

    def flush(self) -> None:
        """Draw what is pending now (a notebook sees it within SERVER_REDRAW anyway)."""
        if self._redraw_due is not None:
            self._redraw_due.cancel()
            self._redraw()

    def _redraw(self) -> None:
        self._redraw_due = None
        with contextlib.suppress(RuntimeError):
            self._last_redraw = asyncio.get_running_loop().time()
        self.redraws += 1
        registrations = self.server.core.registrations
        refused = sum(self.refused.values())
        self.counts.value = (
            f"{len(registrations)} registered now · {self.registered} registrations "
            f"({self.repeated} repeated) · {self.introduced} introductions · "
            f"{self.server.core.relay.relayed} relayed datagrams · {refused} refused datagrams"
        )
        shown = registrations[-SERVER_TABLE_ROWS:]
        rows = "".join(
            f"<tr><td><code>{_html(r.peer_id, ID_SHOWN)}</code></td>"
            f"<td>{html.escape(format_address(r.address))}</td></tr>"
            for r in shown
        )
        more = len(registrations) - len(shown)
        note = f"<p>… and {more} more, heard from longer ago</p>" if more else ""
        self.table.value = (
            "<table><tr><th>ID</th><th>public address (as the server sees it)</th></tr>"
            f"{rows}</table>{note}"
        )
        self.log.value = "".join(f"{line}\n" for line in self._lines)


class LiveDiagram(_Displayed):
    """A sequence diagram image that redraws itself when the peers it follows do something.

    It draws the peers it follows (with their NATs and the server), not every
    host on the network, and only the last ``window`` seconds of the trace, so
    it scrolls as time passes and a new punch is not squeezed under old
    heart-beats. ``window=None`` shows the whole trace.
    """

    def __init__(
        self,
        trace: Trace,
        *,
        width: str = "100%",
        window: float | None = 20.0,
        **diagram_options: Any,
    ) -> None:
        self.trace = trace
        self.window = window
        self.options = diagram_options
        #: Names of the peers followed, in the order given (empty: every host).
        self.peers: list[str] = []
        # Hidden until there is something to draw (an empty image shows as broken).
        self.image = w.Image(format="png", layout=w.Layout(width=width, display="none"))
        self.widget = self.image
        self._pending: asyncio.Handle | None = None
        self.redraws = 0

    def follow(self, *peers: PanelPeer | Any, delay: float = 0.3) -> LiveDiagram:
        """Draw these peers, and redraw (at most every ``delay`` seconds) when one has an event."""
        for peer in peers:
            if peer.name not in self.peers:
                self.peers.append(peer.name)
            peer.add_listener(lambda _event: self._schedule(delay))
        return self

    def _schedule(self, delay: float) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(delay, self.refresh)

    def diagram_options(self) -> dict[str, Any]:
        """What :func:`punchlab.diagram.sequence_diagram` is asked to draw right now."""
        options = dict(self.options)
        if self.peers and "actors" not in options:
            options.setdefault("peers", list(self.peers))
        if self.window is not None and "time_range" not in options and len(self.trace):
            end = self.trace[-1].time - self.trace[0].time
            options["time_range"] = (max(0.0, end - self.window), end)
        return options

    def refresh(self) -> None:
        """Draw the trace now."""
        import matplotlib.pyplot as plt

        from punchlab.diagram import sequence_diagram

        self._pending = None
        if not len(self.trace):
            return
        ax = sequence_diagram(self.trace, **self.diagram_options())
        figure = ax.get_figure(root=True)
        assert figure is not None
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        self.image.value = buffer.getvalue()
        self.image.layout.display = None
        self.redraws += 1


def side_by_side(*panels: PeerPanel | ServerPanel | LiveDiagram) -> w.HBox:
    """Panels next to each other, sharing the width."""
    return w.HBox(
        [panel.widget for panel in panels],
        layout=w.Layout(width="100%", justify_content="space-between", grid_gap="8px"),
    )


async def connect_panels(a: PeerPanel, b: PeerPanel) -> None:
    """Do what a student does with two panels: register both, paste B's ID into A, connect."""
    await asyncio.gather(a.register(), b.register())
    assert b.peer.id is not None
    a.peer_id.value = b.peer.id
    await a.connect(b.peer.id)
