"""What every pane screen shares: header, tabs, job line, footer, reloads and error reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from tsr.errors import RemoteUnreachable
from tsr.tui.data import Session
from tsr.tui.messages import Connection, ServerEventReceived, SessionChanged
from tsr.tui.widgets.chrome import JobLine, PaneTabs
from tsr.tui.widgets.header import RemoteBar


class NotConnected(RemoteUnreachable):
    """A pane asked for data while there is no session: it loads again once there is one."""


if TYPE_CHECKING:
    from tsr.tui.app import TsrApp


class PaneScreen(Screen[None]):
    """A screen showing one or two panes; it fetches through the app's session in workers."""

    #: the panes this screen can show, first is its default
    PANES: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        #: the data on screen belongs to an older session (or none yet)
        self.stale = True

    @property
    def tsr(self) -> TsrApp:
        """The app, typed."""
        return cast("TsrApp", self.app)

    def compose(self) -> ComposeResult:
        """Header, tabs, this screen's body, the job line and the footer."""
        yield RemoteBar(self.tsr.config.remote_names())
        yield PaneTabs(id="pane-tabs")
        yield from self.compose_body()
        yield JobLine(id="job-line")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        """The panes (subclasses)."""
        yield from ()

    def on_mount(self) -> None:
        """Register for the app's broadcasts and load if a session is ready."""
        self.tsr.pane_screens.append(self)
        self.watch(self.tsr, "connection", self._connection_changed)
        self.show_pane(self.tsr.current_pane)
        if self.tsr.connection.online:
            self.reload()

    def on_unmount(self) -> None:
        """No more broadcasts."""
        if self in self.tsr.pane_screens:
            self.tsr.pane_screens.remove(self)

    def on_screen_resume(self) -> None:
        """Show the pane asked for; catch up when the session changed while away."""
        self.show_pane(self.tsr.current_pane)
        if self.stale and self.tsr.connection.online and self.is_mounted:
            self.reload()

    def show_pane(self, pane: str) -> None:
        """Bring `pane` forward (screens with two panes override this)."""
        self.query_one(PaneTabs).show(self.PANES[:1] if pane not in self.PANES else (pane,))

    def _connection_changed(self, connection: Connection) -> None:
        # panes keep what they show while offline, dimmed; their keys grey out
        self.set_class(connection.status == "offline", "-offline")
        self.refresh_bindings()

    @on(SessionChanged)
    def _session_changed(self) -> None:
        self.stale = True
        if self.is_current:
            self.reload()

    @on(ServerEventReceived)
    def _event_received(self, message: ServerEventReceived) -> None:
        self.handle_event(message)

    @on(RemoteBar.RemoteChosen)
    def _remote_chosen(self, message: RemoteBar.RemoteChosen) -> None:
        self.tsr.use_remote(message.remote)

    def reload(self) -> None:
        """Fetch everything this screen shows from the current session."""
        self.stale = False
        self.load()

    def load(self) -> None:
        """Start the workers that fill this screen (subclasses)."""

    def handle_event(self, message: ServerEventReceived) -> None:
        """React to a server event (subclasses)."""

    def require_session(self) -> Session:
        """The current session; without one the worker stops (the header says why)."""
        session = self.tsr.session
        if session is None:
            connection = self.tsr.connection
            raise NotConnected(f"not connected to {connection.remote} ({connection.status})")
        return session

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's failure turns into a notification."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.tsr.report_error(event.worker.error)
