"""The gallery: one focusable widget that owns its cursor, for reviewing images by keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.message import Message
from textual.reactive import var
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from tsr.schemas.images import ImageFilters, ImageOut
from tsr.tui.widgets.gallery_list import GalleryList
from tsr.tui.widgets.gallery_views import (
    CELL_HEIGHT,
    CELL_WIDTH,
    THUMB_BOX,
    GalleryRows,
    ThumbGrid,
)
from tsr.tui.widgets.picture import RGB, Fitted, LruCache, ResolvedRenderer

LayoutMode = Literal["rows", "grid"]
#: the preview follows the cursor this long after the last move, so a held key sends highlights only
PREVIEW_DELAY = 0.12
#: ask for the next page when the cursor comes this close to the end of what is loaded
LOAD_AHEAD = 24
MAX_GRID = (4, 3)


class Gallery(Widget, can_focus=True):
    """Rows or a grid of images with one cursor; keep, trash, favourite, mark, undo by keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move('up')", "Up", show=False, id="gallery.up", tooltip="Move up"),
        Binding("down,j", "move('down')", "Down", show=False, id="gallery.down",
                tooltip="Move down"),
        Binding("left,h", "move('left')", "Left", show=False, id="gallery.left",
                tooltip="Move left"),
        Binding("right,l", "move('right')", "Right", show=False, id="gallery.right",
                tooltip="Move right"),
        Binding("pageup", "move('page_up')", "Page up", show=False, id="gallery.page_up",
                tooltip="The previous page of images"),
        Binding("pagedown", "move('page_down')", "Page down", show=False, id="gallery.page_down",
                tooltip="The next page of images"),
        Binding("home,g", "move('first')", "First", show=False, id="gallery.first",
                tooltip="The newest image"),
        Binding("end,G", "move('last')", "Last", show=False, id="gallery.last",
                tooltip="The oldest image loaded so far"),
        Binding("space", "keep", "Keep", id="gallery.keep",
                tooltip="Keep the image (or the marked ones) and move on"),
        Binding("space", "restore", "Restore", id="gallery.restore",
                tooltip="Take the image (or the marked ones) out of the trash"),
        Binding("d,delete", "trash", "Trash", id="gallery.trash",
                tooltip="Move the image (or the marked ones) to the trash and move on"),
        Binding("f", "favourite", "Fav", id="gallery.favourite", tooltip="Favourite or not"),
        Binding("u", "undo", "Undo", id="gallery.undo", tooltip="Undo the last keep or trash"),
        Binding("m", "mark", "Mark", id="gallery.mark", show=False,
                tooltip="Mark the image for a bulk keep or trash"),
        Binding("escape", "clear_marks", "Unmark", show=False, id="gallery.clear_marks",
                tooltip="Clear the marks"),
        Binding("r", "reuse", "Reuse", id="gallery.reuse",
                tooltip="Fill the generate form with this image's parameters"),
        Binding("o", "full_screen", "Full", id="gallery.full_screen", show=False,
                tooltip="Show the image full screen"),
        Binding("P", "purge", "Purge", id="gallery.purge",
                tooltip="Delete the trash (or the marked images in it) for good"),
    ]  # fmt: skip

    class ImageHighlighted(Message):
        """The cursor rested on an image (sent after a short pause, not on every move)."""

        def __init__(self, image: ImageOut) -> None:
            super().__init__()
            self.image = image

    class ThumbnailsWanted(Message):
        """A page is shown whose thumbnails are not here yet."""

        def __init__(self, images: list[ImageOut], box: tuple[int, int]) -> None:
            super().__init__()
            self.images = images
            self.box = box

    class MoreWanted(Message):
        """The cursor nears the end of the loaded images and the server has more."""

    @dataclass
    class ImagesChanged(Message):
        """The user kept, trashed or restored images (already shown so)."""

        action: Literal["keep", "trash", "restore"]
        ids: list[int]

    @dataclass
    class FavouriteToggled(Message):
        """The user made an image a favourite, or not."""

        image_id: int
        favourite: bool

    class UndoRequested(Message):
        """The user asked to undo the last gallery action."""

    @dataclass
    class ReuseRequested(Message):
        """The user wants to generate again with this image's parameters."""

        image: ImageOut

    @dataclass
    class FullScreenRequested(Message):
        """The user wants to see the image full screen."""

        image: ImageOut

    @dataclass
    class PurgeRequested(Message):
        """The user wants the trash (or the marked images in it) deleted for good."""

        ids: list[int]

    layout_mode: var[LayoutMode] = var("rows")

    def __init__(self, renderer: ResolvedRenderer, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.renderer = renderer
        #: the images, cursor and marks (the widget draws them and turns keys into changes)
        self.list = GalleryList()
        self.empty_text = "No images."
        self.thumbnails: LruCache[int, Fitted] = LruCache(64)
        self._page = -1
        self._timer: Timer | None = None
        self._announced: ImageOut | None = None

    def compose(self) -> ComposeResult:
        """A status line, then rows or the thumbnail grid."""
        yield Static("", classes="gallery--status", markup=False)
        yield Static("", classes="gallery--empty", markup=False)
        yield GalleryRows()
        yield ThumbGrid(self.renderer)

    @property
    def thumbnail_pad(self) -> RGB:
        """The colour thumbnails are letterboxed with (what is behind their cells)."""
        return self.query_one(ThumbGrid).background_colors[1].rgb

    @property
    def current(self) -> ImageOut | None:
        """The image under the cursor."""
        return self.list.current

    @property
    def items(self) -> list[ImageOut]:
        """The loaded images, newest first."""
        return self.list.items

    @property
    def cursor(self) -> int:
        """The cursor's index in `items`."""
        return self.list.cursor

    @property
    def marks(self) -> set[int]:
        """The ids of the marked images."""
        return self.list.marks

    @property
    def filters(self) -> ImageFilters:
        """The filters of the view shown."""
        return self.list.filters

    @property
    def total(self) -> int | None:
        """How many images the view holds on the server, when known."""
        return self.list.total

    # -- what the screen feeds in -------------------------------------------------------------

    def show_images(
        self,
        items: list[ImageOut],
        *,
        filters: ImageFilters,
        has_more: bool,
        total: int | None,
        select_id: int | None = None,
        empty_text: str = "No images.",
    ) -> None:
        """Replace the images (a new filter or a reload); the cursor goes to `select_id`."""
        self.list.replace(items, filters, has_more, total, select_id)
        self.empty_text = empty_text
        self._announced = None
        self._redraw()
        self.refresh_bindings()  # keep or restore, trash or purge: the view decides

    def append_images(self, items: list[ImageOut], *, has_more: bool) -> None:
        """Add the next page of images at the end."""
        self.list.append(items, has_more)
        self._redraw()

    def set_total(self, total: int | None) -> None:
        """How many images the current filter matches on the server, for the status line."""
        self.list.total = total
        self._update_status()

    def update_images(self, images: list[ImageOut], select: bool = False) -> None:
        """Fold fresh copies of images in: replace, insert (newest first) or drop by the filter."""
        self.list.fold_in(images, select)
        self._redraw()

    def drop_images(self, ids: list[int]) -> None:
        """Images deleted for good: out of the list (and the count)."""
        for image_id in ids:
            if self.list.remove(image_id) and self.list.total is not None:
                self.list.total -= 1
        self._redraw()

    def set_thumbnail(self, image_id: int, fitted: Fitted) -> None:
        """A thumbnail arrived: remember it and draw it if its cell is on screen."""
        self.thumbnails.put(image_id, fitted)
        if self.layout_mode == "grid":
            self.query_one(ThumbGrid).show_thumbnail(self.list, image_id, fitted)

    # -- layout ---------------------------------------------------------------------------------

    def watch_layout_mode(self) -> None:
        """Switch between rows and the grid."""
        self.call_after_refresh(self._apply_layout)

    def on_resize(self, event: Resize) -> None:
        """Fit the grid to the space there is."""
        self.call_after_refresh(self._apply_layout)

    async def _apply_layout(self) -> None:
        grid = self.query_one(ThumbGrid)
        rows_view = self.query_one(GalleryRows)
        grid_mode = self.layout_mode == "grid"
        grid.display, rows_view.display = grid_mode, not grid_mode
        if grid_mode:
            cols = max(1, min(MAX_GRID[0], self.size.width // CELL_WIDTH))
            rows = max(1, min(MAX_GRID[1], (self.size.height - 1) // CELL_HEIGHT))
            if (cols, rows) != (grid.cols, grid.rows):
                await grid.set_shape(cols, rows)
                self._page = -1
        self._redraw()

    @property
    def page_size(self) -> int:
        """Images on one page: the grid's cells, or the visible rows."""
        if self.layout_mode == "grid":
            return max(self.query_one(ThumbGrid).per_page, 1)
        return max(self.query_one(GalleryRows).size.height, 1)

    # -- drawing --------------------------------------------------------------------------------

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        self.list.clamp()
        empty = self.query_one(".gallery--empty", Static)
        empty.update(self.empty_text)
        empty.display = not self.items
        if self.layout_mode == "grid":
            self._page = -1
            self._draw_page()
        else:
            self.query_one(GalleryRows).show(self.items, self.marks, self.cursor)
        self._update_status()
        self._schedule_highlight()

    def _draw_page(self) -> None:
        grid = self.query_one(ThumbGrid)
        if not grid.per_page:
            return
        page = self.cursor // grid.per_page
        if page == self._page:
            return
        self._page = page
        missing = grid.show_page(self.list, page * grid.per_page, self.thumbnails)
        if missing:
            self.post_message(self.ThumbnailsWanted(missing, THUMB_BOX))

    def _update_status(self) -> None:
        # one fixed line: no layout pass, which would repaint the preview beside it too
        self.query_one(".gallery--status", Static).update(self.list.status(), layout=False)

    def _move_to(self, cursor: int) -> None:
        cursor = max(0, min(cursor, len(self.items) - 1))
        if cursor == self.cursor or not self.items:
            return
        old, self.list.cursor = self.cursor, cursor
        if self.layout_mode == "grid":
            grid = self.query_one(ThumbGrid)
            if old // grid.per_page == cursor // grid.per_page and self._page >= 0:
                cells = grid.cells
                cells[old % grid.per_page].set_cursor(False)
                cells[cursor % grid.per_page].set_cursor(True)
            else:
                self._draw_page()
        else:
            self.query_one(GalleryRows).move_cursor(cursor)
        self._update_status()
        self._schedule_highlight()
        ahead = max(LOAD_AHEAD, 2 * self.page_size)
        if self.list.has_more and len(self.items) - cursor <= ahead:
            self.post_message(self.MoreWanted())

    def _schedule_highlight(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(PREVIEW_DELAY, self._announce_highlight)

    def _announce_highlight(self) -> None:
        image = self.current
        if image is not None and image != self._announced:
            self._announced = image
            self.post_message(self.ImageHighlighted(image))

    def _change_items(self, ids: list[int], **changes: object) -> None:
        """Show a change at once (the screen tells the server); the cursor stays in place."""
        self.list.change(ids, **changes)
        self._redraw()
        if self.list.has_more and len(self.items) - self.cursor <= LOAD_AHEAD:
            self.post_message(self.MoreWanted())

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keep outside the trash, restore and purge inside it; nothing to act on greys out."""
        in_trash = self.filters.state == "trashed"
        available = True if self.items else None
        if action in ("keep", "trash"):
            return available if not in_trash else False
        if action in ("restore", "purge"):
            return available if in_trash else False
        if action in ("favourite", "mark", "reuse", "full_screen"):
            return available
        return True

    def action_move(self, where: str) -> None:
        """Move the cursor: by one, by a row of the grid, by a page, to either end."""
        grid_cols = self.query_one(ThumbGrid).cols if self.layout_mode == "grid" else 1
        step = {
            "up": -grid_cols,
            "down": grid_cols,
            "left": -1,
            "right": 1,
            "page_up": -self.page_size,
            "page_down": self.page_size,
        }
        if where == "first":
            self._move_to(0)
        elif where == "last":
            self._move_to(len(self.items) - 1)
        else:
            self._move_to(self.cursor + step[where])

    def action_keep(self) -> None:
        """Keep the image or the marked ones."""
        ids = self.list.targets()
        if ids:
            self._change_items(ids, state="kept")
            self.post_message(self.ImagesChanged("keep", ids))

    def action_restore(self) -> None:
        """Take the image or the marked ones out of the trash."""
        ids = self.list.targets()
        if ids:
            self._change_items(ids, state="inbox", trashed_at=None)
            self.post_message(self.ImagesChanged("restore", ids))

    def action_trash(self) -> None:
        """Trash the image or the marked ones, no questions: `u` brings them back."""
        if self.filters.state == "trashed":
            return
        ids = self.list.targets()
        if ids:
            self._change_items(ids, state="trashed")
            self.post_message(self.ImagesChanged("trash", ids))

    def action_favourite(self) -> None:
        """Toggle the favourite flag of the image."""
        image = self.current
        if image is None:
            return
        self._change_items([image.id], favourite=not image.favourite)
        self.post_message(self.FavouriteToggled(image.id, not image.favourite))

    def action_mark(self) -> None:
        """Mark or unmark the image, then move on."""
        image = self.current
        if image is None:
            return
        self.marks.symmetric_difference_update({image.id})
        if self.layout_mode == "grid":
            grid = self.query_one(ThumbGrid)
            grid.cells[self.cursor % grid.per_page].update_caption(image, image.id in self.marks)
        else:
            self.query_one(GalleryRows).refresh_item(self.cursor)
        self._update_status()
        self._move_to(self.cursor + 1)

    def action_clear_marks(self) -> None:
        """Forget every mark."""
        if self.marks:
            self.marks.clear()
            self._redraw()

    def action_undo(self) -> None:
        """Ask for the last action to be undone (repeatable)."""
        self.post_message(self.UndoRequested())

    def action_reuse(self) -> None:
        """Generate again with this image's parameters."""
        if self.current:
            self.post_message(self.ReuseRequested(self.current))

    def action_full_screen(self) -> None:
        """Show the image full screen."""
        if self.current:
            self.post_message(self.FullScreenRequested(self.current))

    def action_purge(self) -> None:
        """Delete the trash for good (the screen asks once)."""
        if self.filters.state == "trashed" and self.items:
            self.post_message(self.PurgeRequested(sorted(self.marks)))
