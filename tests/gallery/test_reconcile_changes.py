"""Reconciling only what changed since the last reconcile: every change made by hand is still
found, and the images of folders nobody touched are left as they are."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gallery.helpers import add_on_day, age_folders, make_png
from tsr.errors import NotFound, TsrError
from tsr.gallery import GalleryStore
from tsr.gallery.clean_stop import RECORD_NAME, record_clean_stop, take_clean_stop
from tsr.gallery.reconcile import reconcile_changes
from tsr.schemas.images import ImageFilters

DAYS = [datetime(2026, 3, day, 12, tzinfo=UTC) for day in (1, 2, 3, 4)]


def _age(store: GalleryStore) -> None:
    age_folders(store.root, store.trash_dir, store.thumbs_dir)


def test_changes_made_by_hand_since_the_last_reconcile_are_found(store: GalleryStore) -> None:
    deleted, trashed, beside, untouched = (
        add_on_day(store, day, f"day {n}", seed=n) for n, day in enumerate(DAYS)
    )
    already_trashed = add_on_day(store, DAYS[3], "in the trash", seed=9)
    store.trash([already_trashed])
    _age(store)
    _, stamps = reconcile_changes(store, None)

    # by hand, server down: day 1's file deleted, day 2's moved into the trash, a PNG dropped
    # into day 3's folder; day 4 (one image in, one in the trash) left alone
    store.path_of(deleted).unlink()
    into_trash = store.location(trashed, "trashed")
    into_trash.parent.mkdir(parents=True)
    store.path_of(trashed).rename(into_trash)
    dropped = store.path_of(beside).parent / "dropped.png"
    dropped.write_bytes(make_png(text="dropped by hand\nSteps: 7, Seed: 77, Size: 64x64"))

    report, _ = reconcile_changes(store, stamps)

    assert report.rows_removed == [deleted]
    assert report.states_fixed == [trashed]
    assert len(report.files_added) == 1
    with pytest.raises(NotFound):
        store.get(deleted)
    assert store.get(trashed).state == "trashed"
    adopted = store.get(report.files_added[0])
    assert (adopted.prompt, adopted.seed, adopted.state) == ("dropped by hand", 77, "inbox")
    assert not dropped.exists()
    assert store.get(beside).state == "inbox"
    assert store.get(untouched).state == "inbox"
    assert store.get(already_trashed).state == "trashed"
    assert store.path_of(untouched).is_file() and store.path_of(already_trashed).is_file()


def test_nothing_changed_means_nothing_reported_and_nothing_lost(store: GalleryStore) -> None:
    ids = [add_on_day(store, day, f"day {n}", seed=n) for n, day in enumerate(DAYS)]
    store.trash(ids[:1])
    _age(store)
    _, stamps = reconcile_changes(store, None)

    report, again = reconcile_changes(store, stamps)

    assert report.model_dump() == reconcile_changes(store, again)[0].model_dump()
    assert (report.rows_removed, report.files_added, report.states_fixed) == ([], [], [])
    assert sorted(image.id for image in store.list(ImageFilters(state="all")).items) == ids


def test_a_folder_changed_as_it_was_stamped_is_read_again(store: GalleryStore) -> None:
    # a file system with coarse times: a deletion within the same tick leaves the folder's
    # time as it was, so a folder stamped moments after a change cannot be trusted later
    gone, stays = (add_on_day(store, DAYS[0], f"same day {n}", seed=n) for n in (1, 2))
    _, stamps = reconcile_changes(store, None)
    folder = store.path_of(gone).parent
    before = folder.stat()
    store.path_of(gone).unlink()
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))

    report, _ = reconcile_changes(store, stamps)

    assert report.rows_removed == [gone]
    assert store.get(stays).state == "inbox"


def test_a_file_rewritten_in_place_needs_a_deep_reconcile(store: GalleryStore) -> None:
    # rewriting a file in place leaves its folder's time alone: only a deep reconcile,
    # which reads every file whatever changed, notices
    image = add_on_day(store, DAYS[0], "rewritten", seed=3)
    _age(store)
    _, stamps = reconcile_changes(store, None)
    path = store.path_of(image)
    folder_times = path.parent.stat()
    path.write_bytes(make_png((1, 2, 3), (80, 80), "rewritten\nSteps: 5, Seed: 3, Size: 80x80"))
    os.utime(path.parent, ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))

    report, _ = reconcile_changes(store, stamps, deep=True)

    assert report.rows_updated == [image]
    assert store.get(image).file_size == path.stat().st_size


@pytest.mark.parametrize("mount_point_left", [False, True], ids=["folder gone", "empty folder"])
def test_a_gallery_folder_gone_missing_is_never_taken_as_everything_deleted(
    store: GalleryStore, mount_point_left: bool
) -> None:
    # an unmounted disk takes the folder away, or leaves its mount point: empty, same name
    ids = [add_on_day(store, day, f"day {n}", seed=n) for n, day in enumerate(DAYS)]
    _age(store)
    _, stamps = reconcile_changes(store, None)
    store.root.rename(store.root.with_name("unmounted"))
    if mount_point_left:
        store.root.mkdir()

    with pytest.raises(TsrError, match="holds none of the 4 images"):
        reconcile_changes(store, stamps)
    assert sorted(image.id for image in store.list().items) == ids


def test_a_change_on_one_side_of_a_day_keeps_the_images_on_the_other(
    store: GalleryStore,
) -> None:
    # a day's images live in its folder under the gallery and under the trash: a change to one
    # folder must not make the other's images look missing
    shown, trashed = (add_on_day(store, DAYS[0], f"side {n}", seed=n) for n in (1, 2))
    store.trash([trashed])
    _age(store)
    _, stamps = reconcile_changes(store, None)
    dropped = store.path_of(shown).parent / "dropped.png"
    dropped.write_bytes(make_png(text="dropped\nSteps: 7, Seed: 5, Size: 64x64"))

    report, _ = reconcile_changes(store, stamps)

    assert (report.rows_removed, len(report.files_added)) == ([], 1)
    assert store.get(trashed).state == "trashed"
    assert store.path_of(trashed).is_file()
    assert store.get(shown).state == "inbox"


def test_a_day_folder_deleted_by_hand_forgets_its_images(store: GalleryStore) -> None:
    first, second, other_day = (
        add_on_day(store, day, f"image {n}", seed=n)
        for n, day in enumerate([DAYS[0], DAYS[0], DAYS[1]])
    )
    _age(store)
    _, stamps = reconcile_changes(store, None)
    shutil.rmtree(store.path_of(first).parent)

    report, _ = reconcile_changes(store, stamps)

    assert sorted(report.rows_removed) == sorted([first, second])
    assert [image.id for image in store.list().items] == [other_day]


def test_a_day_after_the_last_full_walk_a_start_walks_everything_again(
    store: GalleryStore, tmp_path: Path
) -> None:
    # what no folder stamp shows, e.g. a folder restored from a backup by `cp -a` (its old
    # mtime put back on the same folder), is caught by the next full walk: at most a day away
    gone, stays = (add_on_day(store, DAYS[0], f"restored {n}", seed=n) for n in (1, 2))
    _age(store)
    _, stamps = reconcile_changes(store, None)
    record = tmp_path / RECORD_NAME
    record_clean_stop(record, store, stamps)
    assert take_clean_stop(record, store) is not None  # fresh: the next start may trust it
    assert not record.exists()  # taken back means gone: a crash from here leaves none
    record_clean_stop(record, store, stamps)
    folder = store.path_of(gone).parent
    before = folder.stat()
    store.path_of(gone).unlink()
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert take_clean_stop(record, store, max_age=0) is None
    report, _ = reconcile_changes(store, None)

    assert report.rows_removed == [gone]
    assert store.get(stays).state == "inbox"
