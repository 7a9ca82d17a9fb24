"""The gallery API through tsr's clients, against the embedded `local` and a `tsr serve`."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.api_images.conftest import SEED_WORD, Served
from tests.gallery.helpers import make_png
from tsr.client import AsyncClient, Client
from tsr.errors import AuthRejected, BadRequest, NotFound, RootViolation
from tsr.schemas.images import ImageFilters, ImageOut


def walk(client: Client, filters: ImageFilters, limit: int) -> list[ImageOut]:
    """Every image matching `filters`, page by page through the cursor."""
    items: list[ImageOut] = []
    cursor = None
    while True:
        page = client.images.list(filters, cursor=cursor, limit=limit)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def listed(served: Served, **filters: object) -> list[int]:
    """Ids of the first page matching `filters`, newest first."""
    page = served.client.images.list(ImageFilters.model_validate(filters), limit=100)
    return [image.id for image in page.items]


# ---- pages and filters -------------------------------------------------------------------------


def test_pages_come_newest_first_and_the_cursor_walks_them_all(served: Served) -> None:
    newest_first = served.seeded[::-1]
    first = served.client.images.list(ImageFilters(prompt=SEED_WORD), limit=2)
    assert [image.id for image in first.items] == newest_first[:2]
    assert first.next_cursor == str(newest_first[1])
    walked = walk(served.client, ImageFilters(prompt=SEED_WORD), 2)
    assert [image.id for image in walked] == newest_first
    everything = [image.id for image in walk(served.client, ImageFilters(state="all"), 3)]
    assert everything == sorted(set(everything), reverse=True)
    stats = served.client.images.stats()
    assert len(everything) == stats.inbox + stats.kept + stats.trashed
    assert stats.total_bytes > 0


def test_filters_pick_the_images_they_describe(served: Served) -> None:
    ids = served.seeded
    assert listed(served, checkpoint="juggernautXL_v9") == [ids[3], ids[2]]
    assert listed(served, lora="ink_sketch") == [ids[4], ids[2]]
    assert listed(served, prompt="lighthouse") == [ids[1]]
    assert listed(served, prompt=SEED_WORD, favourite=True) == [ids[4], ids[1]]
    assert listed(served, prompt=SEED_WORD, checkpoint="1A2B3C4D5E") == ids[::-1]
    assert listed(served, prompt=SEED_WORD, since=served.started) == ids[::-1]
    assert listed(served, prompt=SEED_WORD, until=served.started) == []
    assert listed(served, prompt=SEED_WORD, state="trashed") == []


def test_bad_page_requests_are_refused_with_a_sentence(served: Served) -> None:
    with pytest.raises(BadRequest, match=r"limit: Input should be less than or equal to 500"):
        served.client.images.list(limit=501)
    with pytest.raises(BadRequest) as caught:
        served.client.images.list(cursor="abc")
    assert str(caught.value) == "the page cursor 'abc' is not valid; start again without one"


# ---- files, thumbnails, metadata ---------------------------------------------------------------


def test_the_file_is_the_png_with_its_parameters_and_never_changes(served: Served) -> None:
    image_id = served.seeded[0]
    meta = served.client.images.get(image_id)
    data = served.client.images.file(image_id)
    assert hashlib.sha256(data).hexdigest() == meta.sha256
    with Image.open(io.BytesIO(data)) as png:
        assert (png.format, png.size) == ("PNG", (64, 48))
        assert png.text["parameters"] == meta.parameters
        assert png.convert("RGB").getpixel((0, 0)) == (0, 200, 120)
    with served.raw() as http:
        response = http.get(f"/api/images/{image_id}")
        assert response.headers["content-type"] == "image/png"
        assert "immutable" in response.headers["cache-control"]
        assert response.content == data
        again = http.get(
            f"/api/images/{image_id}", headers={"If-None-Match": response.headers["etag"]}
        )
    assert (again.status_code, again.content) == (304, b"")


def test_thumbnails_are_webp_made_on_first_request_and_cached(served: Served) -> None:
    image_id = served.seeded[1]
    cached = served.home / "cache" / "thumbs" / "32" / f"{image_id}.webp"
    assert not cached.exists()
    data = served.client.images.thumbnail(image_id, 32)
    with Image.open(io.BytesIO(data)) as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", (32, 24))
    assert cached.read_bytes() == data
    assert served.client.images.thumbnail(image_id, 32) == data
    with Image.open(io.BytesIO(served.client.images.thumbnail(image_id))) as thumb:
        assert thumb.size == (64, 48)  # the default size never enlarges a small image
    with pytest.raises(BadRequest, match="size"):
        served.client.images.thumbnail(image_id, 8)
    with pytest.raises(NotFound):
        served.client.images.thumbnail(1)


def test_meta_holds_the_parameters_the_image_was_made_with(served: Served) -> None:
    meta = served.client.images.get(served.seeded[2])
    assert meta.checkpoint == "juggernautXL_v9"
    assert [(lora.name, lora.weight) for lora in meta.loras] == [
        ("add_detail", 0.5),
        ("ink_sketch", 0.6),
    ]
    assert (meta.seed, meta.steps, meta.sampler, meta.scheduler, meta.cfg) == (
        103,
        25,
        "DPM++ 2M",
        "Karras",
        7.0,
    )
    assert meta.prompt == "seeded: a fox in the snow"
    assert "Seed: 103" in meta.parameters
    assert "<lora:ink_sketch:0.6>" in meta.parameters
    assert (meta.state, meta.source) == ("inbox", "tsr")


# ---- review ------------------------------------------------------------------------------------


def test_an_edit_changes_favourite_rating_tags_notes_and_undo_reverts_it(served: Served) -> None:
    (image_id,), _tag = served.fresh(1)
    images = served.client.images
    out = images.update(
        image_id, favourite=True, rating=4, tags=["  blue  sky ", "cube", "cube"], notes="best"
    )
    assert (out.favourite, out.rating, out.tags, out.notes) == (
        True,
        4,
        ["blue sky", "cube"],
        "best",
    )
    assert images.get(image_id).tags == ["blue sky", "cube"]
    assert images.update(image_id, state="kept").state == "kept"
    assert images.undo().action == "keep"
    undone = images.undo()
    assert (undone.action, undone.ids) == ("edit favourite, notes, rating, tags", [image_id])
    after = images.get(image_id)
    assert (after.state, after.favourite, after.rating, after.tags, after.notes) == (
        "inbox",
        False,
        0,
        [],
        "",
    )
    with pytest.raises(BadRequest, match="rating"):
        images.update(image_id, rating=9)
    with served.raw() as http:
        unknown = http.patch(f"/api/images/{image_id}", json={"colour": "red"})
    assert unknown.status_code == 422


def test_trash_moves_the_file_out_of_the_listing_and_undo_brings_it_back(served: Served) -> None:
    (image_id,), tag = served.fresh(1)
    images = served.client.images
    meta = images.get(image_id)
    in_gallery, in_trash = served.gallery / meta.file, served.gallery / ".trash" / meta.file
    assert in_gallery.is_file() and not in_trash.exists()
    trashed = images.trash_one(image_id)
    assert (trashed.action, trashed.ids) == ("trash", [image_id])
    assert not in_gallery.exists() and in_trash.is_file()
    assert listed(served, prompt=tag) == []
    assert listed(served, prompt=tag, state="trashed") == [image_id]
    undone = images.undo()
    assert (undone.action, undone.ids) == ("trash", [image_id])
    assert in_gallery.is_file() and not in_trash.exists()
    assert listed(served, prompt=tag) == [image_id]
    assert images.update(image_id, state="trashed").state == "trashed"
    assert in_trash.is_file()
    assert images.restore_one(image_id).ids == [image_id]
    assert images.restore_one(image_id).ids == []  # not in the trash: nothing to do
    assert images.get(image_id).state == "inbox"
    assert hashlib.sha256(images.file(image_id)).hexdigest() == meta.sha256


def test_trashing_or_restoring_an_unknown_image_says_so(served: Served) -> None:
    with pytest.raises(NotFound) as caught:
        served.client.images.trash_one(1)
    assert str(caught.value) == "there is no image with id 1"
    with pytest.raises(NotFound) as caught:
        served.client.images.restore_one(2)
    assert str(caught.value) == "there is no image with id 2"


def test_bulk_keep_trash_and_restore_apply_to_every_id(served: Served) -> None:
    ids, tag = served.fresh(3)
    images = served.client.images
    assert sorted(images.keep(ids[:2]).ids) == sorted(ids[:2])
    assert images.keep(ids[:2]).ids == []
    assert sorted(images.trash(ids).ids) == sorted(ids)
    assert sorted(images.restore(ids).ids) == sorted(ids)

    def states() -> dict[int, str]:
        page = images.list(ImageFilters(prompt=tag, state="all"))
        return {image.id: image.state for image in page.items}

    assert states() == {ids[0]: "kept", ids[1]: "kept", ids[2]: "inbox"}
    with pytest.raises(NotFound, match="there is no image with id 1"):
        images.trash([ids[2], 1])
    assert states()[ids[2]] == "inbox"  # all or nothing
    with pytest.raises(BadRequest, match="ids"):
        images.keep([])


def test_purge_deletes_only_trashed_images_and_must_be_told_which(served: Served) -> None:
    ids, tag = served.fresh(3)
    images = served.client.images
    with pytest.raises(BadRequest) as caught:
        images.purge()
    assert str(caught.value) == (
        "say which trashed images to purge: ids, older_than_days, or all_trash: true"
    )
    images.trash([ids[0]])
    trashed_file = served.gallery / ".trash" / images.get(ids[0]).file
    assert images.purge(older_than_days=30).ids == []
    result = images.purge(ids)
    assert result.ids == [ids[0]] and result.bytes_freed > 0
    assert not trashed_file.exists()
    with pytest.raises(NotFound):
        images.get(ids[0])
    assert listed(served, prompt=tag) == ids[1:]
    images.trash([ids[1]])
    everything = images.purge(all_trash=True)
    assert ids[1] in everything.ids and ids[2] not in everything.ids
    assert images.stats().trashed == 0
    assert images.get(ids[2]).state == "inbox"


# ---- import ------------------------------------------------------------------------------------


def test_import_reads_a_folder_inside_the_data_dir(served: Served) -> None:
    images = served.client.images
    folder, tag = served.fresh_folder(2)
    (folder / "notes.txt").write_text("not an image")
    report = images.import_folder(str(folder))
    assert (len(report.imported), report.ignored, report.failed) == (2, 1, [])
    meta = images.get(report.imported[0])
    assert (meta.checkpoint, meta.source, meta.steps) == ("freshmodel", "a1111", 20)
    assert meta.prompt.startswith(tag)
    again = images.import_folder(str(folder))
    assert (again.imported, len(again.duplicates)) == ([], 2)
    moved_folder, _ = served.fresh_folder(1)
    moved = images.import_folder(str(moved_folder), move=True)
    assert len(moved.imported) == 1 and list(moved_folder.iterdir()) == []


def test_import_refuses_folders_outside_the_data_dir_and_model_roots(
    served: Served, tmp_path: Path
) -> None:
    images = served.client.images
    with pytest.raises(RootViolation) as caught:
        images.import_folder("/etc")
    assert str(caught.value) == (
        "/etc is outside the folders this server imports from; put the images in a folder "
        f"under its data dir {served.home} or a model root and import that"
    )
    outside = tmp_path / "pictures"
    outside.mkdir()
    (outside / "a.png").write_bytes(make_png(text="outside\nSteps: 1"))
    with pytest.raises(RootViolation):
        images.import_folder(str(outside))
    link = served.home / "incoming" / f"link-{tmp_path.name}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    with pytest.raises(RootViolation):
        images.import_folder(str(link))
    with pytest.raises(BadRequest, match="absolute path"):
        images.import_folder("incoming")
    with pytest.raises(BadRequest, match="is not a folder"):
        images.import_folder(str(served.home / "no-such-folder"))
    assert (outside / "a.png").exists()


# ---- hostile input, auth -----------------------------------------------------------------------

HOSTILE_IDS = [
    "..%2F..%2Ftsr.db",
    "%2E%2E",
    "..",
    "-1",
    "0",
    "99999999999999999999",
    "1.5",
    "0x10",
    "%00",
    "1%2F..%2F..%2Ftsr.db",
    "%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("suffix", ["", "/thumb", "/meta", "/restore"])
def test_hostile_ids_never_reach_a_file(served: Served, suffix: str) -> None:
    method = "POST" if suffix == "/restore" else "GET"
    with served.raw() as http:
        for bad in HOSTILE_IDS:
            response = http.request(method, f"/api/images/{bad}{suffix}")
            assert response.status_code == 404, (bad, suffix)
            assert response.headers["content-type"] == "application/json", (bad, suffix)
            assert b"SQLite" not in response.content and b"root:" not in response.content
        for bad in HOSTILE_IDS:
            assert http.delete(f"/api/images/{bad}").status_code == 404
            assert http.patch(f"/api/images/{bad}", json={}).status_code == 404
    with pytest.raises(NotFound, match="ids are numbers"):
        served.client.images.get("../tsr.db")  # type: ignore[arg-type]


def test_a_served_gallery_needs_the_token(served: Served) -> None:
    if served.process is None:
        pytest.skip("the embedded server has no token")
    with Client(served.process.url) as anonymous, pytest.raises(AuthRejected):
        anonymous.images.list()


# ---- events, async client ----------------------------------------------------------------------


def test_gallery_changes_are_published_as_image_events(served: Served) -> None:
    with Client(served.client.endpoint) as listener:
        stream = listener.events(["image"])
        assert next(stream).kind == "subscribed"
        ids, _tag = served.fresh(2)
        imported = next(stream)
        assert (imported.topic, imported.kind) == ("image", "imported")
        assert sorted(imported.data["ids"]) == sorted(ids)
        served.client.images.trash(ids)
        trashed = next(stream)
        assert (trashed.kind, sorted(trashed.data["ids"])) == ("trashed", sorted(ids))
        served.client.images.undo()
        undone = next(stream)
        assert (undone.kind, undone.data["action"], sorted(undone.data["ids"])) == (
            "undone",
            "trash",
            sorted(ids),
        )
        served.client.images.update(ids[0], favourite=True)
        updated = next(stream)
        assert (updated.kind, updated.data["ids"]) == ("updated", [ids[0]])
        assert updated.data["image"]["favourite"] is True
        served.client.images.trash_one(ids[1])
        assert next(stream).kind == "trashed"
        served.client.images.purge([ids[1]])
        purged = next(stream)
        assert (purged.kind, purged.data["ids"]) == ("purged", [ids[1]])
        assert purged.data["bytes_freed"] > 0
        stream.close()


async def test_the_async_client_offers_the_same_gallery(served: Served) -> None:
    ids, tag = served.fresh(1)
    async with AsyncClient(served.client.endpoint) as client:
        page = await client.images.list(ImageFilters(prompt=tag))
        assert [image.id for image in page.items] == ids
        assert (await client.images.trash_one(ids[0])).ids == ids
        assert (await client.images.stats()).trashed >= 1
        assert (await client.images.undo()).ids == ids
        assert (await client.images.update(ids[0], rating=3)).rating == 3
        with Image.open(io.BytesIO(await client.images.file(ids[0]))) as png:
            assert png.size == (40, 30)
        with Image.open(io.BytesIO(await client.images.thumbnail(ids[0], 16))) as thumb:
            assert (thumb.format, thumb.size) == ("WEBP", (16, 12))
        assert (await client.images.get(ids[0])).rating == 3
