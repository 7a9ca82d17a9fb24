"""Fixtures for the models database tests: a real SQLite file, the fake CivitAI, model files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai, fake_civitai  # noqa: F401
from tsr.civitai import CivitaiClient
from tsr.db import db, init_database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[peewee.SqliteDatabase]:
    """A fresh database file under tmp_path, open on this thread."""
    init_database(tmp_path / "tsr.db")
    with db.connection_context():
        yield db


@pytest.fixture
def waits() -> list[float]:
    """The pauses the CivitAI client asked for (recorded instead of slept, so tests stay fast)."""
    return []


@pytest.fixture
def client(fake_civitai: FakeCivitai, waits: list[float]) -> Iterator[CivitaiClient]:  # noqa: F811
    """A CivitAI client pointed at the fake; its pauses go to `waits`."""
    with CivitaiClient(fake_civitai.url, backoff_base=0.5, sleep=waits.append) as civitai:
        yield civitai


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    """Model roots per kind (created), as a config would list them."""
    made = {kind: tmp_path / "models" / kind for kind in ("checkpoints", "loras")}
    for folder in made.values():
        folder.mkdir(parents=True)
    return made
