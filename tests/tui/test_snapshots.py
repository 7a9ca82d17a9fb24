"""Snapshots of every pane at 80x24 and 120x40, on seeded data served by the real `local` server.

The data dir sits at a fixed path (file paths show in the models pane), the images have fixed
times, and images are drawn with half cells: the same run gives the same pictures.
Update the baselines with `--snapshot-update` only after looking at the report.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import make_app, wait_for
from tests.tui.seed import seed_home
from tsr.client.local import shutdown_embedded
from tsr.config import load_config
from tsr.tui.app import TsrApp
from tsr.tui.widgets.gallery import Gallery
from tsr.tui.widgets.generate_form import GenerateForm
from tsr.tui.widgets.lora_picker import LoraPicker
from tsr.tui.widgets.model_list import ModelList
from tsr.tui.widgets.picture import Picture

SNAPSHOT_HOME = Path(tempfile.gettempdir()) / "tsr-tui-snapshots" / "home"
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data dir at a fixed path with models and 24 gallery images."""
    shutil.rmtree(SNAPSHOT_HOME.parent, ignore_errors=True)
    monkeypatch.setenv("TSR_HOME", str(SNAPSHOT_HOME))
    seed_home(load_config(), images=24)
    yield SNAPSHOT_HOME
    shutdown_embedded()  # before its data dir goes
    shutil.rmtree(SNAPSHOT_HOME.parent, ignore_errors=True)


def _gallery_ready(app: TsrApp) -> bool:
    gallery = app.screen.query_one(Gallery)
    preview = app.screen.query_one("#gallery-preview", Picture)
    if not gallery.items or preview.image_key != gallery.items[0].id:
        return False
    if gallery.layout_mode == "grid":
        return all(image.id in gallery.thumbnails for image in gallery.items[:6])
    return True


def _models_ready(app: TsrApp) -> bool:
    details = str(app.screen.query_one("#model-details").render())
    return bool(app.screen.query_one(ModelList).models) and "tensors" in details


def _loras_ready(app: TsrApp) -> bool:
    picker = app.screen.query_one(LoraPicker)
    return bool(picker.shown) and picker.trigger_owner is not None


def _generate_ready(app: TsrApp) -> bool:
    return bool(app.screen.query_one(GenerateForm).models)


READY: dict[str, Callable[[TsrApp], bool]] = {
    "gallery": _gallery_ready,
    "models": _models_ready,
    "loras": _loras_ready,
    "generate": _generate_ready,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pane", READY)
def test_pane(snap_compare: Callable[..., bool], seeded: Path, pane: str, size: str) -> None:
    app = make_app(start_pane=pane)

    async def ready(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        await wait_for(pilot, lambda: READY[pane](app), f"the {pane} pane's data")
        await pilot.pause(0.5)  # the last answers drawn (a loaded machine is slower)
        await wait_for(pilot, lambda: READY[pane](app), f"the {pane} pane's data")

    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)
