"""`tsr tui` before the UI starts, the image renderers, and the terminal probe's guard."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.tui.conftest import make_app, wait_for, write_config
from tsr.tui.widgets.gallery import Gallery
from tsr.tui.widgets.picture import Geometry, fit_image, resolve_renderer

ROOT = Path(__file__).resolve().parents[2]
PRINT_RENDERER = "import tsr.tui.widgets.picture as p; print(p.resolve_renderer('auto'))"


def test_an_unknown_remote_is_one_line_before_any_ui(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tsr", "tui", "--remote", "nowhere"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "tsr: there is no remote named 'nowhere'; known remotes: local"
    ]


def test_importing_the_images_under_an_odd_terminal_does_not_crash() -> None:
    """stdout a fresh pseudo-terminal (0x0 cells), stdin redirected: textual-image's probe
    would raise termios.error, and its cell size would divide by zero."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-c", PRINT_RENDERER],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=60,
            cwd=ROOT,
        )
        ready, _, _ = select.select([leader], [], [], 5)
        output = os.read(leader, 4000).decode(errors="replace") if ready else ""
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 0, result.stderr.decode()
    assert output.splitlines()[-1].strip() in ("halfcell", "sixel", "tgp")


@pytest.mark.parametrize(
    ("choice", "low_bandwidth", "expected"),
    [
        ("halfcell", False, "halfcell"),
        ("tgp", True, "tgp"),
        ("auto", True, "unicode"),
        ("none", False, "none"),
    ],
)
def test_the_config_chooses_the_renderer(choice: str, low_bandwidth: bool, expected: str) -> None:
    assert resolve_renderer(choice, low_bandwidth=low_bandwidth) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("renderer", "size", "box", "cells", "pixels"),
    [
        ("halfcell", (1024, 1024), (30, 15), (30, 15), (30, 30)),
        ("halfcell", (832, 1216), (30, 15), (21, 15), (21, 30)),
        ("unicode", (1216, 832), (30, 15), (30, 10), (30, 10)),
        ("tgp", (1024, 1024), (20, 10), (20, 10), (200, 200)),
    ],
)
def test_images_are_fitted_to_their_box_keeping_their_shape(
    tmp_path: Path,
    renderer: str,
    size: tuple[int, int],
    box: tuple[int, int],
    cells: tuple[int, int],
    pixels: tuple[int, int],
) -> None:
    path = tmp_path / "image.png"
    Image.new("RGB", size, (200, 30, 30)).save(path)
    fitted = fit_image(path.read_bytes(), box, Geometry(renderer, 10, 20))  # type: ignore[arg-type]
    assert (fitted.cols, fitted.rows) == cells
    assert fitted.image.size == pixels
    assert fitted.image.getpixel((0, 0)) == (200, 30, 30)


async def test_low_bandwidth_keeps_the_gallery_in_rows_on_a_wide_terminal(home: Path) -> None:
    config = write_config("[tui]\nlow_bandwidth = true\n")
    app = make_app(config, start_pane="gallery")
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "gallery", "the gallery")
        await pilot.pause()
        assert app.screen.query_one(Gallery).layout_mode == "rows"
    wide = make_app(write_config(""), start_pane="gallery")
    async with wide.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: wide.current_mode == "gallery", "the gallery")
        await pilot.pause()
        assert wide.screen.query_one(Gallery).layout_mode == "grid"
