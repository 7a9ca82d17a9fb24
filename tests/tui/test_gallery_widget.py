"""The gallery widget on its own: the cursor, pruning keys, marks and what it tells its screen."""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Static

from tsr.schemas.images import ImageFilters, ImageOut
from tsr.tui.widgets.gallery import Gallery
from tsr.tui.widgets.gallery_list import GalleryList
from tsr.tui.widgets.gallery_views import GalleryRows, ThumbCell, ThumbGrid


def make_images(count: int) -> list[ImageOut]:
    """`count` images, newest first (ids descend like the server's)."""
    return [
        ImageOut(
            id=1000 - n,
            file=f"2025/01/01/{1000 - n}.png",
            created=datetime(2025, 1, 1, 12, n),
            width=832,
            height=1216,
            file_size=1_500_000,
            sha256=f"{n:064x}",
            state="inbox",
            checkpoint="ponyDiffusionV6XL",
            prompt=f"a lighthouse at dusk, picture {n}",
            seed=n,
        )
        for n in range(count)
    ]


class GalleryHarness(App[None]):
    """A bare app holding one gallery, recording what it posts."""

    def __init__(self, layout: str = "rows") -> None:
        super().__init__()
        self.layout = layout
        self.posted: list[Message] = []

    def compose(self) -> ComposeResult:
        yield Gallery("halfcell", id="gallery")

    def on_mount(self) -> None:
        gallery = self.query_one(Gallery)
        gallery.layout_mode = self.layout  # type: ignore[assignment]
        gallery.focus()

    @on(Gallery.ImagesChanged)
    @on(Gallery.FavouriteToggled)
    @on(Gallery.UndoRequested)
    @on(Gallery.PurgeRequested)
    @on(Gallery.ReuseRequested)
    @on(Gallery.ImageHighlighted)
    @on(Gallery.ThumbnailsWanted)
    @on(Gallery.MoreWanted)
    def record(self, message: Message) -> None:
        self.posted.append(message)

    def changes(self) -> list[tuple[str, list[int]]]:
        return [(m.action, m.ids) for m in self.posted if isinstance(m, Gallery.ImagesChanged)]


async def test_trash_moves_on_to_the_next_image_without_asking() -> None:
    images = make_images(10)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=False, total=10
        )
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        assert app.changes() == [("trash", [images[0].id])]
        assert gallery.current == images[1]
        assert len(gallery.items) == 9
        assert app.screen.query(Gallery).first() is gallery  # no confirmation dialog came up


async def test_space_keeps_and_the_inbox_moves_on() -> None:
    images = make_images(5)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=False, total=5
        )
        await pilot.press("j", "space")
        await pilot.pause()
        assert app.changes() == [("keep", [images[1].id])]
        assert [image.id for image in gallery.items] == [images[i].id for i in (0, 2, 3, 4)]
        assert gallery.current == images[2]


async def test_kept_image_stays_in_a_view_of_everything_and_shows_kept() -> None:
    images = make_images(3)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="active"), has_more=False, total=3
        )
        await pilot.press("space")
        await pilot.pause()
        assert gallery.items[0].state == "kept"
        assert "✓" in gallery.query_one(GalleryRows).render_line(0).text


async def test_marked_images_are_trashed_together() -> None:
    images = make_images(6)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=False, total=6
        )
        await pilot.press("m", "j", "m", "d")
        await pilot.pause()
        assert app.changes() == [("trash", [images[0].id, images[2].id])]
        assert [image.id for image in gallery.items] == [images[i].id for i in (1, 3, 4, 5)]
        assert not gallery.marks


async def test_keys_that_do_not_apply_in_the_trash_are_refused() -> None:
    images = [image.model_copy(update={"state": "trashed"}) for image in make_images(3)]
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="trashed"), has_more=False, total=3
        )
        await pilot.press("d")
        await pilot.pause()
        assert app.changes() == []
        await pilot.press("space")  # in the trash, space restores
        await pilot.pause()
        assert app.changes() == [("restore", [images[0].id])]
        await pilot.press("P")
        await pilot.pause()
        purges = [m for m in app.posted if isinstance(m, Gallery.PurgeRequested)]
        assert len(purges) == 1 and purges[0].ids == []


async def test_preview_is_asked_for_once_the_cursor_rests() -> None:
    images = make_images(20)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=False, total=20
        )
        await pilot.pause(0.3)
        app.posted.clear()
        await pilot.press(*["down"] * 8)  # a held key: highlights only
        await pilot.pause(0.3)
        highlighted = [m for m in app.posted if isinstance(m, Gallery.ImageHighlighted)]
        assert [m.image for m in highlighted] == [images[8]]


async def test_grid_moves_by_rows_and_asks_for_a_page_of_thumbnails() -> None:
    images = make_images(30)
    app = GalleryHarness(layout="grid")
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=False, total=30
        )
        await pilot.pause()
        grid = gallery.query_one(ThumbGrid)
        assert grid.per_page > 1
        wanted = [m for m in app.posted if isinstance(m, Gallery.ThumbnailsWanted)]
        assert [image.id for image in wanted[-1].images] == [i.id for i in images[: grid.per_page]]
        await pilot.press("down")
        await pilot.pause()
        assert gallery.cursor == grid.cols
        cells = list(grid.query(ThumbCell))
        lit = [
            cell.image_id
            for cell in cells
            if cell.query_one(".thumb--caption").has_class("-cursor")
        ]
        assert lit == [images[grid.cols].id]


async def test_nearing_the_end_asks_for_more() -> None:
    images = make_images(30)
    app = GalleryHarness()
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.query_one(Gallery)
        gallery.show_images(
            list(images), filters=ImageFilters(state="inbox"), has_more=True, total=None
        )
        await pilot.press("pagedown")
        await pilot.pause()
        assert any(isinstance(m, Gallery.MoreWanted) for m in app.posted)
        status = gallery.query_one(".gallery--status", Static)
        assert str(status.content).endswith("/30+")  # more exist than are loaded


def test_fresh_copies_keep_the_cursor_on_its_image() -> None:
    images = make_images(5)
    state = GalleryList()
    state.replace(
        list(images), ImageFilters(state="inbox"), has_more=False, total=5, select_id=None
    )
    state.cursor = 2
    state.fold_in([images[2].model_copy(update={"favourite": True})])
    assert (
        state.current is not None and state.current.id == images[2].id and state.current.favourite
    )
    newest = images[0].model_copy(update={"id": 5000})
    state.fold_in([newest])  # a new image arrives on top
    assert state.items[0].id == 5000 and state.total == 6
    assert state.current is not None and state.current.id == images[2].id
    state.fold_in([images[2].model_copy(update={"state": "kept"})])  # kept elsewhere: it leaves
    assert state.total == 5 and state.current is not None and state.current.id == images[3].id
