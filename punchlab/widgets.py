"""ipywidgets panels for the notebooks: a peer, the teacher's server, a live diagram.

Everything runs on the kernel's own event loop. Button callbacks are plain
functions that only schedule a coroutine; what that coroutine has to say goes
into widget state (a status line, the chat log), never to ``print``. The
panels work the same with a real :class:`punchlab.aio.Peer` and with a
simulated :class:`punchlab.sim.session.AsyncSimPeer`.

Text from the network (chat lines, identifiers, error messages) is shown
through :func:`punchlab.display.printable`, so a control character or bidi
override shows as its escape, and through :func:`html.escape` wherever a
widget renders HTML (``HTML`` widgets); a ``Textarea`` shows its value as text.
"""

from __future__ import annotations

import asyncio
import html
import io
from collections.abc import Awaitable, Callable
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
from punchlab.messages import format_address
from punchlab.peer import (
    Connected,
    Disconnected,
    Failed,
    Introduced,
    PeerAddressChanged,
    PeerState,
    Registered,
    StateChanged,
    TextReceived,
)
from punchlab.server import (
    DatagramRejected,
    PeerIntroduced,
    PeerRegistered,
    RegistrationExpired,
)
from punchlab.trace import EventKind, Trace

__all__ = ["LiveDiagram", "PeerPanel", "ServerPanel", "connect_panels", "side_by_side"]

#: How long ``connect`` waits for the punch, in (real or virtual) seconds.
CONNECT_TIMEOUT = 12.0


#: How much of an identifier or a status line is shown (a server chooses identifiers).
ID_SHOWN = 100
STATUS_SHOWN = 500


def _html(text: str, limit: int | None = None) -> str:
    """``text`` for an HTML widget: control characters escaped, then markup escaped."""
    return html.escape(printable(text, limit))


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
    async def send_text(self, text: str) -> None: ...


_STATE_TEXT = {
    PeerState.IDLE: "Not registered yet: press Register.",
    PeerState.REGISTERING: "Registering with the server…",
    PeerState.REGISTERED: "Registered. Paste another peer's ID and press Connect, or wait.",
    PeerState.PUNCHING: "Punching: sending HELLO, waiting for SUCCESS…",
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


class _Tasks:
    """Coroutines started by callbacks, kept referenced until done (and awaitable in tests)."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    def start(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def wait(self) -> None:
        """Until every scheduled coroutine has finished (widget tests use this)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


class PeerPanel(_Displayed):
    """Register, show your ID, type a peer's ID, connect, chat.

    ``panel.widget`` is what a notebook displays (the panel displays itself
    too). The buttons only schedule work; ``await panel.idle()`` waits for it.
    """

    def __init__(self, peer: PanelPeer, *, title: str | None = None) -> None:
        self.peer = peer
        self.tasks = _Tasks()
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
        self.message = w.Text(placeholder="type a line", description="Message", disabled=True)
        self.send_button = w.Button(description="Send", icon="paper-plane", disabled=True)
        self.register_button.on_click(lambda _: self.tasks.start(self.register()))
        self.connect_button.on_click(lambda _: self.tasks.start(self.connect(self.peer_id.value)))
        self.send_button.on_click(lambda _: self.tasks.start(self.send(self.message.value)))
        self.widget = w.VBox(
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
        self.widget.add_class("punchlab-peer-panel")
        peer.add_listener(self._on_event)

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
        except (ConnectFailed, PunchlabError, OSError) as exc:
            self._error(f"Could not connect: {exc}")
        finally:
            ticker.cancel()
            self.progress.layout.visibility = "hidden"
            self.connect_button.disabled = self.peer.state is PeerState.CONNECTED

    async def send(self, text: str) -> None:
        if not text:
            return
        try:
            await self.peer.send_text(text)
        except LocalProtocolError as exc:
            self._error(f"Cannot send: {exc}")
            return
        self.message.value = ""
        self._append(f"you: {text}")

    async def idle(self) -> None:
        """Wait until everything the buttons scheduled has finished."""
        await self.tasks.wait()

    # -- what the peer tells us -----------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, StateChanged):
            self._info(_STATE_TEXT[event.new])
            registered = event.new in (
                PeerState.REGISTERED,
                PeerState.FAILED,
                PeerState.DISCONNECTED,
            )
            self.connect_button.disabled = not (registered and self.peer.id)
            connected = event.new is PeerState.CONNECTED
            self.message.disabled = self.send_button.disabled = not connected
        elif isinstance(event, Registered):
            self.my_id.value = self._id_html(event.peer_id)
        elif isinstance(event, Introduced) and not event.initiator:
            self._info(f"A peer at {format_address(event.peer_address)} wants to talk: punching…")
        elif isinstance(event, PeerAddressChanged):
            self._append(
                f"(the peer answers from {format_address(event.new)}, not "
                f"{format_address(event.old)}: its NAT picked a new port)"
            )
        elif isinstance(event, Connected):
            self._info(
                f"Connected to {format_address(event.peer_address)} "
                f"in {event.elapsed * 1000:.0f} ms."
            )
        elif isinstance(event, TextReceived):
            self._append(f"peer: {event.text}")
        elif isinstance(event, Failed | Disconnected):
            self._error(event.reason)

    async def _show_progress(self) -> None:
        """Fill the bar while punching: HELLOs sent so far against the usual handful."""
        self.progress.layout.visibility = "visible"
        while True:
            hellos = sum(
                1
                for e in self.peer.trace.events[-400:]
                if e.kind is EventKind.SENT and e.actor == self.peer.name and e.msg_type == "HELLO"
            )
            self.progress.value = min(1.0, hellos / 10)
            self.progress.description = f"HELLO x{hellos}"
            await asyncio.sleep(0.1)

    # -- display helpers ------------------------------------------------------------------

    @staticmethod
    def _id_html(peer_id: str | None) -> str:
        if peer_id is None:
            return "<i>no ID yet</i>"
        # user-select: all makes one click select the whole ID for copying.
        return f"Your ID: <code style='user-select: all'>{_html(peer_id, ID_SHOWN)}</code>"

    @staticmethod
    def _status_html(text: str, colour: str = "#333333") -> str:
        return f"<span style='color: {colour}'>{_html(text, STATUS_SHOWN)}</span>"

    def _info(self, text: str) -> None:
        self.status.value = self._status_html(text)

    def _error(self, text: str) -> None:
        self.status.value = self._status_html(text, "#b00020")

    def _append(self, line: str) -> None:
        """One line of the chat log: a Textarea shows text, so only control characters matter."""
        self.log.value = f"{self.log.value}{printable(line)}\n"

    @property
    def status_text(self) -> str:
        """The status line without markup (tests and notebooks read it)."""
        value = str(self.status.value)
        return html.unescape(value[value.index(">") + 1 : value.rindex("<")])


class ServerPanel(_Displayed):
    """The teacher's view: who registered, who was introduced to whom, what was refused."""

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
        self.introduced = 0
        self.refused = 0
        server.add_listener(self._on_event)
        self._refresh()

    def _on_event(self, event: object) -> None:
        if isinstance(event, PeerRegistered):
            if not event.repeated:
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
        elif isinstance(event, RegistrationExpired):
            self._append(f"{event.peer_id[:8]}… went silent: registration expired")
        elif isinstance(event, DatagramRejected):
            self.refused += 1
            self._append(f"refused a datagram from {format_address(event.address)}: {event.reason}")
        self._refresh()

    def _append(self, line: str) -> None:
        self.log.value = f"{self.log.value}{printable(line)}\n"

    def _refresh(self) -> None:
        registrations = self.server.core.registrations
        self.counts.value = (
            f"{len(registrations)} registered now · {self.registered} registrations · "
            f"{self.introduced} introductions · {self.refused} refused datagrams"
        )
        rows = "".join(
            f"<tr><td><code>{_html(r.peer_id, ID_SHOWN)}</code></td>"
            f"<td>{html.escape(format_address(r.address))}</td></tr>"
            for r in registrations
        )
        self.table.value = (
            "<table><tr><th>ID</th><th>public address (as the server sees it)</th></tr>"
            f"{rows}</table>"
        )


class LiveDiagram(_Displayed):
    """A sequence diagram image that redraws itself when the peers it follows do something."""

    def __init__(self, trace: Trace, *, width: str = "100%", **diagram_options: Any) -> None:
        self.trace = trace
        self.options = diagram_options
        # Hidden until there is something to draw (an empty image shows as broken).
        self.image = w.Image(format="png", layout=w.Layout(width=width, display="none"))
        self.widget = self.image
        self._pending: asyncio.Handle | None = None
        self.redraws = 0

    def follow(self, *peers: PanelPeer | Any, delay: float = 0.3) -> LiveDiagram:
        """Redraw (at most every ``delay`` seconds) whenever one of ``peers`` has an event."""
        for peer in peers:
            peer.add_listener(lambda _event: self._schedule(delay))
        return self

    def _schedule(self, delay: float) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(delay, self.refresh)

    def refresh(self) -> None:
        """Draw the trace now."""
        import matplotlib.pyplot as plt

        from punchlab.diagram import sequence_diagram

        self._pending = None
        if not len(self.trace):
            return
        ax = sequence_diagram(self.trace, **self.options)
        figure = ax.get_figure(root=True)
        assert figure is not None
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
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
