"""The gallery pane: images page by page, a preview that follows the cursor, pruning by keys."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import Resize

from tsr.errors import NotFound, TsrError
from tsr.schemas.images import ImageFilters, ImageOut, ImageStats, ImageUpdate, StateFilter
from tsr.tui.image_events import image_news
from tsr.tui.messages import ServerEventReceived
from tsr.tui.screens.base import PaneScreen
from tsr.tui.widgets.gallery import Gallery
from tsr.tui.widgets.gallery_views import CELL_HEIGHT, CELL_WIDTH
from tsr.tui.widgets.image_details import ImageDetails
from tsr.tui.widgets.picture import RGB, Picture

#: images per request; about three screens of rows, or eight pages of the grid
PAGE_SIZE = 100
#: below this width the gallery shows rows beside a small preview
GRID_MIN_WIDTH = 110
#: rows kept for the details under the thumbnails
DETAILS_MIN = 9
#: the preview's rows on a narrow terminal
PREVIEW_NARROW = 15
#: previews made ahead of the cursor
PREFETCH = 3
#: the largest preview in cells: about 2,000 cells, 80 KB of truecolor half cells per move
PREVIEW_MAX = (64, 32)
View = Literal["inbox", "kept", "favourites", "trash", "all"]
VIEW_FILTERS: dict[View, tuple[StateFilter, bool | None]] = {
    "inbox": ("inbox", None),
    "kept": ("kept", None),
    "favourites": ("active", True),
    "trash": ("trashed", None),
    "all": ("active", None),
}
EMPTY_TEXT: dict[View, str] = {
    "inbox": "The inbox is empty: new images land here. Press 3 to generate some.",
    "kept": "No kept images yet: press space on an image to keep it.",
    "favourites": "No favourites yet: press f on an image.",
    "trash": "The trash is empty.",
    "all": "No images yet. Press 3 to generate some.",
}


def view_total(view: View, stats: ImageStats) -> int:
    """How many images a view holds by the gallery's counts."""
    return {
        "inbox": stats.inbox,
        "kept": stats.kept,
        "favourites": stats.favourites,
        "trash": stats.trashed,
        "all": stats.inbox + stats.kept,
    }[view]


class GalleryScreen(PaneScreen):
    """The gallery pane (`#gallery`): rows or a thumbnail grid, a preview, the metadata."""

    PANES = ("gallery",)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("I", "view('inbox')", "Inbox", id="gallery.view_inbox", show=False,
                tooltip="Show the inbox (new images)"),
        Binding("K", "view('kept')", "Kept", id="gallery.view_kept", show=False,
                tooltip="Show the kept images"),
        Binding("F", "view('favourites')", "Favourites", id="gallery.view_favourites",
                show=False, tooltip="Show the favourites"),
        Binding("A", "view('all')", "All", id="gallery.view_all", show=False,
                tooltip="Show every image outside the trash"),
        Binding("T", "toggle_trash", "Trashed", id="gallery.view_trash",
                tooltip="Show the trash (restore, purge); again to go back"),
        Binding("slash", "filter", "Filter", id="gallery.filter", show=False,
                tooltip="Filter by prompt text, model or LoRA"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.view: View = "inbox"
        self.previous_view: View = "inbox"
        self.text_filters = ImageFilters()
        self.next_cursor: str | None = None
        self._ops: asyncio.Queue[tuple[str, list[int], bool]] = asyncio.Queue()
        #: a change taken from `_ops` is on its way to the server
        self._sending = False
        #: changes queued so far: a count asked before the last one cannot be trusted
        self._changes = 0
        self._loading_more = False

    def compose_body(self) -> ComposeResult:
        """The gallery on the left; preview and metadata on the right."""
        with Container(id="gallery"):
            yield Gallery(self.tsr.renderer, id="gallery-view")
            yield Picture(self.tsr.renderer, "", id="gallery-preview")
            yield ImageDetails("", id="gallery-details")

    def on_mount(self) -> None:
        """Start the worker that sends keep, trash and undo to the server in order."""
        super().on_mount()
        self.run_worker(self._run_ops(), group="gallery-ops", exit_on_error=False)
        self.query_one(Gallery).focus()

    @property
    def filters(self) -> ImageFilters:
        """The filters of the current view plus the text, model and LoRA ones."""
        state, favourite = VIEW_FILTERS[self.view]
        return self.text_filters.model_copy(update={"state": state, "favourite": favourite})

    # -- layout ---------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        """Rows beside a small preview when narrow; a grid, a big preview and details when wide.

        The pane is a 2x2 grid. Narrow: the rows span both rows on the left, preview over details
        on the right. Wide: the thumbnails over the details on the left, the preview spanning
        both rows on the right.
        """
        width, height = event.size
        gallery = self.query_one(Gallery)
        pane = self.query_one("#gallery")
        grid = (
            width >= GRID_MIN_WIDTH
            and self.tsr.renderer != "none"
            and not self.tsr.config.tui.low_bandwidth
        )
        body = max(height - 4, 4)
        if grid:
            cols = max(1, min(4, (width - 40) // CELL_WIDTH))
            rows = max(1, min(3, (body - 1 - DETAILS_MIN) // CELL_HEIGHT))
            pane.styles.grid_columns = f"{cols * CELL_WIDTH + 1} 1fr"
            pane.styles.grid_rows = f"{rows * CELL_HEIGHT + 1} 1fr"
        else:
            side = 32 if width >= 70 else 0
            pane.styles.grid_columns = f"1fr {side}"
            pane.styles.grid_rows = f"{min(PREVIEW_NARROW, body // 2)} 1fr"
        gallery.layout_mode = "grid" if grid else "rows"
        self.set_class(grid, "-wide")

    def preview_box(self) -> tuple[int, int]:
        """The cells the preview may fill: its area, capped to keep a cursor move cheap."""
        preview = self.query_one("#gallery-preview", Picture)
        return min(preview.size.width, PREVIEW_MAX[0]), min(preview.size.height, PREVIEW_MAX[1])

    # -- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """Fetch the first page of the current view."""
        self.load_images()

    @work(exclusive=True, group="gallery-list", exit_on_error=False)
    async def load_images(self, select_id: int | None = None) -> None:
        """The first page of the view, then the counts."""
        session = self.require_session()
        filters = self.filters
        page = await session.list_images(filters, None, PAGE_SIZE)
        self.next_cursor = page.next_cursor
        gallery = self.query_one(Gallery)
        gallery.show_images(
            page.items,
            filters=filters,
            has_more=page.next_cursor is not None,
            total=None,
            select_id=select_id,
            empty_text=EMPTY_TEXT[self.view],
        )
        if not page.items:
            self._show_preview(None)
        await self._refresh_total()

    async def _refresh_total(self) -> None:
        """Ask the server how many images the view holds, for the status line.

        Counted only while no change of the user's is waiting or on its way: the server's
        count would not have it yet, while the list shown has it already. The count is asked
        again once the last change has been sent.
        """
        filters, changes = self.filters, self._changes
        if not self._settled():
            return
        stats = await self.require_session().image_stats()
        if not self._settled() or filters != self.filters or changes != self._changes:
            return
        plain = not (filters.checkpoint or filters.lora or filters.prompt)
        self.query_one(Gallery).set_total(view_total(self.view, stats) if plain else None)

    def _settled(self) -> bool:
        return self._ops.empty() and not self._sending

    @on(Gallery.MoreWanted)
    def _more_wanted(self) -> None:
        if self.next_cursor is not None and not self._loading_more:
            self._loading_more = True
            self.load_more(self.next_cursor)

    @work(group="gallery-more", exit_on_error=False)
    async def load_more(self, cursor: str) -> None:
        """The next page after `cursor`."""
        try:
            page = await self.require_session().list_images(self.filters, cursor, PAGE_SIZE)
        finally:
            self._loading_more = False
        if cursor != self.next_cursor:
            return  # the view changed meanwhile
        self.next_cursor = page.next_cursor
        self.query_one(Gallery).append_images(page.items, has_more=page.next_cursor is not None)

    @on(Gallery.ThumbnailsWanted)
    def _thumbnails_wanted(self, message: Gallery.ThumbnailsWanted) -> None:
        self.load_thumbnails([image.id for image in message.images], message.box)

    @work(exclusive=True, group="gallery-thumbs", exit_on_error=False)
    async def load_thumbnails(self, ids: list[int], box: tuple[int, int]) -> None:
        """Thumbnails for the page on screen, as they come; then the next page's, quietly."""
        session = self.require_session()
        gallery = self.query_one(Gallery)
        store = self.tsr.images
        pad = gallery.thumbnail_pad

        async def one(image_id: int) -> None:
            fitted = await store.fitted(session, image_id, "thumb", box, pad)
            gallery.set_thumbnail(image_id, fitted)

        await asyncio.gather(*(one(image_id) for image_id in ids))
        # the pages either side, ready in the gallery: a page turn then draws in one frame
        size = gallery.page_size
        start = gallery.cursor - gallery.cursor % size
        near = (
            gallery.items[start + size : start + 2 * size]
            + gallery.items[max(start - size, 0) : start]
        )

        async def ready(image_id: int) -> None:
            gallery.thumbnails.put(
                image_id, await store.fitted(session, image_id, "thumb", box, pad)
            )

        await asyncio.gather(*(ready(it.id) for it in near if it.id not in gallery.thumbnails))

    @on(Gallery.ImageHighlighted)
    def _image_highlighted(self, message: Gallery.ImageHighlighted) -> None:
        self._show_preview(message.image)

    def _show_preview(self, image: ImageOut | None) -> None:
        self.query_one(ImageDetails).show(image)
        preview = self.query_one("#gallery-preview", Picture)
        if image is None:
            preview.show_placeholder("")
            return
        box = self.preview_box()
        cached = self.tsr.images.cached_preview(image.id, box, preview.pad)
        if cached is not None:
            preview.show_image(cached, key=image.id)
        self.load_preview(image.id, box, preview.pad)

    @work(exclusive=True, group="gallery-preview", exit_on_error=False)
    async def load_preview(self, image_id: int, box: tuple[int, int], pad: RGB) -> None:
        """The highlighted image, fitted to the preview (the thumbnail when that is enough)."""
        session = self.require_session()
        fitted = await self.tsr.images.preview(session, image_id, box, pad)
        preview = self.query_one("#gallery-preview", Picture)
        if preview.image_key != image_id:
            preview.show_image(fitted, key=image_id)
        # the next few are likely next: have them ready before the cursor gets there
        gallery = self.query_one(Gallery)
        for image in gallery.items[gallery.cursor + 1 : gallery.cursor + 1 + PREFETCH]:
            await self.tsr.images.preview(session, image.id, box, pad)

    # -- changes, in order ----------------------------------------------------------------------

    @on(Gallery.ImagesChanged)
    def _images_changed(self, message: Gallery.ImagesChanged) -> None:
        self._queue(message.action, message.ids)

    @on(Gallery.FavouriteToggled)
    def _favourite_toggled(self, message: Gallery.FavouriteToggled) -> None:
        self._queue("favourite", [message.image_id], message.favourite)

    @on(Gallery.UndoRequested)
    def _undo_requested(self) -> None:
        self._queue("undo", [])

    def _queue(self, action: str, ids: list[int], flag: bool = False) -> None:
        """Queue a change for the server (sent in order by `_run_ops`)."""
        self._changes += 1
        self._ops.put_nowait((action, ids, flag))

    async def _run_ops(self) -> None:
        """Send the user's changes one by one, so an undo always follows what it undoes."""
        while True:
            action, ids, flag = await self._ops.get()
            self._sending = True
            try:
                await self._send(action, ids, flag)
            except TsrError as exc:
                self.tsr.report_error(exc)
                if self.tsr.session is not None:
                    self.load_images()  # show what the server really holds
                continue
            finally:
                self._sending = False
            if self._ops.empty() and action != "purge":  # a purge reloads the view itself
                # the count is a nicety: if it cannot be had, the next change asks again
                with contextlib.suppress(TsrError):
                    await self._refresh_total()

    async def _send(self, action: str, ids: list[int], flag: bool) -> None:
        session = self.require_session()
        gallery = self.query_one(Gallery)
        if action == "keep":
            await session.keep(ids)
        elif action == "trash":
            await session.trash(ids)
        elif action == "restore":
            await session.restore(ids)
        elif action == "favourite":
            await session.update_image(ids[0], ImageUpdate(favourite=flag))
        elif action == "undo":
            result = await session.undo()
            if result.action is None:
                self.notify("Nothing to undo.")
                return
            images = [await session.image(image_id) for image_id in result.ids]
            gallery.update_images(images, select=True)
            left = f" ({result.remaining} more to undo)" if result.remaining else ""
            self.notify(f"Undid {result.action} of {len(result.ids)} image(s){left}.")
        elif action == "purge":
            result_purge = await session.purge(ids)
            self.notify(f"Deleted {len(result_purge.ids)} image(s) for good.")
            self.load_images()

    # -- views and other requests ---------------------------------------------------------------

    def action_view(self, view: View) -> None:
        """Show another view of the gallery."""
        if view != self.view:
            if view == "trash":
                self.previous_view = self.view
            self.view = view
            self.load_images()

    def action_toggle_trash(self) -> None:
        """Into the trash, or back to where you came from."""
        self.action_view(self.previous_view if self.view == "trash" else "trash")

    def action_filter(self) -> None:
        """Ask for prompt text, model and LoRA filters."""
        from tsr.tui.screens.gallery_filter import GalleryFilterScreen

        def apply(filters: ImageFilters | None) -> None:
            if filters is not None:
                self.text_filters = filters
                self.load_images()

        self.app.push_screen(GalleryFilterScreen(self.text_filters), apply)

    @on(Gallery.PurgeRequested)
    def _purge_requested(self, message: Gallery.PurgeRequested) -> None:
        from tsr.tui.screens.confirm import ConfirmScreen

        gallery = self.query_one(Gallery)
        count = len(message.ids) or gallery.total or len(gallery.items)
        what = "the marked images" if message.ids else "everything in the trash"
        question = f"Delete {what} ({count}) for good? This cannot be undone."

        def answered(yes: bool | None) -> None:
            if yes:
                self._queue("purge", message.ids)

        self.app.push_screen(ConfirmScreen(question, "Purge"), answered)

    @on(Gallery.ReuseRequested)
    def _reuse_requested(self, message: Gallery.ReuseRequested) -> None:
        self.tsr.reuse(message.image)

    @on(Gallery.FullScreenRequested)
    def _full_screen_requested(self, message: Gallery.FullScreenRequested) -> None:
        from tsr.tui.screens.full_image import FullImageScreen

        self.app.push_screen(FullImageScreen(message.image))

    def handle_event(self, message: ServerEventReceived) -> None:
        """Images made, changed or purged (here or by another client) show as they happen."""
        news = image_news(message.event)
        gallery = self.query_one(Gallery)
        if news.reload:
            self.load_images(gallery.current.id if gallery.current else None)
            return
        if news.images:
            gallery.update_images(news.images)
        if news.gone:
            gallery.drop_images(news.gone)
        # only what this view holds, or what it could hold (a new or restored image)
        held = {image.id for image in gallery.items}
        wanted = [i for i in news.fetch if i in held or message.event.kind != "trashed"]
        if wanted:
            self.fetch_images(wanted)

    @work(group="gallery-news", exit_on_error=False)
    async def fetch_images(self, ids: list[int]) -> None:
        """Read changed images again and fold them into the view (if it shows them)."""
        session = self.require_session()
        images = []
        for image_id in ids:
            try:
                images.append(await session.image(image_id))
            except NotFound:
                continue  # purged meanwhile
        self.query_one(Gallery).update_images(images)
