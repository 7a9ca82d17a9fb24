"""Images in the terminal: the renderer the config chooses, images fitted off the main thread."""

from __future__ import annotations

import io
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from tsr.config import ImageRenderer


def _import_textual_image() -> None:
    """Import textual-image, whose import asks the terminal what it supports.

    With stdout a terminal but stdin redirected, its probe would fail with termios.error: hide
    stdin for the moment of the import, so it falls back to half cells without asking. A
    terminal that reports zero columns (a fresh pseudo-terminal) would divide by zero: assume
    the usual 10x20-pixel cells then.
    """
    stdout, stdin = sys.__stdout__, sys.__stdin__
    hide_stdin = (
        stdout is not None and stdout.isatty() and not (stdin is not None and stdin.isatty())
    )
    if hide_stdin:
        setattr(sys, "__stdin__", None)  # noqa: B010 (sys.__stdin__ is Final to type checkers)
    try:
        try:
            import textual_image.widget
        except ZeroDivisionError:
            from textual_image import _terminal

            setattr(_terminal.get_cell_size, "_result", _terminal.CellSize(10, 20))  # noqa: B010
            import textual_image.widget  # noqa: F401
    finally:
        if hide_stdin:
            setattr(sys, "__stdin__", stdin)  # noqa: B010


_import_textual_image()

from textual_image._terminal import get_cell_size  # noqa: E402
from textual_image.widget import (  # noqa: E402
    HalfcellImage,
    SixelImage,
    TGPImage,
    UnicodeImage,
)
from textual_image.widget import Image as AutoImage  # noqa: E402

ResolvedRenderer = Literal["tgp", "sixel", "halfcell", "unicode", "none"]
_WIDGETS: dict[str, type[Widget]] = {
    "tgp": TGPImage,
    "sixel": SixelImage,
    "halfcell": HalfcellImage,
    "unicode": UnicodeImage,
}


def resolve_renderer(choice: ImageRenderer, *, low_bandwidth: bool = False) -> ResolvedRenderer:
    """The renderer to use: `auto` is what the terminal supports (unicode on a slow link)."""
    if choice != "auto":
        return choice
    if low_bandwidth:
        return "unicode"
    for name, widget_class in _WIDGETS.items():
        if AutoImage is widget_class or issubclass(AutoImage, widget_class):
            return name  # type: ignore[return-value]
    return "halfcell"


@dataclass(frozen=True)
class Geometry:
    """How a renderer maps pixels to cells: the terminal's cell size and pixels drawn per cell."""

    renderer: ResolvedRenderer
    cell_width: int
    cell_height: int

    @classmethod
    def for_renderer(cls, renderer: ResolvedRenderer) -> Geometry:
        """The geometry of `renderer` in this terminal (10x20 pixel cells when it cannot tell)."""
        cell = get_cell_size()
        return cls(renderer, max(cell.width, 1), max(cell.height, 1))

    @property
    def pixels_per_cell(self) -> tuple[int, int]:
        """How many image pixels one cell shows across and down."""
        if self.renderer in ("tgp", "sixel"):
            return self.cell_width, self.cell_height
        if self.renderer == "unicode":
            return 1, 1
        return 1, 2

    def fit(self, width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
        """The cells (columns, rows) an image of `width`x`height` pixels fills inside `box`."""
        box_cols, box_rows = max(box[0], 1), max(box[1], 1)
        scale = min(box_cols * self.cell_width / width, box_rows * self.cell_height / height)
        cols = max(1, min(box_cols, round(width * scale / self.cell_width)))
        rows = max(1, min(box_rows, round(height * scale / self.cell_height)))
        return cols, rows


@dataclass(frozen=True)
class Fitted:
    """An image scaled for the terminal, and the cells it covers."""

    image: PILImage.Image
    cols: int
    rows: int
    #: the source had fewer pixels than the cells can show (a bigger source would look better)
    upscaled: bool = False


RGB = tuple[int, int, int]


def fit_image(
    data: bytes, box: tuple[int, int], geometry: Geometry, pad: RGB | None = None
) -> Fitted:
    """Decode `data` and scale it to fill `box` cells, keeping its shape (run it in a thread).

    With `pad`, the result is exactly `box` cells: the image centred on that colour. A picture
    that keeps one size never needs a layout pass, so showing the next image is one frame.
    """
    with PILImage.open(io.BytesIO(data)) as source:
        width, height = source.size
        cols, rows = geometry.fit(width, height, box)
        per_x, per_y = geometry.pixels_per_cell
        size = (cols * per_x, rows * per_y)
        # JPEG can decode at a fraction of its size, which is most of the work for big files
        source.draft("RGB", size)
        scaled = source.convert("RGB").resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    upscaled = size[0] > width or size[1] > height
    if pad is None:
        return Fitted(scaled, cols, rows, upscaled)
    canvas = PILImage.new("RGB", (box[0] * per_x, box[1] * per_y), pad)
    # whole cells of margin: an image cell never mixes picture and padding
    canvas.paste(scaled, ((box[0] - cols) // 2 * per_x, (box[1] - rows) // 2 * per_y))
    return Fitted(canvas, box[0], box[1], upscaled)


K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small least-recently-used map with a fixed number of entries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value for `key` (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value`, dropping the least recently used entry when full."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class Picture(Widget):
    """One image area: a placeholder until a fitted image arrives, then the image, centred."""

    DEFAULT_CSS = """
    Picture { align: center middle; }
    Picture > .picture--placeholder {
        width: 100%; height: 100%; content-align: center middle; color: $text-muted;
    }
    """

    def __init__(
        self,
        renderer: ResolvedRenderer,
        placeholder: str = "",
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.renderer = renderer
        self._placeholder_text = placeholder
        self._image: Widget | None = None
        self._fitted: Fitted | None = None
        self.image_key: object = None

    def compose(self) -> ComposeResult:
        """A placeholder, and the renderer's image widget (hidden until an image is shown)."""
        yield Static(self._placeholder_text, classes="picture--placeholder", markup=False)
        widget_class = _WIDGETS.get(self.renderer)
        if widget_class is not None:
            self._image = widget_class()
            self._image.display = False
            yield self._image

    def show_placeholder(self, text: str, key: object = None) -> None:
        """Show `text` instead of an image (while it loads, or when there is none)."""
        self.image_key = key
        self._fitted = None
        placeholder = self.query_one(".picture--placeholder", Static)
        placeholder.update(text)
        placeholder.display = True
        if self._image is not None and self._image.display:
            self._image.display = False
            self._image.image = None  # type: ignore[attr-defined]

    @property
    def pad(self) -> RGB:
        """The colour behind the picture, to letterbox images with."""
        return self.background_colors[1].rgb

    def show_image(self, fitted: Fitted, key: object = None) -> None:
        """Show a fitted image (placeholder text when the renderer is `none`)."""
        if self._image is None:
            self.show_placeholder(self._placeholder_text, key)
            return
        if key is not None and key == self.image_key and fitted is self._fitted:
            return  # the same picture: redrawing it would only cost bytes
        self.image_key = key
        self._fitted = fitted
        self.query_one(".picture--placeholder", Static).display = False
        if (self._image.styles.width, self._image.styles.height) != (fitted.cols, fitted.rows):
            self._image.styles.width = fitted.cols
            self._image.styles.height = fitted.rows
        self._image.image = fitted.image  # type: ignore[attr-defined]
        self._image.display = True
