"""Find a LoRA on (a fake) CivitAI from the models pane and download it, through the real server."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList, Static

from tests import modelfiles
from tests.fakes.civitai import FakeCivitai, fake_civitai  # noqa: F401
from tests.tui.conftest import make_app, wait_for, write_config
from tsr.tui.screens.civitai import CivitaiScreen


async def test_search_pick_a_version_and_download_it(
    home: Path,
    tmp_path: Path,
    fake_civitai: FakeCivitai,  # noqa: F811
) -> None:
    lora = modelfiles.write_sdxl_lora(tmp_path / "src" / "inkSketch.safetensors").read_bytes()
    fake_civitai.add_model(4201, "Ink Sketch XL", type="LORA", tags=["style"])
    fake_civitai.add_version(4201, 130072, name="v2", base_model="SDXL 1.0",
                             trained_words=["ink sketch"])  # fmt: skip
    fake_civitai.add_file(130072, 1, "inkSketch.safetensors", content=lora)
    fake_civitai.add_model(9000, "Pony Portraits", type="Checkpoint")
    fake_civitai.add_version(9000, 9001, base_model="Pony")
    config = write_config(f'[civitai]\nbase_url = "{fake_civitai.url}"\n')
    app = make_app(config, start_pane="models")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, CivitaiScreen), "the search")
        screen = app.screen
        assert isinstance(screen, CivitaiScreen)
        screen.query_one("#civitai-type").value = "LORA"  # type: ignore[attr-defined]
        await pilot.press(*"ink", "enter")
        await wait_for(pilot, lambda: screen.version is not None, "a result and its versions")
        results = screen.query_one("#civitai-results", OptionList)
        assert results.option_count == 1  # the checkpoint is filtered out by type
        details = str(screen.query_one("#civitai-version-text", Static).content)
        assert "SDXL 1.0" in details and "ink sketch" in details
        await pilot.press("ctrl+d")
        await wait_for(
            pilot,
            lambda: app.download is not None and app.download.state in ("done", "failed"),
            "the download",
        )
        assert app.download is not None and app.download.state == "done", app.download
        installed = config.model_roots()["loras"][0] / "inkSketch.safetensors"
        assert installed.read_bytes() == lora
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CivitaiScreen), "the models pane")
        job_line = str(app.screen.query_one("#job-line", Static).content)
        assert "Ink Sketch XL" in job_line and "done" in job_line
