"""One image over the whole terminal, at the best quality the renderer allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from tsr.schemas.images import ImageOut
from tsr.tui.screens.base import NotConnected
from tsr.tui.text import clip, one_line
from tsr.tui.widgets.picture import Picture

if TYPE_CHECKING:
    from tsr.tui.app import TsrApp


class FullImageScreen(Screen[None]):
    """The image, full screen, with its prompt on the last line."""

    DEFAULT_CSS = """
    FullImageScreen { background: $background; }
    FullImageScreen > Picture { height: 1fr; }
    FullImageScreen > .full--caption { height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,o,q", "close", "Close", id="full.close", tooltip="Back to the gallery"),
    ]

    def __init__(self, image: ImageOut) -> None:
        super().__init__()
        self.image = image

    @property
    def tsr(self) -> TsrApp:
        """The app, typed."""
        return cast("TsrApp", self.app)

    def compose(self) -> ComposeResult:
        """The picture and a caption."""
        yield Picture(self.tsr.renderer, "loading…")
        yield Static("", classes="full--caption", markup=False)

    def on_mount(self) -> None:
        """Fetch the file once the picture's size is known."""
        caption = f"{self.image.width}x{self.image.height} · {one_line(self.image.prompt)}"
        self.query_one(".full--caption", Static).update(clip(caption, self.size.width))
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        picture = self.query_one(Picture)
        self.load(picture.size.width, picture.size.height)

    @work(exclusive=True, exit_on_error=False)
    async def load(self, cols: int, rows: int) -> None:
        """The image file fitted to the screen."""
        session = self.tsr.session
        if session is None:
            raise NotConnected(f"not connected to {self.tsr.connection.remote}")
        fitted = await self.tsr.images.fitted(session, self.image.id, "full", (cols, rows))
        self.query_one(Picture).show_image(fitted, key=self.image.id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed fetch becomes a notification."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.tsr.report_error(event.worker.error)

    def action_close(self) -> None:
        """Back to where it was opened."""
        self.dismiss()
