"""`python -m tsr images ...` against the embedded `local` and a `tsr serve` with a token."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.api_images.conftest import CLI_TIMEOUT, SEED_WORD, Served
from tests.server.running import cli_env
from tsr.errors import NotFound
from tsr.schemas.images import ImageFilters


def test_list_prints_a_table_and_the_next_cursor_or_json(served: Served) -> None:
    newest = served.seeded[::-1]
    result = served.cli("images", "list", "--prompt", SEED_WORD, "--limit", "2")
    assert (result.returncode, result.stderr) == (0, "")
    header, first, second, more = result.stdout.splitlines()
    assert header.split() == ["ID", "CREATED", "STATE", "FAV", "MODEL", "SIZE", "SEED", "PROMPT"]
    assert first.split()[0] == str(newest[0])
    # id, date, time, then the columns that do not depend on when the test runs
    assert " ".join(first.split()[3:]) == (
        "inbox * dreamshaper_8 64x48 105 seeded: a neon market in the rain"
    )
    assert second.split()[0] == str(newest[1])
    assert more == f"more: add --cursor {newest[1]}"
    rest = served.cli("images", "list", "--prompt", SEED_WORD, "--cursor", str(newest[1]), "--json")
    page = json.loads(rest.stdout)
    assert [image["id"] for image in page["items"]] == newest[2:]
    assert page["next_cursor"] is None
    kept = served.cli("images", "list", "--state", "kept", "--model", "nothing-like-it")
    assert kept.stdout == "no images\n"


def test_show_prints_every_field_and_the_parameters_text(served: Served) -> None:
    image_id = served.seeded[2]
    result = served.cli("images", "show", str(image_id))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert f"id:          {image_id}" in lines
    assert "checkpoint:  juggernautXL_v9 [1a2b3c4d5e]" in lines
    assert "loras:       add_detail:0.5, ink_sketch:0.6" in lines
    assert "seed:        103" in lines
    parameters = served.client.images.get(image_id).parameters
    assert result.stdout.endswith(f"\nparameters:\n{parameters}\n")
    as_json = json.loads(served.cli("images", "show", str(image_id), "--json").stdout)
    assert (as_json["id"], as_json["sampler"]) == (image_id, "DPM++ 2M")
    missing = served.cli("images", "show", "1")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "tsr: there is no image with id 1\n"


def test_trash_undo_keep_and_restore_from_the_command_line(served: Served) -> None:
    ids, _tag = served.fresh(2)
    listed = " ".join(str(i) for i in ids)
    trashed = served.cli("images", "trash", *map(str, ids))
    assert trashed.stdout == f"trashed 2 images: {listed.replace(' ', ', ')}\n"
    undone = served.cli("images", "undo")
    assert undone.stdout.startswith("undid trash of 2 images: ")
    assert {served.client.images.get(i).state for i in ids} == {"inbox"}
    kept = json.loads(served.cli("images", "keep", str(ids[0]), str(ids[0]), "--json").stdout)
    assert kept == {"action": "keep", "ids": [ids[0]]}
    served.cli("images", "trash", str(ids[1]))
    restored = served.cli("images", "restore", str(ids[1]), str(ids[0]))
    assert restored.stdout == f"restored 1 image: {ids[1]}\n1 image already out of the trash\n"
    assert [served.client.images.get(i).state for i in ids] == ["kept", "inbox"]


def test_purge_asks_once_and_refuses_without_a_terminal(served: Served) -> None:
    ids, _tag = served.fresh(2)
    served.client.images.trash(ids)
    refused = served.cli("images", "purge", str(ids[0]))
    assert refused.returncode == 2
    assert refused.stderr == (
        "tsr: purge deletes images for good and there is no terminal to ask on; "
        "add --yes to purge anyway\n"
    )
    nothing = served.cli("images", "purge")
    assert nothing.returncode == 2 and "say what to purge" in nothing.stderr
    declined = purge_on_a_terminal(served, str(ids[0]), answer="n")
    question = f"Delete image {ids[0]} for good (only if in the trash)? [y/N]: "
    assert (declined.returncode, declined.stdout) == (1, question)
    assert declined.stderr == "nothing purged\n"
    assert served.client.images.get(ids[0]).state == "trashed"
    accepted = purge_on_a_terminal(served, str(ids[0]), answer="y")
    assert accepted.returncode == 0
    assert re.fullmatch(re.escape(question) + r"purged 1 image, freed \d+ B\n", accepted.stdout)
    with pytest.raises(NotFound):
        served.client.images.get(ids[0])
    forced = json.loads(served.cli("images", "purge", str(ids[1]), "--yes", "--json").stdout)
    assert forced["ids"] == [ids[1]]


def purge_on_a_terminal(
    served: Served, *args: str, answer: str
) -> subprocess.CompletedProcess[str]:
    """`tsr images purge ARGS` with a pseudo-terminal as stdin, answering its question."""
    where = ["--local"] if served.mode == "local" else ["--remote", "gpu"]
    leader, follower = pty.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())
        return subprocess.run(
            [sys.executable, "-m", "tsr", "images", "purge", *args, *where],
            env=cli_env(served.home, served.cli_config),
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)


def test_download_saves_whole_files_named_by_id(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ids = served.seeded[:2]
    result = served.cli("images", "download", *map(str, ids), "--out", str(out))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [str(out / f"{i}.png") for i in ids]
    for image_id in ids:
        with Image.open(out / f"{image_id}.png") as png:
            assert (png.format, png.size) == ("PNG", (64, 48))
    thumbs = served.cli(
        "images", "download", str(ids[0]), "1", "--thumb", "--size", "32", "--out", str(out)
    )
    assert thumbs.returncode == 1
    assert thumbs.stderr == "tsr: there is no image with id 1\n"
    with Image.open(out / f"{ids[0]}.webp") as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", (32, 24))
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [f"{ids[0]}.png", f"{ids[1]}.png", f"{ids[0]}.webp"]
    )
    not_a_folder = served.cli(
        "images", "download", str(ids[0]), "--out", str(out / f"{ids[0]}.png")
    )
    assert (not_a_folder.returncode, not_a_folder.stderr) == (
        1,
        f"tsr: {out / f'{ids[0]}.png'} is a file, not a folder; give --out a folder to save into\n",
    )


def test_open_hands_the_downloaded_image_to_the_viewer(served: Served, tmp_path: Path) -> None:
    image_id = served.seeded[3]
    bin_dir, record = tmp_path / "bin", tmp_path / "viewer-was-given"
    bin_dir.mkdir()
    viewer = bin_dir / "xdg-open"
    viewer.write_text(
        f"#!/bin/sh\nprintf '%s' \"$1\" > '{record}.part' && mv '{record}.part' '{record}'\n"
    )
    viewer.chmod(0o755)
    path_env = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    opened = served.cli("images", "open", str(image_id), env={"PATH": path_env, "DISPLAY": ":0"})
    assert opened.returncode == 0
    shown = Path(opened.stdout.removeprefix("opened ").strip())
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text() == str(shown)
    with Image.open(shown) as png:
        assert png.size == (64, 48)
    headless = served.cli(
        "images", "open", str(image_id), env={"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    )
    assert headless.returncode == 0
    assert headless.stdout.endswith(f"/{image_id}.png (no image viewer to open it with)\n")
    saved = Path(headless.stdout.removeprefix("saved ").split(" (")[0])
    assert saved.is_file()
    for folder in (shown.parent, saved.parent):
        shutil.rmtree(folder)


def test_import_from_the_command_line(served: Served) -> None:
    folder, tag = served.fresh_folder(2)
    imported = served.cli("images", "import", str(folder))
    assert (imported.returncode, imported.stdout) == (0, "imported 2 images\n")
    assert len(served.client.images.list(ImageFilters(prompt=tag)).items) == 2
    again = json.loads(served.cli("images", "import", str(folder), "--json").stdout)
    assert (again["imported"], len(again["duplicates"])) == ([], 2)
    refused = served.cli("images", "import", "/etc")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "tsr: /etc is outside the folders this server imports from; put the images in a folder"
    )
