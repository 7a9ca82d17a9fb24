"""What the gallery service does when a server starts: reconcile the folder, purge old trash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api_images.conftest import MODES, SEED_WORD, seed, serving
from tests.gallery.helpers import make_png
from tests.server.conftest import make_config
from tsr.db.database import db, init_database
from tsr.db.images import GalleryImage
from tsr.errors import NotFound
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageFilters


@pytest.mark.parametrize("mode", MODES)
def test_files_changed_while_the_server_was_down_are_picked_up_at_start(
    mode: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ids = seed(home)
    with serving(mode, tmp_path, home) as served:
        first = served.client.images.get(ids[0])
    # by hand, server down: a PNG dropped into the gallery, and one image's file deleted
    dropped = home / "gallery" / "by hand" / "holiday.png"
    dropped.parent.mkdir()
    dropped.write_bytes(
        make_png((10, 20, 30), (24, 24), "a holiday snapshot\nSteps: 12, Seed: 77, Size: 24x24")
    )
    (home / "gallery" / first.file).unlink()
    with serving(mode, tmp_path, home) as served:
        page = served.client.images.list(ImageFilters(prompt="holiday"))
        assert [(image.seed, image.steps, image.width) for image in page.items] == [(77, 12, 24)]
        assert (home / "gallery" / page.items[0].file).is_file()
        assert not dropped.exists()
        with pytest.raises(NotFound):
            served.client.images.get(ids[0])
        seeded_left = served.client.images.list(ImageFilters(prompt=SEED_WORD)).items
        assert sorted(image.id for image in seeded_left) == sorted(ids[1:])


def trash_days_ago(home: Path, image_ids: list[int], days: float) -> None:
    """Trash images as if it had happened `days` days ago (the server is not running)."""
    config = make_config(home)
    init_database(config.db_path())
    GalleryStore(config.gallery_dir()).trash(image_ids)
    moment = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    with db.connection_context():
        GalleryImage.update(trashed_at=moment).where(GalleryImage.id.in_(image_ids)).execute()
    db.close()


@pytest.mark.parametrize("mode", MODES)
def test_trash_older_than_trash_days_is_purged_at_start(mode: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids = seed(home)
    trash_days_ago(home, [ids[0]], 10)
    trash_days_ago(home, [ids[1]], 1)
    old_file = GalleryStore(home / "gallery").location(ids[0], "trashed")
    assert old_file.is_file()
    with serving(mode, tmp_path, home) as served:
        # without [server] trash_days nothing is purged by age
        assert served.client.images.get(ids[0]).state == "trashed"
    with serving(mode, tmp_path, home, trash_days=7) as served:
        with pytest.raises(NotFound):
            served.client.images.get(ids[0])
        assert served.client.images.get(ids[1]).state == "trashed"
        assert served.client.images.get(ids[2]).state == "inbox"
        assert served.client.images.stats().trashed == 1
    assert not old_file.exists()


@pytest.mark.parametrize("mode", MODES)
def test_a_gallery_folder_gone_missing_forgets_nothing(mode: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids = seed(home)
    # an unmounted disk looks like an empty gallery folder: the rows must survive the start
    (home / "gallery").rename(tmp_path / "unmounted")
    with serving(mode, tmp_path, home) as served:
        assert served.client.images.get(ids[0]).id == ids[0]
        assert served.client.images.stats().inbox == len(ids)
        with pytest.raises(NotFound, match="missing from the gallery folder"):
            served.client.images.file(ids[0])
