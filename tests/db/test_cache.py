"""`cache_model` and refresh: storing a CivitAI model twice never duplicates anything."""

from __future__ import annotations

import hashlib
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_sdxl_lora
from tsr.civitai import CivitaiClient
from tsr.db.files import resolve_file
from tsr.db.link import cache_model, refresh_linked
from tsr.db.models import (
    CachedFile,
    CachedFileHash,
    CachedImage,
    CachedModel,
    CachedModelTag,
    CachedTrainedWord,
    CachedVersion,
    Trigger,
)
from tsr.db.scan import scan_roots
from tsr.db.triggers import remove_trigger, triggers_for
from tsr.errors import NotFound

TABLES = (
    CachedModel,
    CachedModelTag,
    CachedVersion,
    CachedTrainedWord,
    CachedImage,
    CachedFile,
    CachedFileHash,
    Trigger,
)


def counts() -> dict[str, int]:
    return {table.__name__: table.select().count() for table in TABLES}


def _publish(fake: FakeCivitai, sha256: str) -> None:
    fake.add_model(7, "Ink Style", tags=["style", "ink", "style"])
    fake.add_version(7, 70, name="v1", base_model="SDXL 1.0", trained_words=["ink", "ink, wash"])
    fake.add_file(70, 700, "ink_v1.safetensors", sha256=sha256)
    fake.add_version(7, 71, name="v2", base_model="Pony", trained_words=["ink2"], images=3)
    fake.add_file(71, 710, "ink_v2.safetensors", sha256="ab" * 32)
    fake.add_file(71, 711, "ink_v2_fp32.safetensors", sha256="cd" * 32, primary=False)


def test_cache_twice_changes_nothing(
    database: peewee.SqliteDatabase, fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, "ef" * 32)
    first = cache_model(client, 7)
    assert (first.name, first.versions, first.files, first.trained_words) == ("Ink Style", 2, 3, 3)
    after_first = counts()
    assert after_first["CachedModelTag"] == 2  # CivitAI repeated a tag; stored once
    assert after_first["CachedImage"] == 4
    assert after_first["CachedFileHash"] == 18
    cache_model(client, 7)
    assert counts() == after_first


def test_refresh_follows_civitai_changes_and_links_local_files(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> None:
    lora = write_sdxl_lora(roots["loras"] / "ink_v1.safetensors")
    scan_roots([roots["loras"]])
    _publish(fake_civitai, hashlib.sha256(lora.read_bytes()).hexdigest())
    cached = cache_model(client, 7)
    # the local file matched a cached file: linked without a by-hash call
    assert [(e.path, e.via) for e in cached.linked] == [(str(lora), "cache")]
    assert not fake_civitai.calls(path_prefix="/api/v1/model-versions")
    file_id = resolve_file("ink_v1").id
    remove_trigger(file_id, ["ink"])
    # the author edits the version: a word changes, a file and an image go away
    version = fake_civitai.versions[70]
    version["trainedWords"] = ["ink", "sumi-e"]
    fake_civitai.versions[71]["files"].pop()
    fake_civitai.versions[71]["images"] = fake_civitai.versions[71]["images"][:1]
    refreshed = refresh_linked(client)
    assert [r.model_id for r in refreshed] == [7]
    assert CachedFile.select().count() == 2
    assert CachedImage.select().count() == 2
    words = {w.word: w for w in triggers_for(file_id, include_hidden=True).triggers}
    assert "sumi-e" in words and "ink, wash" not in words
    assert words["ink"].hidden  # the user removed it; a refresh does not bring it back
    before = counts()
    refresh_linked(client)
    assert counts() == before


def test_unknown_model_is_one_sentence(
    database: peewee.SqliteDatabase, client: CivitaiClient
) -> None:
    with pytest.raises(NotFound, match="CivitAI has no such model 404404"):
        cache_model(client, 404404)
