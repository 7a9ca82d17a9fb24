"""Reconcile: rows and files brought back into agreement, each way, without losing anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gallery.helpers import make_png, params
from tsr.db.database import db
from tsr.db.images import GalleryImage, delete_rows
from tsr.errors import TsrError
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageFilters


def _forget_row(image_id: int) -> None:
    with db.connection_context():
        delete_rows([image_id])


def test_a_file_without_a_row_gets_its_row_back_exactly(store: GalleryStore) -> None:
    image = store.save(make_png(), params(prompt="an orphan", job="job-9", batch_index=3))
    _forget_row(image.id)
    assert store.list().items == []

    report = store.reconcile()
    assert report.files_added == [image.id]
    rebuilt = store.get(image.id)
    assert rebuilt.model_dump() == image.model_dump()
    assert store.list(ImageFilters(prompt="orphan")).items == [rebuilt]


def test_a_row_without_a_file_is_removed(store: GalleryStore) -> None:
    gone, stays = store.save(make_png(), params()).id, store.save(make_png(), params()).id
    store.path_of(gone).unlink()
    report = store.reconcile()
    assert report.rows_removed == [gone]
    assert [image.id for image in store.list().items] == [stays]


def test_the_files_place_decides_trashed_or_not(store: GalleryStore) -> None:
    outside, inside = store.save(make_png(), params()).id, store.save(make_png(), params()).id
    store.keep([inside])
    store.trash([inside])
    # as if a crash came between the rename and the commit, or a user moved files by hand
    moved_in = store.location(outside, "trashed")
    moved_in.parent.mkdir(parents=True, exist_ok=True)
    store.path_of(outside).rename(moved_in)
    store.path_of(inside).rename(store.location(inside, "kept"))

    report = store.reconcile()
    assert sorted(report.states_fixed) == sorted([outside, inside])
    assert store.get(outside).state == "trashed"
    assert store.get(inside).state == "kept"
    assert store.restore([outside]).ids == [outside]
    assert store.path_of(outside).is_file()


def test_temp_files_are_deleted_and_foreign_files_adopted_or_set_aside(
    store: GalleryStore,
) -> None:
    image = store.save(make_png(), params())
    folder = store.path_of(image.id).parent
    (folder / f".{image.id}.png.1234abcd.tmp").write_bytes(b"half a png")
    store.thumbnail(image.id, 32)
    (store.thumbs_dir / "32" / ".x.webp.99.tmp").write_bytes(b"half")
    (store.root / "dropped.png").write_bytes(make_png(color=(0, 255, 0)))
    (store.root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing more")
    shutil.copy(store.path_of(image.id), store.root / "copy.png")

    report = store.reconcile()
    assert report.temp_files_removed == 2
    assert len(report.files_added) == 1
    adopted = store.get(report.files_added[0])
    assert adopted.source == "unknown" and store.path_of(adopted.id).is_file()
    assert not (store.root / "dropped.png").exists()
    assert sorted(Path(name).name for name in report.set_aside) == ["copy.png", "junk.png"]
    assert (store.root / ".set-aside" / "junk.png").is_file()
    assert store.reconcile().model_dump() == {
        "files_added": [],
        "rows_removed": [],
        "states_fixed": [],
        "rows_updated": [],
        "temp_files_removed": 0,
        "set_aside": [],
    }


def test_deep_reconcile_notices_changed_bytes(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    path = store.path_of(image.id)
    data = bytearray(path.read_bytes())
    data[-13] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    assert store.reconcile().rows_updated == []
    assert store.reconcile(deep=True).rows_updated == [image.id]
    assert store.get(image.id).sha256 != image.sha256


def test_an_empty_or_missing_folder_does_not_wipe_the_index(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    shutil.rmtree(store.root)
    with pytest.raises(TsrError, match="mounted"):
        store.reconcile()
    with db.connection_context():
        assert GalleryImage.select().count() == 1
    assert store.reconcile(force=True).rows_removed == [image.id]
