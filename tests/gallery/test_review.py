"""Review actions on real files: keep, trash (a rename), restore, undo step by step, purge."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from tests.gallery.helpers import make_png, params
from tsr.db.database import db
from tsr.db.images import GalleryImage
from tsr.errors import BadRequest, NotFound
from tsr.gallery import GalleryStore


def _save(store: GalleryStore, shade: int = 0) -> int:
    return store.save(make_png(color=(shade, 10, 10)), params(seed=shade)).id


def test_trash_moves_the_file_and_restore_brings_it_back(store: GalleryStore) -> None:
    image_id = _save(store)
    kept_path = store.path_of(image_id)
    digest = hashlib.sha256(kept_path.read_bytes()).hexdigest()
    store.keep([image_id])

    assert store.trash([image_id]).ids == [image_id]
    trashed_path = store.path_of(image_id)
    assert not kept_path.exists()
    assert trashed_path.is_file() and trashed_path.is_relative_to(store.trash_dir)
    assert hashlib.sha256(trashed_path.read_bytes()).hexdigest() == digest
    assert store.get(image_id).trashed_at is not None

    assert store.restore([image_id]).ids == [image_id]
    assert kept_path.is_file() and not trashed_path.exists()
    # back to the state it had before the trash, not just the inbox
    assert store.get(image_id).state == "kept"
    assert store.get(image_id).trashed_at is None


def test_actions_report_only_what_changed(store: GalleryStore) -> None:
    first, second = _save(store, 1), _save(store, 2)
    store.trash([first])
    assert store.trash([first, second]).ids == [second]
    assert store.restore([first]).ids == [first]
    assert store.restore([first]).ids == []
    with pytest.raises(NotFound, match="999"):
        store.keep([first, 999])
    assert store.get(first).state == "inbox"  # nothing changed by the refused call
    with pytest.raises(BadRequest):
        store.trash(first)  # type: ignore[arg-type]


def test_undo_walks_back_through_the_last_actions(store: GalleryStore) -> None:
    first, second = _save(store, 1), _save(store, 2)
    inbox_path = store.path_of(first)
    store.keep([first])
    store.trash([first, second])
    store.update(second, favourite=True, rating=3)
    store.update(second, tags=["maybe"])

    undone = store.undo()
    assert undone.action == "edit tags" and undone.ids == [second]
    assert store.get(second).tags == []
    assert store.get(second).rating == 3

    undone = store.undo()
    assert undone.action == "edit favourite, rating"
    assert (store.get(second).favourite, store.get(second).rating) == (False, 0)

    undone = store.undo()
    assert undone.action == "trash" and undone.ids == sorted([first, second])
    assert store.get(first).state == "kept" and store.get(second).state == "inbox"
    assert inbox_path.is_file()
    assert not any(store.trash_dir.rglob("*.png"))

    undone = store.undo()
    assert undone.action == "keep" and store.get(first).state == "inbox"
    assert undone.remaining == 0
    nothing = store.undo()
    assert nothing.action is None and nothing.ids == []


def test_undo_of_a_restore_puts_the_file_back_in_the_trash(store: GalleryStore) -> None:
    image_id = _save(store)
    store.trash([image_id])
    store.restore([image_id])
    store.undo()
    assert store.get(image_id).state == "trashed"
    assert store.path_of(image_id).is_relative_to(store.trash_dir)
    assert store.path_of(image_id).is_file()


def test_undo_skips_images_purged_since(store: GalleryStore) -> None:
    first, second = _save(store, 1), _save(store, 2)
    store.trash([first, second])
    store.purge([first])
    undone = store.undo()
    assert undone.ids == [second]
    assert store.get(second).state == "inbox"
    with pytest.raises(NotFound):
        store.get(first)


def test_purge_deletes_only_trashed_images(store: GalleryStore) -> None:
    keep_id, trash_id, inbox_id = _save(store, 1), _save(store, 2), _save(store, 3)
    store.keep([keep_id])
    store.trash([trash_id])
    trashed_file = store.path_of(trash_id)
    store.thumbnail(trash_id, 32)
    size = trashed_file.stat().st_size

    result = store.purge([keep_id, trash_id, inbox_id])
    assert result.ids == [trash_id]
    assert result.bytes_freed == size
    assert not trashed_file.exists()
    assert not list(store.thumbs_dir.rglob(f"{trash_id}.webp"))
    with pytest.raises(NotFound):
        store.get(trash_id)
    assert store.path_of(keep_id).is_file() and store.path_of(inbox_id).is_file()
    assert store.list().items[0].id == inbox_id


def test_purge_by_age_and_everything_in_the_trash(store: GalleryStore) -> None:
    old, recent, kept = _save(store, 1), _save(store, 2), _save(store, 3)
    store.trash([old, recent])
    with db.connection_context():
        long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=40)
        GalleryImage.update(trashed_at=long_ago).where(GalleryImage.id == old).execute()
    assert store.purge(older_than_days=30).ids == [old]
    assert store.get(recent).state == "trashed"
    with pytest.raises(BadRequest):
        store.purge(older_than_days=-1)
    assert store.purge().ids == [recent]
    assert store.get(kept).state == "inbox"
    assert not any(store.trash_dir.rglob("*.png"))
