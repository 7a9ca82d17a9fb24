"""GalleryStore: saving, reading, filtering, paging and thumbnails over real files and SQLite."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from tests.gallery.helpers import make_png, params, sdcpp_png
from tsr.errors import BadRequest, NotFound
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageFilters, ImageOut, ImageParams, LoraUse


def test_save_writes_a_png_with_a1111_parameters_and_a_row(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    path = store.path_of(image.id)
    assert path.is_file()
    assert path.relative_to(store.root).as_posix() == image.file
    written = Image.open(path)
    assert written.size == (64, 64)
    text = written.text["parameters"]
    assert text.startswith("a red cube on a table <lora:add_detail:0.8>\nNegative prompt: blurry\n")
    assert "Model hash: 1a2b3c4d5e" in text and 'Lora hashes: "add_detail: 0123456789ab"' in text
    assert image.parameters == text
    assert image.state == "inbox"
    assert (image.seed, image.steps, image.cfg) == (1234, 25, 7.0)
    assert (image.backend, image.job, image.batch_index) == ("gpu0", "job-1", 0)
    assert image.checkpoint_hash == "1a2b3c4d5e"
    assert image.loras == [LoraUse(name="add_detail", weight=0.8, sha256="0123456789ab" + "f" * 52)]
    assert image.file_size == path.stat().st_size
    assert store.get(image.id) == image
    # what the API sends validates as the wire model
    assert ImageOut.model_validate_json(image.model_dump_json()) == image
    # no temp file is left beside it
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]


def test_save_replaces_sd_servers_own_infotext_and_records_the_real_size(
    store: GalleryStore,
) -> None:
    image = store.save(sdcpp_png(), params(width=100, height=72))
    text = Image.open(store.path_of(image.id)).text
    assert "SDCPP" not in text["parameters"]
    assert "Size: 64x64" in text["parameters"]
    assert (image.width, image.height) == (64, 64)


def test_ids_are_not_the_seed_and_grow_with_time(store: GalleryStore) -> None:
    first = store.save(make_png(), params(seed=42))
    second = store.save(make_png(), params(seed=42))
    assert first.id != second.id
    assert second.id > first.id
    assert 42 not in (first.id, second.id)
    assert abs(first.created - datetime.now(UTC)) < timedelta(minutes=1)


def test_bad_png_is_refused_and_nothing_is_written(store: GalleryStore) -> None:
    with pytest.raises(BadRequest, match="not a PNG"):
        store.save(b"GIF89a not a png", params())
    truncated = make_png()[:-20]
    with pytest.raises(BadRequest, match="truncated"):
        store.save(truncated, params())
    assert store.list().items == []
    assert not any(path.is_file() for path in store.root.rglob("*"))


def test_unknown_and_hostile_ids_are_refused(store: GalleryStore) -> None:
    store.save(make_png(), params())
    for hostile in (
        "../../etc/passwd",
        "1/../../x",
        "-1",
        "0",
        "1e5",
        "",
        " 1",
        "99999999999999999",
    ):
        with pytest.raises(NotFound):
            store.path_of(hostile)
        with pytest.raises(NotFound):
            store.get(hostile)
        with pytest.raises(NotFound):
            store.thumbnail(hostile)
    with pytest.raises(NotFound, match="no image with id 12345"):
        store.get(12345)


def _gallery(store: GalleryStore) -> dict[str, int]:
    """Five images with different checkpoints, LoRAs, prompts and states."""

    def save(prompt: str, **changes: object) -> int:
        time.sleep(0.002)  # a distinct millisecond each, so date filters can split them
        return store.save(make_png(), params(prompt=prompt, **changes)).id

    return {
        "castle": save("a castle at dusk", checkpoint="ckpt-a"),
        "forest": save(
            "a forest, 50% fog",
            checkpoint="ckpt-b",
            checkpoint_sha256="b" * 64,
            loras=[LoraUse(name="fog", weight=0.5)],
        ),
        "cat": save("a Cat_in a hat", loras=[]),
        "castle2": save("castle ruins", checkpoint="ckpt-a"),
        "dog": save("a dog", loras=[]),
    }


def _ids(store: GalleryStore, **filters: object) -> list[int]:
    return [image.id for image in store.list(ImageFilters.model_validate(filters)).items]


def test_filters_pick_the_right_images_newest_first(store: GalleryStore) -> None:
    ids = _gallery(store)
    store.keep([ids["castle"]])
    store.trash([ids["dog"]])
    store.update(ids["forest"], favourite=True)

    assert _ids(store) == [ids["castle2"], ids["cat"], ids["forest"], ids["castle"]]
    assert _ids(store, state="all")[0] == ids["dog"]
    assert _ids(store, state="trashed") == [ids["dog"]]
    assert _ids(store, state="kept") == [ids["castle"]]
    assert _ids(store, state="inbox") == [ids["castle2"], ids["cat"], ids["forest"]]
    assert _ids(store, favourite=True) == [ids["forest"]]
    assert _ids(store, checkpoint="ckpt-a") == [ids["castle2"], ids["castle"]]
    assert _ids(store, checkpoint="b" * 10) == [ids["forest"]]
    assert _ids(store, checkpoint="B" * 64) == [ids["forest"]]
    assert _ids(store, lora="fog") == [ids["forest"]]
    assert _ids(store, lora="add_detail") == [ids["castle2"], ids["castle"]]
    # substring, case-insensitive, through the trigram index (3+ characters) or a scan
    assert _ids(store, prompt="CASTLE") == [ids["castle2"], ids["castle"]]
    assert _ids(store, prompt="astl") == [ids["castle2"], ids["castle"]]
    assert _ids(store, prompt="50%") == [ids["forest"]]
    assert _ids(store, prompt="t_i") == [ids["cat"]]
    assert _ids(store, prompt="%") == [ids["forest"]]
    assert _ids(store, prompt='"quoted"') == []
    assert _ids(store, prompt="castle", checkpoint="ckpt-a", state="kept") == [ids["castle"]]


def test_date_filters(store: GalleryStore) -> None:
    ids = _gallery(store)
    cat = store.get(ids["cat"])
    assert _ids(store, since=cat.created) == [ids["dog"], ids["castle2"], ids["cat"]]
    assert _ids(store, until=cat.created) == [ids["forest"], ids["castle"]]
    assert _ids(store, since=datetime.now(UTC) + timedelta(days=1)) == []
    assert len(_ids(store, since=datetime.now(UTC) - timedelta(days=1))) == 5
    assert _ids(store, until=datetime.now(UTC) - timedelta(days=1)) == []


def test_cursor_pages_cover_everything_once(store: GalleryStore) -> None:
    saved = [store.save(make_png(color=(n, n, n)), params(seed=n)).id for n in range(7)]
    seen: list[int] = []
    page = store.list(limit=3)
    pages = 1
    seen += [image.id for image in page.items]
    while page.next_cursor:
        page = store.list(cursor=page.next_cursor, limit=3)
        seen += [image.id for image in page.items]
        pages += 1
    assert pages == 3
    assert seen == sorted(saved, reverse=True)


def test_bad_cursor_and_page_size_are_refused(store: GalleryStore) -> None:
    with pytest.raises(BadRequest, match="cursor"):
        store.list(cursor="abc")
    with pytest.raises(BadRequest, match="page size"):
        store.list(limit=0)


def test_update_edits_fields_and_rejects_bad_values(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    updated = store.update(image.id, favourite=True, rating=4, tags=[" red ", "cube", "red"])
    assert (updated.favourite, updated.rating, updated.tags) == (True, 4, ["red", "cube"])
    assert store.update(image.id, notes="for the wall").notes == "for the wall"
    assert store.get(image.id).tags == ["red", "cube"]
    with pytest.raises(BadRequest, match="rating"):
        store.update(image.id, rating=9)
    assert store.get(image.id).rating == 4


def test_stats_count_states_favourites_and_bytes(store: GalleryStore) -> None:
    ids = _gallery(store)
    store.keep([ids["cat"]])
    store.trash([ids["dog"], ids["castle"]])
    store.update(ids["cat"], favourite=True)
    stats = store.stats()
    assert (stats.inbox, stats.kept, stats.trashed, stats.favourites) == (2, 1, 2, 1)
    on_disk = sum(path.stat().st_size for path in store.root.rglob("*.png"))
    in_trash = sum(path.stat().st_size for path in store.trash_dir.rglob("*.png"))
    assert (stats.total_bytes, stats.trash_bytes) == (on_disk, in_trash)


def _noise_png(size: int = 512) -> bytes:
    image = Image.effect_noise((size, size), 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_thumbnail_is_made_once_then_served_from_cache(store: GalleryStore) -> None:
    image = store.save(_noise_png(), params())
    thumb = store.thumbnail(image.id, 128)
    with Image.open(thumb) as small:
        assert small.format == "WEBP"
        assert small.size == (128, 128)
    made = thumb.stat().st_mtime_ns
    assert store.thumbnail(image.id, 128) == thumb
    assert thumb.stat().st_mtime_ns == made
    default = store.thumbnail(image.id)
    assert default != thumb
    assert Image.open(default).size == (256, 256)
    with pytest.raises(BadRequest, match="thumbnail size"):
        store.thumbnail(image.id, 5000)


def test_thumbnail_of_a_trashed_image_and_of_a_missing_file(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    store.trash([image.id])
    assert store.thumbnail(image.id, 32).is_file()
    other = store.save(make_png(), params())
    store.path_of(other.id).unlink()
    with pytest.raises(NotFound, match="missing"):
        store.thumbnail(other.id, 32)


def test_tsr_chunk_holds_the_exact_parameters(store: GalleryStore) -> None:
    image = store.save(make_png(), params(extra={"hires": {"scale": 2}}))
    text = Image.open(store.path_of(image.id)).text["tsr"]
    assert ImageParams.model_validate(json.loads(text)).extra == {"hires": {"scale": 2}}
    assert image.extra == {"hires": {"scale": 2}}


def test_paths_stay_inside_the_gallery(store: GalleryStore) -> None:
    image = store.save(make_png(), params())
    assert store.path_of(image.id).resolve().is_relative_to(store.root.resolve())
    store.trash([image.id])
    assert store.path_of(image.id).resolve().is_relative_to(store.trash_dir.resolve())
