"""The models database through the API, against the embedded `local` and a real `tsr serve`."""

from __future__ import annotations

import pytest

from tests.api_db.conftest import LORA_MODEL, LORA_VERSION, Library, Mode
from tsr.client.db_api import file_change, task_error
from tsr.errors import BadRequest, NotFound


def test_scan_link_triggers_search_stats_duplicates_and_override(
    api: Mode, library: Library
) -> None:
    db = api.client.db
    started = db.scan()
    assert started.kind == "scan" and started.state in ("queued", "running", "done")
    scanned = db.wait(started)
    assert scanned.state == "done", scanned.error
    assert scanned.scan is not None and scanned.scan.new == 3
    assert (scanned.progress.done, scanned.progress.total) == (3, 3)
    hashed = scanned.scan.hashed_bytes
    assert hashed > 0 and (scanned.progress.bytes_done, scanned.progress.bytes_total) == (
        hashed,
        hashed,
    )

    page = db.files(limit=2)
    assert (page.total, len(page.items), page.next_offset) == (3, 2, 2)
    rest = db.files(limit=2, offset=2)
    assert rest.next_offset is None
    names = [f.name for f in page.items + rest.items]
    assert names == ["ponyV6.safetensors", "zkx_copy.safetensors", "zkx_girl_v2.safetensors"]
    assert [f.name for f in db.files(kind="checkpoint").items] == ["ponyV6.safetensors"]

    linked = db.wait(db.link())
    assert linked.state == "done", linked.error
    assert linked.link is not None and linked.link.checked == 3
    assert {entry.path for entry in linked.link.linked} == {str(library.lora), str(library.copy)}
    assert [f.name for f in db.files(linked=False).items] == ["ponyV6.safetensors"]

    lora = db.resolve("zkx_girl_v2")
    assert lora.path == str(library.lora)
    assert lora.civitai is not None and lora.civitai.version_id == LORA_VERSION
    assert lora.family == "pony"
    assert db.resolve(str(lora.id)).id == lora.id
    assert lora.sha256 is not None
    assert db.resolve(lora.sha256[:10].upper()).sha256 == lora.sha256  # an AutoV2
    assert db.resolve(str(library.lora)).id == lora.id

    added = db.add_triggers(lora.id, ["glowing eyes"])
    words = [(w.word, w.sources) for w in added.triggers]
    # CivitAI's words first (compound entries split too), then the user's, then training tags
    assert words[:5] == [
        ("zkx_girl", ["civitai"]),
        ("red scarf, smile", ["civitai"]),
        ("red scarf", ["civitai"]),
        ("smile", ["civitai", "training"]),
        ("glowing eyes", ["user"]),
    ]
    assert ("mychar", ["training"]) in words[5:]
    assert [hit.file.id for hit in db.search("glowing")] == [lora.id]
    removed = db.remove_triggers(lora.id, ["glowing eyes", "smile"])
    kept = [w.word for w in removed.triggers]
    assert kept[:3] == ["zkx_girl", "red scarf, smile", "red scarf"]
    assert "glowing eyes" not in kept and "smile" not in kept
    assert "smile" in [w.word for w in db.triggers(lora.id, hidden=True).triggers]
    assert db.search("glowing") == []

    stats = db.stats()
    assert (stats.present, stats.linked, stats.unlinked, stats.duplicate_groups) == (3, 2, 1, 1)
    assert stats.civitai_models == 1 and stats.last_scan is not None
    [group] = db.duplicates()
    assert [f.path for f in group.files] == sorted([str(library.copy), str(library.lora)])

    pony = db.resolve("ponyV6")
    changed = db.update_file(pony.id, file_change("illustrious", notes="for portraits"))
    assert (changed.family, changed.family_signal) == ("illustrious", "set by the user")
    detail = db.file(pony.id)
    assert detail.override.family == "illustrious" and detail.override.notes == "for portraits"
    assert [f.name for f in db.files(family="illustrious").items] == ["ponyV6.safetensors"]
    back = db.update_file(pony.id, file_change(clear_family=True, notes=""))
    assert back.family == "pony" and db.file(pony.id).override.notes is None
    hidden = db.update_file(pony.id, file_change(hidden=True))
    assert hidden.hidden and pony.id not in [f.id for f in db.files().items]
    assert pony.id in [f.id for f in db.files(hidden=True).items]
    with pytest.raises(BadRequest, match="'sd99' is not a model family"):
        db.update_file(pony.id, {"family": "sd99"})


def test_cached_models_cache_and_refresh(api: Mode, library: Library) -> None:
    db = api.client.db
    assert db.wait(db.scan()).state == "done"
    assert db.models().items == []
    library.fake.add_version(LORA_MODEL, 500001, name="v3.0", trained_words=["zkx3"])
    cached = db.wait(db.cache(LORA_MODEL))
    assert cached.state == "done", cached.error
    assert cached.cache is not None and (cached.cache.versions, cached.cache.files) == (2, 1)
    assert len(cached.cache.linked) == 2  # both copies matched the cached file, without a lookup

    page = db.models()
    assert [(m.id, m.name, m.version_count, m.linked_files) for m in page.items] == [
        (LORA_MODEL, "Zkx Girl (character)", 2, 2)
    ]
    assert page.items[0].tags == ["character"] and page.items[0].fetched_at is not None
    assert db.models(linked=False).items == [] and db.models(q="nothing").items == []
    detail = db.model(LORA_MODEL)
    assert [v.id for v in detail.versions] == [500001, LORA_VERSION]
    assert detail.versions[1].trained_words == ["zkx_girl", "red scarf, smile"]
    assert len(detail.versions[1].local_files) == 2
    assert detail.versions[1].files[0].sha256 == db.resolve("zkx_girl_v2").sha256
    with pytest.raises(NotFound, match="not in the local cache"):
        db.model(999)

    refreshed = db.wait(db.refresh())
    assert refreshed.state == "done" and refreshed.refresh is not None
    assert [r.model_id for r in refreshed.refresh] == [LORA_MODEL]
    assert [t.kind for t in db.tasks()] == ["refresh", "cache", "scan"]
    missing = db.wait(db.cache(424242))
    assert missing.state == "failed" and missing.error_kind == "NotFound"
    assert missing.error == "CivitAI has no such model 424242"


def test_link_with_a_refused_key_fails_with_the_sentence(api: Mode, library: Library) -> None:
    db = api.client.db
    assert db.wait(db.scan()).state == "done"
    library.fake.require_key = True
    failed = db.wait(db.link())
    assert failed.state == "failed" and failed.error_kind == "AuthRejected"
    assert failed.error is not None
    assert failed.error.startswith("CivitAI wants an API key for this (HTTP 401)")
    assert str(task_error(failed)) == failed.error
    # the scan data is all there, unlinked
    files = db.files().items
    assert len(files) == 3 and all(f.sha256 and f.civitai is None for f in files)
    assert db.tasks()[0].id == failed.id
