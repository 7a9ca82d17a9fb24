"""kill -9 during saves and moves: no half image is ever visible, and reconcile makes all agree."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from tsr.db.database import db, init_database
from tsr.db.images import GalleryImage
from tsr.gallery import GalleryStore

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5


def _run_and_kill(gallery: Path, database: Path, rng: random.Random) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.gallery.crash_writer", str(gallery), str(database)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline(), "the writer saved nothing"  # it is in its loop
        time.sleep(rng.uniform(0.0, 0.25))
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL


def _assert_agreement(store: GalleryStore) -> int:
    """Every row has its whole file, every file has its row; returns the number of images."""
    with db.connection_context():
        rows = list(
            GalleryImage.select(
                GalleryImage.id, GalleryImage.state, GalleryImage.file_size, GalleryImage.sha256
            )
        )
    files = {
        path
        for path in store.root.rglob("*")
        if path.is_file() and not path.is_relative_to(store.thumbs_dir)
    }
    assert not [path for path in files if path.name.endswith(".tmp")], "a temp file survived"
    expected = set()
    for row in rows:
        path = store.location(row.id, row.state)
        data = path.read_bytes()
        assert len(data) == row.file_size
        assert hashlib.sha256(data).hexdigest() == row.sha256
        with Image.open(path) as image:
            image.load()  # a complete, decodable PNG
        expected.add(path)
    assert files == expected
    return len(rows)


def test_kill_during_writes_leaves_nothing_half_done(tmp_path: Path) -> None:
    gallery, database = tmp_path / "gallery", tmp_path / "tsr.db"
    rng = random.Random(20240611)
    counts = []
    for _round in range(ROUNDS):
        _run_and_kill(gallery, database, rng)
        if not db.is_closed():
            db.close()
        init_database(database)
        store = GalleryStore(gallery)
        store.reconcile()
        counts.append(_assert_agreement(store))
        # a second reconcile finds nothing more to do
        assert store.reconcile().model_dump(exclude={"temp_files_removed"}) == {
            "files_added": [],
            "rows_removed": [],
            "states_fixed": [],
            "rows_updated": [],
            "set_aside": [],
        }
    assert counts[-1] > 0
    assert counts == sorted(counts)  # images only accumulate: nothing saved was lost
