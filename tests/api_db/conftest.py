"""Fixtures for the models-database API: a library of real model files under configured roots,
the fake CivitAI, and a client for each mode (embedded `local`, and `tsr serve` with a token)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.civitai import FakeCivitai, fake_civitai  # noqa: F401
from tests.modelfiles import write_pony_checkpoint, write_sdxl_lora
from tests.server.conftest import TOKEN
from tests.server.running import ServeProcess
from tsr.client import Client, connect
from tsr.client.local import shutdown_embedded

#: the CivitAI ids the fake knows the LoRA by
LORA_MODEL, LORA_VERSION = 372465, 410737


@dataclass
class Library:
    """Model roots with files in them, the config naming them, and the fake CivitAI."""

    root: Path
    loras: Path
    checkpoints: Path
    lora: Path
    checkpoint: Path
    #: a byte-for-byte copy of the LoRA in a subfolder (a duplicate)
    copy: Path
    config_text: str
    fake: FakeCivitai

    def config_file(self, path: Path, extra: str = "") -> Path:
        """Write the library's config (plus `extra`) to `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.config_text + extra)
        return path


@pytest.fixture(autouse=True)
def stop_embedded_servers() -> Iterator[None]:
    """Whatever embedded server a test started is stopped after it."""
    yield
    shutdown_embedded()


@pytest.fixture
def library(tmp_path: Path, fake_civitai: FakeCivitai) -> Library:  # noqa: F811
    """Two roots (loras, checkpoints) with a LoRA, its copy and a checkpoint; the fake knows
    the LoRA; the config at TSR_CONFIG names the roots and the fake's URL."""
    loras, checkpoints = tmp_path / "lib" / "loras", tmp_path / "lib" / "checkpoints"
    lora = write_sdxl_lora(loras / "zkx_girl_v2.safetensors")
    copy = loras / "old" / "zkx_copy.safetensors"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(lora.read_bytes())
    checkpoint = write_pony_checkpoint(checkpoints / "ponyV6.safetensors")
    fake_civitai.add(
        model_id=LORA_MODEL,
        version_id=LORA_VERSION,
        sha256=hashlib.sha256(lora.read_bytes()).hexdigest(),
        file_name=lora.name,
        model_name="Zkx Girl (character)",
        version_name="v2.0",
        base_model="Pony",
        trained_words=["zkx_girl", "red scarf, smile"],
        tags=["character"],
    )
    text = (
        f'[paths]\nloras = "{loras}"\ncheckpoints = "{checkpoints}"\n'
        f'[civitai]\nbase_url = "{fake_civitai.url}"\n'
    )
    found = Library(
        tmp_path / "lib", loras, checkpoints, lora, checkpoint, copy, text, fake_civitai
    )
    found.config_file(Path(os.environ["TSR_CONFIG"]))
    return found


@dataclass
class Mode:
    """A client of one server mode, and where that server keeps its data."""

    name: str
    client: Client
    home: Path

    @property
    def db_file(self) -> Path:
        """The server's SQLite file."""
        return self.home / "tsr.db"


@pytest.fixture(params=["local", "serve"])
def api(
    request: pytest.FixtureRequest, library: Library, tmp_path: Path, isolated_home: Path
) -> Iterator[Mode]:
    """A client of the embedded `local` server, or of a `tsr serve` process with a token."""
    if request.param == "local":
        with connect("local") as client:
            yield Mode("local", client, isolated_home)
        return
    home = tmp_path / "served-home"
    config = library.config_file(tmp_path / "served" / "config.toml")
    served = ServeProcess(home, config, TSR_TOKEN=TOKEN, CIVITAI_BASE_URL=library.fake.url)
    try:
        with Client(served.url, token=TOKEN) as client:
            yield Mode("serve", client, home)
    finally:
        served.stop()


@contextmanager
def database_write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock on `path` from another connection, as another writer would."""
    connection = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()
