"""Gallery fixtures: a real SQLite file and a real gallery folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tsr.db.database import db, init_database
from tsr.gallery import GalleryStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GalleryStore]:
    """A gallery over a fresh database file and folder."""
    init_database(tmp_path / "tsr.db")
    yield GalleryStore(tmp_path / "gallery")
    if not db.is_closed():
        db.close()
