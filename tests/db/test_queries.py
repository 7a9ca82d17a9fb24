"""Listing, searching, stats, duplicates and finding one file, over a scanned and linked library."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_pony_checkpoint, write_sd15_checkpoint, write_sd15_lora
from tsr.civitai import CivitaiClient
from tsr.db.database import SCHEMA_VERSION, init_database, schema_version
from tsr.db.files import resolve_file, set_override
from tsr.db.link import link_files
from tsr.db.queries import duplicates, file_detail, list_files, search, stats
from tsr.db.scan import scan_roots
from tsr.db.triggers import add_trigger
from tsr.errors import BadRequest, NotFound
from tsr.schemas.models import FileFilter


@pytest.fixture
def library(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> dict[str, Path]:
    """Two checkpoints, two LoRAs (one linked, with tags), one copy, one vanished file."""
    files = {
        "pony": write_pony_checkpoint(roots["checkpoints"] / "ponyDiffusionV6XL.safetensors"),
        "sd15": write_sd15_checkpoint(roots["checkpoints"] / "dreamshaper_8.safetensors"),
        "ink": write_sd15_lora(roots["loras"] / "ink_wash_v1.safetensors"),
        "gone": write_sd15_lora(roots["loras"] / "old_style.safetensors", metadata={}),
    }
    (roots["loras"] / "copies").mkdir()
    (roots["loras"] / "copies" / "ink_copy.safetensors").write_bytes(files["ink"].read_bytes())
    fake_civitai.add(
        model_id=8,
        version_id=80,
        sha256=hashlib.sha256(files["ink"].read_bytes()).hexdigest(),
        model_name="Sumi Brush Style",
        version_name="v1.0",
        base_model="SD 1.5",
        trained_words=["sumi_brush"],
        tags=["watercolor"],
    )
    model_roots = {kind: [folder] for kind, folder in roots.items()}
    scan_roots(None, model_roots=model_roots)
    link_files(client, fetch_models=True)  # with the model's tags
    files["gone"].unlink()
    scan_roots(None, model_roots=model_roots)
    return files


def names(filters: FileFilter) -> list[str]:
    return [f.name for f in list_files(filters).items]


def test_list_filters(library: dict[str, Path]) -> None:
    assert names(FileFilter(kind="checkpoint")) == [
        "dreamshaper_8.safetensors",
        "ponyDiffusionV6XL.safetensors",
    ]
    assert names(FileFilter(family="pony")) == ["ponyDiffusionV6XL.safetensors"]
    assert names(FileFilter(linked=True)) == ["ink_copy.safetensors", "ink_wash_v1.safetensors"]
    assert names(FileFilter(missing=True)) == ["old_style.safetensors"]
    assert len(names(FileFilter(linked=False, missing=False))) == 2


def test_list_sorts_and_pages(library: dict[str, Path]) -> None:
    by_size = list_files(sort="size").items
    assert [f.size for f in by_size] == sorted((f.size for f in by_size), reverse=True)
    page = list_files(sort="name", limit=2, offset=1)
    assert [f.name for f in page.items] == ["ink_copy.safetensors", "ink_wash_v1.safetensors"]
    assert (page.total, page.next_offset) == (5, 3)


def test_hidden_files_leave_lists_and_search(library: dict[str, Path]) -> None:
    set_override(resolve_file("dreamshaper_8").id, hidden=True)
    assert "dreamshaper_8.safetensors" not in names(FileFilter())
    assert "dreamshaper_8.safetensors" in names(FileFilter(include_hidden=True))
    assert search("dreamshaper") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dreamshaper", ["dreamshaper_8.safetensors"]),  # file name
        ("dream", ["dreamshaper_8.safetensors"]),  # word prefix
        ("sumi brush", ["ink_copy.safetensors", "ink_wash_v1.safetensors"]),  # CivitAI name
        ("sumi_brush", ["ink_copy.safetensors", "ink_wash_v1.safetensors"]),  # trigger word
        ("watercolor", ["ink_copy.safetensors", "ink_wash_v1.safetensors"]),  # model tag
        ("1girl", ["ink_copy.safetensors", "ink_wash_v1.safetensors"]),  # training tag
        ('pony" OR "x', []),  # FTS5 syntax in input is just text
        ("nothing-like-this", []),
    ],
)
def test_search_looks_everywhere(library: dict[str, Path], query: str, expected: list[str]) -> None:
    assert sorted(hit.file.name for hit in search(query)) == expected


def test_search_finds_user_words_and_ranks_names_first(library: dict[str, Path]) -> None:
    add_trigger(resolve_file("ponyDiffusionV6XL").id, ["ink"])
    hits = search("ink")
    assert hits[0].file.name.startswith("ink")
    assert "ponyDiffusionV6XL.safetensors" in [hit.file.name for hit in hits]


def test_stats_and_duplicates(library: dict[str, Path]) -> None:
    numbers = stats()
    assert (numbers.files, numbers.present, numbers.missing) == (5, 4, 1)
    assert (numbers.linked, numbers.unlinked) == (2, 2)
    assert numbers.by_kind == {"checkpoint": 2, "lora": 2}
    assert numbers.by_family == {"pony": 1, "sd15": 3}
    assert (numbers.civitai_models, numbers.civitai_versions) == (1, 1)
    assert numbers.duplicate_groups == 1 and numbers.last_scan is not None
    groups = duplicates()
    assert [[Path(f.path).name for f in g.files] for g in groups] == [
        ["ink_copy.safetensors", "ink_wash_v1.safetensors"]
    ]
    assert groups[0].sha256 == hashlib.sha256(library["ink"].read_bytes()).hexdigest()


def test_resolve_by_id_path_hash_and_name(library: dict[str, Path]) -> None:
    pony = resolve_file("ponyDiffusionV6XL.safetensors")
    assert resolve_file(pony.id).path == pony.path
    assert resolve_file(pony.path).id == pony.id
    assert resolve_file(pony.sha256 or "").id == pony.id
    assert resolve_file((pony.autov2 or "").upper()).id == pony.id
    assert resolve_file("PONYDIFFUSIONV6XL").id == pony.id
    with pytest.raises(NotFound, match="no model file is named 'nope'"):
        resolve_file("nope")
    # a digit to str.isdigit() but not to int(): found by the schema fuzz
    with pytest.raises(NotFound, match="no model file is named '³'"):
        resolve_file("³")
    (library["ink"].parent / "more").mkdir()
    with pytest.raises(NotFound, match="run `tsr db scan` first"):
        resolve_file(str(library["ink"].parent / "more" / "x.safetensors"))


def test_same_name_twice_asks_for_the_id(library: dict[str, Path], roots: dict[str, Path]) -> None:
    write_sd15_lora(roots["checkpoints"] / "ink_wash_v1.safetensors", metadata={"x": "1"})
    scan_roots([roots["checkpoints"]])
    with pytest.raises(BadRequest, match="several files are named 'ink_wash_v1'"):
        resolve_file("ink_wash_v1")


def test_detail_carries_metadata_triggers_and_notes(library: dict[str, Path]) -> None:
    ink = resolve_file("ink_wash_v1")
    set_override(ink.id, notes="best at 0.6")
    detail = file_detail(ink.id)
    assert detail.header_metadata["ss_output_name"] == "mychar"
    assert isinstance(detail.header_metadata["ss_tag_frequency"], dict)
    assert detail.triggers[0].word == "sumi_brush"
    assert detail.override.notes == "best at 0.6"
    with pytest.raises(BadRequest, match="'sdxxl' is not a model family"):
        set_override(ink.id, family="sdxxl")


def test_schema_is_versioned_with_wal_foreign_keys_and_fts(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    database = init_database(path)
    with database.connection_context():
        assert schema_version(database) == SCHEMA_VERSION
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    init_database(path)  # opening again migrates nothing and loses nothing
    raw = sqlite3.connect(path)
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"local_file", "file_link", "trigger", "hash_lookup", "file_search"} <= tables
    raw.close()
