"""Trigger words: one merged list from CivitAI, the training tags and the user, with provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import kohya_lora_metadata, write_sd15_lora
from tsr.civitai import CivitaiClient
from tsr.db.files import resolve_file
from tsr.db.link import link_files
from tsr.db.scan import scan_roots
from tsr.db.triggers import add_trigger, remove_trigger, split_trained_words, triggers_for
from tsr.errors import BadRequest, NotFound


@pytest.fixture
def lora_id(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> int:
    """A kohya LoRA (tags mychar 50, 1girl 48, ...) linked to a version with trainedWords."""
    lora = write_sd15_lora(roots["loras"] / "mychar.safetensors")
    scan_roots([roots["loras"]])
    fake_civitai.add(
        model_id=1,
        version_id=10,
        sha256=hashlib.sha256(lora.read_bytes()).hexdigest(),
        trained_words=["mychar", "red dress, smile"],
    )
    link_files(client)
    return resolve_file("mychar").id


def test_merged_list_names_every_source(lora_id: int) -> None:
    words = {w.word: w for w in triggers_for(lora_id).triggers}
    assert words["mychar"].sources == ["civitai", "training"]
    assert words["mychar"].count == 50
    assert words["red dress"].sources == ["civitai", "training"]
    assert words["red dress"].part_of == "red dress, smile"
    assert words["red dress, smile"].sources == ["civitai"]
    assert words["1girl"].sources == ["training"] and words["1girl"].count == 48
    # CivitAI's words first, in CivitAI's order; then training tags, most frequent first
    order = [w.word for w in triggers_for(lora_id).triggers]
    assert order[:4] == ["mychar", "red dress, smile", "red dress", "smile"]
    assert order.index("1girl") < order.index("solo") < order.index("long hair")


def test_user_words_are_added_and_removed(lora_id: int) -> None:
    add_trigger(lora_id, ["glowing eyes", "mychar"])
    words = {w.word: w.sources for w in triggers_for(lora_id).triggers}
    assert words["glowing eyes"] == ["user"]
    assert words["mychar"] == ["civitai", "user", "training"]
    add_trigger(lora_id, ["glowing eyes"])  # twice is once
    assert [w.word for w in triggers_for(lora_id).triggers].count("glowing eyes") == 1
    remove_trigger(lora_id, ["glowing eyes"])
    assert "glowing eyes" not in {
        w.word for w in triggers_for(lora_id, include_hidden=True).triggers
    }


def test_removing_a_civitai_word_hides_it_until_added_back(lora_id: int) -> None:
    remove_trigger(lora_id, ["1girl"])
    assert "1girl" not in {w.word for w in triggers_for(lora_id).triggers}
    hidden = {w.word: w for w in triggers_for(lora_id, include_hidden=True).triggers}
    assert hidden["1girl"].hidden
    add_trigger(lora_id, ["1girl"])
    shown = {w.word: w for w in triggers_for(lora_id).triggers}
    assert shown["1girl"].sources == ["user", "training"] and not shown["1girl"].hidden


def test_bad_requests_name_the_problem(lora_id: int) -> None:
    with pytest.raises(NotFound, match="has no trigger word 'nothing'"):
        remove_trigger(lora_id, ["nothing"])
    with pytest.raises(BadRequest, match="at least one trigger word"):
        add_trigger(lora_id, ["  "])
    with pytest.raises(NotFound, match="no model file with id 999"):
        triggers_for(999)


def test_training_tags_are_summed_across_dataset_folders(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    metadata = kohya_lora_metadata(
        tag_frequency={"10_a": {"cat": 3, "dog": 1}, "5_b": {"dog": 5, " cat": 1}}
    )
    write_sd15_lora(roots["loras"] / "pets.safetensors", metadata=metadata)
    scan_roots([roots["loras"]])
    words = [(w.word, w.count) for w in triggers_for(resolve_file("pets").id).triggers]
    assert words == [("dog", 6), ("cat", 4)]


def test_split_keeps_the_original_compound_entry() -> None:
    specs = split_trained_words(["a, b", "b", " c "])
    assert [(s.word, s.part_of) for s in specs] == [
        ("a, b", None),
        ("a", "a, b"),
        ("b", "a, b"),
        ("c", None),
    ]
