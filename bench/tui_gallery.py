"""Benchmark: what the TUI costs over ssh: start, remote switch, gallery moves and page turns.

Runs the real app against real servers: the embedded `local` one on a temporary data dir seeded
with tiny model files and PNGs (as the tests seed them), and, for the remote switch, a `tsr serve`
process on a second data dir. Frames are rendered by a byte-counting driver at 200x60 in
truecolor, as a terminal over ssh would receive them.

    uv run python bench/tui_gallery.py [--images 300] [--runs 5]

Goals (issue 7): first frame <= 0.8 s and <= 1 MB; remote switch to a populated model list
<= 300 ms; cursor move <= 20 KB (highlight) and <= 100 KB, 50 ms with the preview; a page turn
of 12 thumbnails <= 180 KB and 120 ms; a held arrow key sends highlights, not previews.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ["TEXTUAL_COLOR_SYSTEM"] = "truecolor"  # before textual is imported: count real colours
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from textual import events  # noqa: E402
from tui_driver import LOG, ByteCountingDriver  # noqa: E402

if TYPE_CHECKING:
    from tests.server.running import ServeProcess

SIZE = (200, 60)
#: the gallery's preview follows the cursor after this pause (tsr.tui.widgets.gallery)
DEBOUNCE = 0.12
#: a held arrow key repeats about this often
KEY_REPEAT = 0.033


def kb(count: float) -> str:
    """Bytes as KB with one decimal."""
    return f"{count / 1000:.1f} KB"


def setup_home(images: int) -> Path:
    """A data dir with models and `images` PNGs; TSR_HOME and TSR_CONFIG point at it."""
    home = Path(tempfile.mkdtemp(prefix="tsr-bench-"))
    os.environ["TSR_HOME"] = str(home)
    os.environ["TSR_CONFIG"] = str(home / "config.toml")
    from tests.tui.seed import seed_gallery, seed_models
    from tsr.config import load_config

    config = load_config()
    seed_models(config)
    seed_gallery(config, images)
    return home


async def measure(action: Callable[[], Awaitable[object]], quiet: float = 0.3) -> tuple[int, float]:
    """Run `action`; the bytes written until the screen is quiet, and ms to the last write."""
    mark = LOG.mark()
    start = time.monotonic()
    await action()
    await LOG.settle(quiet)
    last = LOG.last_write_since(mark)
    return LOG.bytes_since(mark), ((last - start) * 1000 if last else 0.0)


async def gallery_figures(runs: int) -> dict[str, str]:
    """First frame, cursor moves, page turns and a held key in the gallery."""
    from tsr.config import load_config
    from tsr.tui.app import build_app
    from tsr.tui.widgets.gallery import Gallery

    figures: dict[str, str] = {}
    start = time.monotonic()
    app = build_app(load_config(), renderer="halfcell", start_pane="gallery")
    app.driver_class = ByteCountingDriver
    async with app.run_test(headless=False, size=SIZE) as pilot:
        first = LOG.first_write_since(0)
        assert first is not None
        await LOG.settle(0.2)
        first_bytes = LOG.bytes_since(0)
        figures["first frame"] = f"{(first - start) * 1000:.0f} ms, {kb(first_bytes)} until quiet"
        gallery = app.screen.query_one(Gallery)
        while not gallery.items:
            await pilot.pause(0.05)
        await LOG.settle(0.5)
        figures["gallery filled"] = (
            f"{(LOG.writes[-1][0] - start) * 1000:.0f} ms after start, "
            f"{kb(LOG.bytes_since(0))} in all"
        )
        gallery.focus()

        highlight, preview, preview_ms = [], [], []
        for _ in range(runs):
            mark = LOG.mark()
            pressed = time.monotonic()
            await pilot.press("right")
            await LOG.settle(0.3)
            # what reached the terminal before the preview's pause ran out: the highlight
            writes = LOG.writes[mark:]
            highlight.append(sum(n for t, n in writes if t - pressed < DEBOUNCE))
            preview.append(sum(n for _, n in writes))
            later = [t for t, _ in writes if t - pressed >= DEBOUNCE]
            preview_ms.append((later[-1] - pressed - DEBOUNCE) * 1000 if later else 0.0)
        figures["cursor move, highlight only"] = f"{kb(statistics.median(highlight))} (median)"
        figures["cursor move with preview"] = (
            f"{kb(statistics.median(preview))} in all, drawn "
            f"{statistics.median(preview_ms):.0f} ms after the {DEBOUNCE * 1000:.0f} ms pause"
        )

        turns, turn_ms = [], []
        for _ in range(runs):
            mark = LOG.mark()
            pressed = time.monotonic()
            await pilot.press("pagedown")
            await LOG.settle(0.3)
            # the thumbnails come at once; the preview follows after its pause
            writes = [(t - pressed, n) for t, n in LOG.writes[mark:]]
            page = [(t, n) for t, n in writes if t < DEBOUNCE]
            turns.append(sum(n for _, n in page))
            turn_ms.append(page[-1][0] * 1000 if page else 0.0)
        figures["page turn (12 thumbnails)"] = (
            f"{kb(statistics.median(turns))}, {statistics.median(turn_ms):.0f} ms to the last "
            "thumbnail (median; the preview follows as for a move)"
        )

        await pilot.press("home")
        await LOG.settle(0.5)
        mark = LOG.mark()
        for _ in range(10):  # a held key: repeats arrive faster than the app answers them
            app.post_message(events.Key("right", None))
            await asyncio.sleep(KEY_REPEAT)
        held = LOG.bytes_since(mark)
        await LOG.settle(0.3)
        figures["held arrow key, 10 repeats in a page"] = (
            f"{kb(held)} while held ({kb(held / 10)} per repeat), "
            f"{kb(LOG.bytes_since(mark) - held)} for the one preview after"
        )
    return figures


def start_remote() -> ServeProcess:
    """A `tsr serve` on loopback with its own data dir of models, named `gpu` in our config."""
    from tests.server.running import ServeProcess
    from tests.tui.seed import seed_models
    from tsr.config import load_config

    other = Path(tempfile.mkdtemp(prefix="tsr-bench-remote-"))
    other_config = other / "config.toml"
    other_config.write_text("")
    saved = os.environ["TSR_HOME"], os.environ["TSR_CONFIG"]
    os.environ["TSR_HOME"], os.environ["TSR_CONFIG"] = str(other), str(other_config)
    seed_models(load_config())
    os.environ["TSR_HOME"], os.environ["TSR_CONFIG"] = saved
    server = ServeProcess(other, other_config)
    Path(os.environ["TSR_CONFIG"]).write_text(f'[remotes.gpu]\nurl = "{server.url}"\n')
    return server


async def remote_switch_figures(runs: int) -> dict[str, str]:
    """Switch from `local` to the `gpu` remote until its model list is on screen, and back."""
    from tsr.config import load_config
    from tsr.tui.app import build_app
    from tsr.tui.widgets.model_list import ModelList

    app = build_app(load_config(), renderer="halfcell", start_pane="models")
    app.driver_class = ByteCountingDriver
    timings = []
    async with app.run_test(headless=False, size=SIZE) as pilot:
        while not app.connection.online:
            await pilot.pause(0.05)
        for target in ["gpu", "local"] * runs:
            model_list = app.screen.query_one(ModelList)
            model_list.models = []
            start = time.monotonic()
            app.use_remote(target)
            # polled finely: the time to the populated list is what is measured
            while not (app.connection.remote == target and model_list.models):  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            if target == "gpu":
                timings.append((time.monotonic() - start) * 1000)
    return {
        "remote switch to a populated model list": (
            f"{statistics.median(timings):.0f} ms (median of {len(timings)})"
        )
    }


def main() -> None:
    """Seed, run both scenarios, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    setup_home(args.images)
    figures = asyncio.run(gallery_figures(args.runs))
    from tsr.client.local import shutdown_embedded

    shutdown_embedded()
    server = start_remote()
    try:
        figures |= asyncio.run(remote_switch_figures(args.runs))
    finally:
        server.stop()
        shutdown_embedded()
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
