"""The tsr Textual app: connection to one remote at a time, panes as modes, shared state."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable
from dataclasses import replace
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import var
from textual.screen import Screen

from tsr.config import Config
from tsr.errors import RemoteError, RemoteUnreachable, TsrError
from tsr.schemas.downloads import DownloadOut
from tsr.schemas.images import ImageOut
from tsr.schemas.jobs import JobOut
from tsr.schemas.server import TOPICS
from tsr.schemas.tasks import TaskOut
from tsr.tui.activity import Activity, fetch_again, from_event, is_finished, slot_of, task_text
from tsr.tui.data import Connector, Session
from tsr.tui.images import ImageStore
from tsr.tui.keymap import check_keymap
from tsr.tui.messages import Connection, ServerEventReceived, SessionChanged
from tsr.tui.screens.base import NotConnected, PaneScreen
from tsr.tui.widgets.picture import ResolvedRenderer

#: the panes, in tab order: name → the mode (screen) that shows it
PANES: dict[str, str] = {
    "models": "models",
    "loras": "create",
    "generate": "create",
    "gallery": "gallery",
}
#: seconds between looks at a running job when no event says it changed
JOB_POLL = 3.0


class TsrApp(App[None]):
    """`tsr tui`: models, LoRAs and triggers, the generate form and the gallery of one remote."""

    CSS_PATH = "tsr.tcss"
    TITLE = "tsr"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", tooltip="Leave tsr", show=False,
                priority=True),
        Binding("ctrl+p", "command_palette", "Commands", id="app.palette", show=False,
                tooltip="Search every command", priority=True),
        Binding("question_mark,f1", "help", "Help", id="app.help", tooltip="Keys and what they do"),
        Binding("1", "pane('models')", "Models", id="app.pane_models", show=False,
                tooltip="Checkpoints, VAEs, embeddings; CivitAI"),
        Binding("2", "pane('loras')", "LoRAs", id="app.pane_loras", show=False,
                tooltip="LoRAs and trigger words"),
        Binding("3", "pane('generate')", "Generate", id="app.pane_generate", show=False,
                tooltip="The generate form"),
        Binding("4", "pane('gallery')", "Gallery", id="app.pane_gallery", show=False,
                tooltip="Review, keep and trash images"),
        Binding("ctrl+x", "cancel_job", "Cancel job", id="app.cancel_job",
                tooltip="Cancel the generation or switch on the job line"),
        Binding("ctrl+r", "retry", "Retry", id="app.retry",
                tooltip="Try to reach the remote again"),
        Binding("ctrl+r", "choose_remote", "Remote", id="app.remote", show=False,
                tooltip="Switch to another remote"),
    ]  # fmt: skip

    connection: var[Connection] = var(Connection("local"))
    #: the running or last generation job, for the job line on every pane
    job: var[JobOut | None] = var(None)
    #: the running or last download
    download: var[DownloadOut | None] = var(None)
    #: the running or last scan or link task of the models database
    db_task: var[TaskOut | None] = var(None)

    def __init__(
        self,
        config: Config,
        connector: Connector,
        *,
        remote: str | None = None,
        renderer: ResolvedRenderer = "halfcell",
        start_pane: str = "generate",
    ) -> None:
        super().__init__()
        self.config = config
        self.connector = connector
        self.renderer = renderer
        self.images = ImageStore(renderer)
        self.session: Session | None = None
        self.start_pane = start_pane
        self.current_pane = start_pane
        #: the pane screens that exist so far (modes are made on first use)
        self.pane_screens: list[PaneScreen] = []
        self._sessions: dict[str, Session] = {}
        self._generation = 0
        self.set_reactive(TsrApp.connection, Connection(remote or config.default_remote))

    # -- start and stop -----------------------------------------------------------------------

    def on_mount(self) -> None:
        """Apply the user's keymap, show the first pane at once, then connect in the background."""
        from tsr.tui.screens.create import CreateScreen
        from tsr.tui.screens.gallery import GalleryScreen
        from tsr.tui.screens.models import ModelsScreen

        self.add_mode("models", ModelsScreen)
        self.add_mode("create", CreateScreen)
        self.add_mode("gallery", GalleryScreen)
        keymap, unknown = check_keymap(self.config.tui.keymap)
        self.set_keymap(keymap)
        if unknown:
            self.notify(
                f"[tui] keymap names unknown bindings: {', '.join(unknown)} (press ? for the ids)",
                severity="warning",
            )
        self.action_pane(self.start_pane)
        self.connect(self.connection.remote)
        # an ssh session that drops sends SIGHUP: leave the normal way, so the embedded server
        # stops the sd-servers it started instead of leaving them running
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)

    async def on_unmount(self) -> None:
        """Close every session (the embedded server stops with its last user)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await _close_quietly(session)

    # -- connection ---------------------------------------------------------------------------

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def connect(self, remote: str) -> None:
        """Open (or reuse) a session on `remote`; an unreachable one shows as offline."""
        self._generation += 1
        generation = self._generation
        self.session = None
        self.connection = Connection(remote, "connecting", generation=generation)
        try:
            session = self._sessions.get(remote)
            if session is None:
                session = await self.connector(remote)
                self._sessions[remote] = session
            info = await session.info()
        except TsrError as exc:
            stale = self._sessions.pop(remote, None)
            if stale is not None:
                await _close_quietly(stale)
            self.connection = Connection(remote, "offline", str(exc), generation=generation)
            return
        self.session = session
        self.images.clear()
        self.connection = Connection(remote, "online", info=info, generation=generation)
        self._broadcast(SessionChanged(self.connection))
        self.listen(session, generation)

    @work(exclusive=True, group="events", exit_on_error=False)
    async def listen(self, session: Session, generation: int) -> None:
        """Pass the server's events to every pane until the stream ends."""
        try:
            async for event in session.events(list(TOPICS)):
                update = from_event(event)
                if update is not None:
                    self._update_activity(update)
                elif event.topic == "backend":
                    self.refresh_info()
                self._broadcast(ServerEventReceived(event))
        except RemoteError as exc:
            if generation == self._generation:
                self.go_offline(str(exc))

    @work(exclusive=True, group="info", exit_on_error=False)
    async def refresh_info(self) -> None:
        """Read the server's info again (a backend changed: another model, a failure)."""
        session = self.session
        if session is None:
            return
        info = await session.info()
        if session is self.session:
            self.connection = replace(self.connection, info=info)

    def track(self, activity: Activity) -> None:
        """Follow a job, download or task on the job line until it ends."""
        slot = slot_of(activity)
        setattr(self, slot, activity)
        self.run_worker(
            self._follow(activity), group=f"follow-{slot}", exclusive=True, exit_on_error=False
        )

    def _update_activity(self, update: Activity) -> None:
        """A newer state of something followed (from an event or a fetch)."""
        slot = slot_of(update)
        current = getattr(self, slot)
        if current is None or current.id != update.id:
            return
        was_running = not is_finished(current)
        setattr(self, slot, update)
        if was_running and is_finished(update):
            self._finished(update)

    def _finished(self, activity: Activity) -> None:
        if isinstance(activity, JobOut) and activity.kind == "switch":
            self.refresh_info()
        if isinstance(activity, TaskOut):
            failed = activity.state == "failed"
            self.notify(
                task_text(activity), severity="error" if failed else "information", markup=False
            )
        if isinstance(activity, TaskOut | DownloadOut) and activity.state == "done":
            self.library_changed()

    def library_changed(self) -> None:
        """A scan, link or download changed the models: every pane shows the new list."""
        # panes that are not on screen catch up when they come back (on_screen_resume)
        for screen in self.pane_screens:
            screen.stale = True
            if screen.is_current:
                screen.reload()

    async def _follow(self, activity: Activity) -> None:
        """Ask for its state every few seconds too, in case an event went missing."""
        slot = slot_of(activity)
        while not is_finished(activity):
            await asyncio.sleep(JOB_POLL)
            current = getattr(self, slot)
            if current is None or current.id != activity.id:
                return
            if is_finished(current) or self.session is None:
                activity = current
                continue
            activity = await fetch_again(self.session, current)
            self._update_activity(activity)

    async def show_pane(self, pane: str) -> PaneScreen:
        """Show `pane` and return its screen once it is mounted."""
        self.current_pane = pane
        mode = PANES[pane]
        if self.current_mode != mode:
            await self.switch_mode(mode)
        screen = self.get_screen_stack(mode)[0]
        assert isinstance(screen, PaneScreen)
        screen.show_pane(pane)
        return screen

    def reuse(self, image: ImageOut) -> None:
        """Open the generate form filled with an image's parameters."""

        async def run() -> None:
            screen = await self.show_pane("generate")
            reuse = getattr(screen, "reuse_image", None)
            if reuse is not None:
                reuse(image)

        self.run_worker(run(), group="reuse", exit_on_error=False)

    def go_offline(self, reason: str) -> None:
        """The remote stopped answering: say so, keep what is on screen, offer a retry."""
        current = self.connection
        if current.status == "online":
            self.session = None
            self.connection = Connection(
                current.remote, "offline", reason, generation=current.generation
            )

    def _broadcast(self, message: SessionChanged | ServerEventReceived) -> None:
        for screen in self.pane_screens:
            screen.post_message(message)

    def use_remote(self, remote: str) -> None:
        """Switch every pane to another remote."""
        if remote != self.connection.remote or not self.connection.online:
            self.connect(remote)

    def report_error(self, error: BaseException) -> None:
        """The one place a failed request becomes a message for the user."""
        if isinstance(error, NotConnected):
            return  # the header already says so, and the pane reloads when a session comes
        if isinstance(error, RemoteUnreachable):
            self.go_offline(str(error))
        if isinstance(error, TsrError):
            self.notify(str(error), severity="error", markup=False)
        else:
            self.log.error(repr(error))
            self.notify(f"unexpected error: {error!r}", severity="error", markup=False)

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Retry shows when offline, the remote switch when not."""
        if action == "retry":
            return self.connection.status == "offline"
        if action == "choose_remote":
            return self.connection.status != "offline"
        if action == "cancel_job":
            return self.job is not None and not is_finished(self.job)
        return True

    def watch_job(self) -> None:
        """The cancel key comes and goes with the job."""
        self.refresh_bindings()

    @work(group="cancel", exit_on_error=False)
    async def action_cancel_job(self) -> None:
        """Ask the server to cancel the followed job (a running generation stops at its end)."""
        if self.job is not None and self.session is not None:
            self._update_activity(await self.session.cancel_job(self.job.id))

    def watch_connection(self) -> None:
        """The footer's retry key comes and goes with the connection."""
        self.refresh_bindings()

    def action_pane(self, pane: str) -> None:
        """Show a pane (LoRAs and Generate share one screen: both show on a wide terminal)."""
        self.current_pane = pane
        mode = PANES[pane]
        if self.current_mode != mode:
            self.switch_mode(mode)  # the screen shows `current_pane` when it resumes
        elif isinstance(self.screen, PaneScreen):
            self.screen.show_pane(pane)

    def action_retry(self) -> None:
        """Reach the current remote again."""
        self.connect(self.connection.remote)

    def action_choose_remote(self) -> None:
        """Open the remote list in the header."""
        from tsr.tui.widgets.header import RemoteBar

        for bar in self.screen.query(RemoteBar):
            bar.open_list()

    def action_help(self) -> None:
        """Show every key of the current pane, with its binding id for the keymap."""
        from tsr.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: tsr's namespaced commands that apply now, then Textual's own."""
        from tsr.tui.commands import tsr_commands

        yield from tsr_commands(self, screen)
        yield from super().get_system_commands(screen)


async def _close_quietly(session: Session) -> None:
    with contextlib.suppress(TsrError):
        await session.close()


def build_app(
    config: Config,
    remote: str | None = None,
    *,
    renderer: ResolvedRenderer | None = None,
    connector: Connector | None = None,
    start_pane: str = "generate",
) -> TsrApp:
    """The one factory for the CLI, the tests, the benchmarks and the screenshots."""
    from tsr.tui.client_session import client_connector
    from tsr.tui.widgets.picture import resolve_renderer

    chosen = renderer or resolve_renderer(
        config.tui.image_renderer, low_bandwidth=config.tui.low_bandwidth
    )
    return TsrApp(
        config,
        connector or client_connector(config),
        remote=remote,
        renderer=chosen,
        start_pane=start_pane,
    )
