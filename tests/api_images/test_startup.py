"""What the gallery service does when a server starts: reconcile the folder, purge old trash."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api_images.conftest import MODES, SEED_WORD, seed, serving
from tests.gallery.helpers import add_on_day, age_folders, make_png
from tests.server.conftest import make_config
from tsr.db.database import db, init_database
from tsr.db.images import GalleryImage, delete_rows
from tsr.errors import NotFound
from tsr.gallery import GalleryStore
from tsr.gallery.clean_stop import RECORD_NAME
from tsr.schemas.images import ImageFilters
from tsr.server.gallery_service import build_store


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


DAYS = [datetime(2026, 5, day, 9, tzinfo=UTC) for day in (10, 11, 12)]


def seed_days(home: Path) -> list[int]:
    """One image on each of DAYS, in folders last changed a day ago (the server is not running)."""
    config = make_config(home)
    init_database(config.db_path())
    store = build_store(config)
    ids = [add_on_day(store, day, f"{SEED_WORD} on day {n}", seed=n) for n, day in enumerate(DAYS)]
    db.close()
    age_folders(store.root, store.thumbs_dir)
    return ids


def _gallery_file(home: Path, served_file: str) -> Path:
    return home / "gallery" / served_file


@pytest.mark.parametrize("mode", MODES)
def test_after_a_clean_stop_changes_made_by_hand_are_all_found(mode: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    deleted, dropped_beside, untouched = seed_days(home)
    with serving(mode, tmp_path, home) as served:
        deleted_file = _gallery_file(home, served.client.images.get(deleted).file)
        beside_file = _gallery_file(home, served.client.images.get(dropped_beside).file)
    # the clean stop recorded the folders: the next start reads only those changed since
    assert (home / RECORD_NAME).is_file()
    deleted_file.unlink()
    dropped = beside_file.parent / "holiday.png"
    dropped.write_bytes(make_png(text="a holiday snapshot\nSteps: 12, Seed: 77, Size: 64x64"))

    with serving(mode, tmp_path, home) as served:
        assert not (home / RECORD_NAME).exists()  # a crash from here on reconciles everything
        page = served.client.images.list(ImageFilters(prompt="holiday"))
        assert [(image.seed, image.steps) for image in page.items] == [(77, 12)]
        with pytest.raises(NotFound):
            served.client.images.get(deleted)
        left = served.client.images.list(ImageFilters(prompt=SEED_WORD)).items
        assert sorted(image.id for image in left) == [dropped_beside, untouched]
        assert served.client.images.file(untouched).startswith(b"\x89PNG")


@pytest.mark.parametrize("mode", MODES)
def test_rows_changed_while_the_server_was_down_are_all_checked(mode: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids = seed_days(home)
    with serving(mode, tmp_path, home):
        pass
    # a database restored from an older copy, say: the rows no longer match what was recorded,
    # though no folder changed; the file still carries its parameters
    init_database(make_config(home).db_path())
    with db.connection_context():
        delete_rows([ids[1]])
    db.close()

    with serving(mode, tmp_path, home) as served:
        back = served.client.images.list(ImageFilters(prompt=SEED_WORD)).items
        assert sorted(image.id for image in back) == ids
        assert served.client.images.get(ids[1]).seed == 1


def test_a_server_that_crashed_checks_everything_at_its_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gone, stays, _other = seed_days(home)
    with serving("serve", tmp_path, home):
        pass  # a clean stop: a record for the next start, which the crash must not leave valid
    with serving("serve", tmp_path, home) as served:
        gone_file = _gallery_file(home, served.client.images.get(gone).file)
        assert served.process is not None
        served.process.process.kill()
        served.process.process.wait()
    # changed so that no folder's time shows it (a file system with coarse times): only a full
    # reconcile can notice, and only the lack of a clean stop calls for one
    folder = gone_file.parent.stat()
    gone_file.unlink()
    os.utime(gone_file.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))

    with serving("serve", tmp_path, home) as served:
        with pytest.raises(NotFound):
            served.client.images.get(gone)
        assert served.client.images.get(stays).state == "inbox"
