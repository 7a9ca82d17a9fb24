"""Pruning the gallery by keys against the real `local` server: keep, trash, undo, trash view."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import make_app, wait_for
from tests.tui.seed import seed_gallery
from tsr.client import connect
from tsr.config import load_config
from tsr.tui.screens.confirm import ConfirmScreen
from tsr.tui.screens.full_image import FullImageScreen
from tsr.tui.screens.gallery import GalleryScreen
from tsr.tui.widgets.gallery import Gallery
from tsr.tui.widgets.picture import Picture


@pytest.fixture
def image_ids(home: Path) -> list[int]:
    """Twelve PNGs in the gallery's inbox, newest first."""
    return seed_gallery(load_config(), 12)


def server_states(ids: list[int]) -> dict[int, str]:
    """What the server says about each image (asked with a separate, sync client)."""
    from tsr.schemas.images import ImageOut

    with connect("local") as client:
        return {i: client.get(f"/api/images/{i}/meta", ImageOut).state for i in ids}


async def test_prune_ten_images_by_keys_then_undo(image_ids: list[int]) -> None:
    app = make_app(start_pane="gallery")
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.screen.query_one(Gallery)
        await wait_for(pilot, lambda: len(gallery.items) == 12, "the inbox")
        # keep, trash, trash, keep, mark two and trash them, keep, trash x3: ten images decided
        await pilot.press("space", "d", "delete", "space", "m", "m", "d", "space", "d", "d", "d")
        await wait_for(pilot, lambda: len(gallery.items) == 2, "ten images to leave the inbox")
        await pilot.pause(0.5)
        assert [image.id for image in gallery.items] == image_ids[10:]
        states = server_states(image_ids)
        kept = [image_ids[i] for i in (0, 3, 6)]
        trashed = [image_ids[i] for i in (1, 2, 4, 5, 7, 8, 9)]
        assert [i for i, state in states.items() if state == "kept"] == kept
        assert sorted(i for i, state in states.items() if state == "trashed") == sorted(trashed)
        # the count comes back from the server once the last change has reached it
        status = gallery.query_one(".gallery--status")
        await wait_for(pilot, lambda: str(status.render()) == "inbox · 1/2", "the count")

        await pilot.press("u", "u")  # the last two trashes come back, the cursor on them
        await wait_for(pilot, lambda: len(gallery.items) == 4, "two undos")
        assert image_ids[9] in [image.id for image in gallery.items]
        assert gallery.current is not None and gallery.current.id in image_ids[8:10]
        states = server_states(image_ids[8:10])
        assert set(states.values()) == {"inbox"}

        await pilot.press("T")  # the trash: restore one, purge the rest (asked once)
        await wait_for(pilot, lambda: gallery.filters.state == "trashed", "the trash view")
        await wait_for(pilot, lambda: len(gallery.items) == 5, "five trashed images")
        await pilot.press("space")
        await wait_for(pilot, lambda: len(gallery.items) == 4, "a restore")
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: not gallery.items, "the trash to empty")
        with connect("local") as client:
            stats = client.get("/api/images/stats", dict)
        assert stats["trashed"] == 0 and stats["inbox"] + stats["kept"] == 8


async def test_the_preview_follows_and_opens_full_screen(image_ids: list[int]) -> None:
    app = make_app(start_pane="gallery")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, GalleryScreen)
        gallery = screen.query_one(Gallery)
        await wait_for(pilot, lambda: len(gallery.items) == 12, "the inbox")
        assert gallery.layout_mode == "grid"
        preview = screen.query_one("#gallery-preview", Picture)
        await wait_for(pilot, lambda: preview.image_key == image_ids[0], "the first preview")
        await pilot.press("right", "right")
        await wait_for(pilot, lambda: preview.image_key == image_ids[2], "the preview to follow")
        details = str(screen.query_one("#gallery-details").render())
        assert "picture 2" in details and "seed 1002" in details
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, FullImageScreen), "full screen")
        full = app.screen.query_one(Picture)
        await wait_for(pilot, lambda: full.image_key == image_ids[2], "the full image")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the gallery again")


async def test_reuse_fills_the_generate_form(image_ids: list[int]) -> None:
    app = make_app(start_pane="gallery")
    async with app.run_test(size=(120, 40)) as pilot:
        gallery = app.screen.query_one(Gallery)
        await wait_for(pilot, lambda: len(gallery.items) == 12, "the inbox")
        await pilot.press("right", "r")
        await wait_for(pilot, lambda: app.current_mode == "create", "the generate pane")
        prompt = app.screen.query_one("#form-prompt")
        await wait_for(pilot, lambda: "picture 1" in prompt.text, "the prompt")  # type: ignore[attr-defined]
        seed = app.screen.query_one("#form-seed")
        assert seed.value == "1001"  # type: ignore[attr-defined]


async def test_filters_by_prompt_text_and_views(image_ids: list[int]) -> None:
    app = make_app(start_pane="gallery")
    async with app.run_test(size=(80, 24)) as pilot:
        gallery = app.screen.query_one(Gallery)
        await wait_for(pilot, lambda: len(gallery.items) == 12, "the inbox")
        await pilot.press("f", "down", "f")  # two favourites
        await pilot.press("slash")
        await pilot.pause(0.3)
        await pilot.press(*"red fox", "enter")
        await wait_for(pilot, lambda: len(gallery.items) == 2, "the foxes")
        assert all("red fox" in image.prompt for image in gallery.items)
        await pilot.press("slash")
        await pilot.pause(0.3)
        await pilot.press("ctrl+l")  # clear the text filter
        await wait_for(pilot, lambda: len(gallery.items) == 12, "the whole inbox")
        await pilot.press("F")
        await wait_for(pilot, lambda: len(gallery.items) == 2, "the favourites")
        assert {image.id for image in gallery.items} == set(image_ids[:2])
        assert str(gallery.query_one(".gallery--status").render()) == "favourites · 1/2"
