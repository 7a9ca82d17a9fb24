"""Importing a folder of PNGs from A1111, sd-server and elsewhere; bad files reported, not fatal."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.gallery.helpers import make_png, sdcpp_png
from tsr.errors import BadRequest
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageFilters, LoraUse

A1111_TEXT = (
    "portrait of a knight <lora:armor:0.7>\n"
    "Negative prompt: blurry\n"
    "Steps: 28, Sampler: Euler a, Schedule type: Simple, CFG scale: 6, Seed: 42, Size: 64x64, "
    'Model hash: 0123abcdef, Model: ponyV6, Lora hashes: "armor: aaaabbbbcccc", Version: v1.9.4'
)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    (folder / "sub").mkdir(parents=True)
    (folder / "knight.png").write_bytes(make_png(text=A1111_TEXT))
    (folder / "sub" / "cube.PNG").write_bytes(sdcpp_png())
    (folder / "plain.png").write_bytes(make_png(color=(1, 2, 3)))
    whole = make_png(color=(9, 9, 9))
    (folder / "broken.png").write_bytes(whole[: len(whole) // 2])
    (folder / "fake.png").write_text("this is not an image")
    (folder / "caption.txt").write_text("a knight")
    old = 1_600_000_000  # 2020-09-13
    os.utime(folder / "knight.png", (old, old))
    return folder


def test_import_reads_a1111_and_sdcpp_parameters_and_reports_bad_files(
    store: GalleryStore, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    source_bytes = (folder / "knight.png").read_bytes()
    report = store.import_folder(folder)

    assert len(report.imported) == 3
    assert report.ignored == 1
    failed = {Path(problem.file).name: problem.reason for problem in report.failed}
    assert set(failed) == {"broken.png", "fake.png"}
    assert "truncated" in failed["broken.png"]
    assert "not a PNG" in failed["fake.png"]
    # copied, not moved
    assert (folder / "knight.png").exists()

    knight = store.list(ImageFilters(prompt="knight")).items[0]
    assert knight.source == "a1111"
    assert (knight.checkpoint, knight.checkpoint_hash) == ("ponyV6", "0123abcdef")
    assert (knight.sampler, knight.scheduler, knight.seed, knight.steps) == (
        "Euler a",
        "Simple",
        42,
        28,
    )
    assert knight.loras == [LoraUse(name="armor", weight=0.7, sha256="aaaabbbbcccc")]
    assert knight.created.year == 2020
    # the file keeps its bytes, and so its own metadata
    assert store.path_of(knight.id).read_bytes() == source_bytes
    assert knight.sha256 == hashlib.sha256(source_bytes).hexdigest()

    cube = store.list(ImageFilters(prompt="red cube")).items[0]
    assert cube.source == "sdcpp"
    assert (cube.checkpoint, cube.sampler, cube.scheduler, cube.cfg) == (
        "sd15-random",
        "Euler a",
        "Karras",
        7.0,
    )
    assert cube.loras == [LoraUse(name="tiny-random-lora", weight=0.8)]
    assert store.list(ImageFilters(lora="armor")).items == [knight]

    plain = store.list(ImageFilters(prompt=None)).items
    assert any(image.source == "unknown" and image.prompt == "" for image in plain)


def test_import_twice_skips_duplicates(store: GalleryStore, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    store.import_folder(folder)
    again = store.import_folder(folder)
    assert again.imported == []
    assert sorted(Path(name).name for name in again.duplicates) == [
        "cube.PNG",
        "knight.png",
        "plain.png",
    ]
    assert store.stats().inbox == 3


def test_import_with_move_removes_only_what_it_took(store: GalleryStore, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    report = store.import_folder(folder, move=True)
    assert len(report.imported) == 3
    left = sorted(path.name for path in folder.rglob("*") if path.is_file())
    assert left == ["broken.png", "caption.txt", "fake.png"]


def test_import_refuses_a_missing_folder_or_the_gallery_itself(
    store: GalleryStore, tmp_path: Path
) -> None:
    with pytest.raises(BadRequest, match="not a folder"):
        store.import_folder(tmp_path / "nowhere")
    store.root.mkdir(parents=True, exist_ok=True)
    with pytest.raises(BadRequest, match="inside the gallery"):
        store.import_folder(store.root)


def test_many_files_from_one_moment_all_get_their_own_id(
    store: GalleryStore, tmp_path: Path
) -> None:
    folder = tmp_path / "unzipped"
    folder.mkdir()
    for shade in range(6):
        path = folder / f"{shade}.png"
        path.write_bytes(make_png(color=(shade, shade, shade)))
        os.utime(path, (315_532_800, 315_532_800))  # 1980-01-01, as zip archives like it
    report = store.import_folder(folder)
    assert len(set(report.imported)) == 6
    assert {store.get(image_id).created.year for image_id in report.imported} == {2000}
    assert all(store.path_of(image_id).is_file() for image_id in report.imported)
