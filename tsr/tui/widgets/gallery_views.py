"""How the gallery draws its images: rows of text (narrow) or a page of thumbnails (wide)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from textual.app import ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tsr.schemas.images import ImageOut
from tsr.tui.text import clip, one_line
from tsr.tui.widgets.gallery_list import GalleryList
from tsr.tui.widgets.picture import Fitted, LruCache, Picture, ResolvedRenderer

#: the columns of a row after the prompt
MODEL_WIDTH = 15
SIZE_WIDTH = 9
#: one thumbnail's image box in cells, and the caption line under it
THUMB_BOX = (20, 9)
CELL_WIDTH = THUMB_BOX[0] + 2
CELL_HEIGHT = THUMB_BOX[1] + 2


def state_glyphs(image: ImageOut, marked: bool) -> str:
    """Three one-cell columns: marked, state (inbox, kept, trashed), favourite."""
    state = {"inbox": "•", "kept": "✓", "trashed": "✗"}[image.state]
    return ("▸" if marked else " ") + state + ("★" if image.favourite else " ")


def checkpoint_label(image: ImageOut) -> str:
    """The checkpoint an image was made with, short."""
    return image.checkpoint or "?"


class GalleryRows(Widget):
    """A list of images, one row each; draws only the rows that change when the cursor moves."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "gallery-rows--cursor",
        "gallery-rows--marked",
        "gallery-rows--dim",
    }
    DEFAULT_CSS = """
    GalleryRows { height: 1fr; }
    GalleryRows > .gallery-rows--cursor { background: $accent 30%; text-style: bold; }
    Gallery:focus > GalleryRows > .gallery-rows--cursor { background: $accent 70%; }
    GalleryRows > .gallery-rows--marked { color: $warning; }
    GalleryRows > .gallery-rows--dim { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: Sequence[ImageOut] = ()
        self.marks: set[int] = set()
        self.cursor = 0
        self.top = 0

    def show(self, items: Sequence[ImageOut], marks: set[int], cursor: int) -> None:
        """Draw `items` with the cursor on `cursor` (a full redraw)."""
        self.items, self.marks, self.cursor = items, marks, cursor
        self._scroll_to_cursor()
        self.refresh()

    def move_cursor(self, cursor: int) -> None:
        """Move the highlight, redrawing two rows (or the page when it scrolls)."""
        old, self.cursor = self.cursor, cursor
        if self._scroll_to_cursor():
            self.refresh()
            return
        for index in (old, cursor):
            self.refresh(Region(0, index - self.top, self.size.width, 1))

    def refresh_item(self, index: int) -> None:
        """Redraw one row (its marks or state changed)."""
        self.refresh(Region(0, index - self.top, self.size.width, 1))

    def _scroll_to_cursor(self) -> bool:
        """Keep the cursor inside the window; True when the window moved."""
        height = max(self.size.height, 1)
        top = self.top
        if self.cursor < top:
            top = self.cursor
        elif self.cursor >= top + height:
            top = self.cursor - height + 1
        top = max(0, min(top, max(len(self.items) - height, 0)))
        moved, self.top = top != self.top, top
        return moved

    def on_resize(self) -> None:
        """Keep the cursor visible when the list gets shorter."""
        self._scroll_to_cursor()

    def render_line(self, y: int) -> Strip:
        """One image's row: marks, state, favourite, prompt, checkpoint, size."""
        width = self.size.width
        index = self.top + y
        base = self.rich_style
        if index >= len(self.items):
            return Strip.blank(width, base)
        image = self.items[index]
        style = base
        if image.id in self.marks:
            style += self.get_component_rich_style("gallery-rows--marked")
        if index == self.cursor:
            style += self.get_component_rich_style("gallery-rows--cursor")
        size = f"{image.width}x{image.height}".rjust(SIZE_WIDTH)
        model_width = MODEL_WIDTH if width >= 60 else (MODEL_WIDTH - 4 if width >= 44 else 0)
        prompt_width = max(width - 4 - model_width - len(size) - 2, 1)
        prompt = clip(one_line(image.prompt) or "(no prompt)", prompt_width)
        model = (
            clip(checkpoint_label(image), model_width - 1).ljust(model_width) if model_width else ""
        )
        dim = style + self.get_component_rich_style("gallery-rows--dim", partial=True)
        segments = [
            Segment(state_glyphs(image, image.id in self.marks) + " ", style),
            Segment(prompt.ljust(prompt_width) + " ", style),
            Segment(model + size + " ", dim),
        ]
        return Strip(segments).adjust_cell_length(width, style)


class ThumbCell(Widget):
    """One grid cell: a thumbnail (or its placeholder) over a one-line caption."""

    DEFAULT_CSS = f"""
    ThumbCell {{ width: {CELL_WIDTH}; height: {CELL_HEIGHT}; padding: 0 1; }}
    ThumbCell > Picture {{ width: {THUMB_BOX[0]}; height: {THUMB_BOX[1]}; }}
    ThumbCell > .thumb--caption {{ width: {THUMB_BOX[0]}; height: 1; color: $text-muted; }}
    ThumbCell > .thumb--caption.-cursor {{ background: $accent; color: $text; text-style: bold; }}
    ThumbCell > .thumb--caption.-marked {{ color: $warning; }}
    """

    def __init__(self, renderer: ResolvedRenderer) -> None:
        super().__init__()
        self.renderer = renderer
        self.image_id: int | None = None

    def compose(self) -> ComposeResult:
        """The picture and the caption."""
        yield Picture(self.renderer, "")
        yield Static("", classes="thumb--caption", markup=False)

    def show(self, image: ImageOut | None, marked: bool, fitted: Fitted | None) -> None:
        """Show `image` (its thumbnail when ready, else a placeholder); None empties the cell."""
        self.image_id = image.id if image else None
        picture = self.query_one(Picture)
        caption = self.query_one(".thumb--caption", Static)
        if image is None:
            picture.show_placeholder("")
            caption.update("", layout=False)
            caption.set_class(False, "-marked")
            return
        if fitted is not None:
            picture.show_image(fitted, key=image.id)
        elif picture.image_key != image.id or picture.image_key is None:
            picture.show_placeholder("…", key=None)
        self.update_caption(image, marked)

    def update_caption(self, image: ImageOut, marked: bool) -> None:
        """Rewrite the caption (marks, state, favourite, size)."""
        caption = self.query_one(".thumb--caption", Static)
        text = f"{state_glyphs(image, marked)} {image.width}x{image.height}"
        caption.update(text, layout=False)  # a fixed-size line: no layout pass
        caption.set_class(marked, "-marked")

    def set_cursor(self, on: bool) -> None:
        """Highlight the caption only: the thumbnail above it is not redrawn."""
        self.query_one(".thumb--caption", Static).set_class(on, "-cursor")


class ThumbGrid(Widget):
    """A page of thumbnails, `cols` by `rows`; the cells are reused from page to page."""

    DEFAULT_CSS = """
    ThumbGrid { layout: grid; grid-gutter: 0; height: 0; width: 0; }
    """

    def __init__(self, renderer: ResolvedRenderer, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.renderer = renderer
        self.cols = 0
        self.rows = 0

    @property
    def per_page(self) -> int:
        """Thumbnails on one page."""
        return self.cols * self.rows

    async def set_shape(self, cols: int, rows: int) -> None:
        """Lay out `cols` x `rows` cells (only when the shape changes)."""
        if (cols, rows) == (self.cols, self.rows):
            return
        self.cols, self.rows = cols, rows
        self.styles.grid_size_columns = cols
        self.styles.grid_size_rows = rows
        self.styles.width = cols * CELL_WIDTH
        self.styles.height = rows * CELL_HEIGHT
        await self.remove_children()
        await self.mount_all(ThumbCell(self.renderer) for _ in range(cols * rows))

    @property
    def cells(self) -> list[ThumbCell]:
        """The cells, left to right, top to bottom."""
        return list(self.query_children(ThumbCell))

    def show_page(
        self, images: GalleryList, start: int, thumbnails: LruCache[int, Fitted]
    ) -> list[ImageOut]:
        """Fill the cells from `start` (thumbnails known, placeholders else); those missing."""
        shown = images.items[start : start + self.per_page]
        missing: list[ImageOut] = []
        for offset, cell in enumerate(self.cells):
            image = shown[offset] if offset < len(shown) else None
            fitted = thumbnails.get(image.id) if image else None
            if image is not None and fitted is None:
                missing.append(image)
            cell.show(image, image is not None and image.id in images.marks, fitted)
            cell.set_cursor(start + offset == images.cursor)
        return missing

    def show_thumbnail(self, images: GalleryList, image_id: int, fitted: Fitted) -> None:
        """A thumbnail arrived: draw it if its image is on this page."""
        for cell in self.cells:
            if cell.image_id == image_id:
                image = next((it for it in images.items if it.id == image_id), None)
                cell.show(image, image_id in images.marks, fitted)
