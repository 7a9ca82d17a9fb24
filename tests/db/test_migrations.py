"""A database written by an earlier tsr is brought up to the current schema, keeping its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.gallery.helpers import make_png, params
from tsr.db.database import SCHEMA_VERSION, db, init_database
from tsr.gallery import GalleryStore

COUNT_INDEXES = {"gallery_image_state_file_size", "gallery_image_favourite_state"}


def _indexes(path: Path) -> set[str]:
    raw = sqlite3.connect(path)
    try:
        rows = raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    finally:
        raw.close()
    return {name for (name,) in rows}


def test_a_schema_1_database_gets_the_count_indexes_and_keeps_its_images(tmp_path: Path) -> None:
    path = tmp_path / "tsr.db"
    init_database(path)
    store = GalleryStore(tmp_path / "gallery")
    kept = store.save(make_png(), params(prompt="from the first release")).id
    store.keep([kept])
    db.close()
    # what the first release left: no count indexes, user_version 1
    raw = sqlite3.connect(path)
    for name in COUNT_INDEXES:
        raw.execute(f"DROP INDEX {name}")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    assert not COUNT_INDEXES & _indexes(path)

    init_database(path)

    assert _indexes(path) >= COUNT_INDEXES
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    raw.close()
    stats = store.stats()
    assert (stats.kept, stats.inbox) == (1, 0)
    assert store.get(kept).prompt == "from the first release"
    db.close()
