"""The LoRA picker and the generate form against the real server and a fake sd-server process."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import SelectionList, Static, TextArea

from tests.fakes.sd_server_fixtures import fake_sd_server_command, free_port
from tests.tui.conftest import make_app, wait_for, write_config
from tests.tui.seed import seed_models
from tsr.client import connect
from tsr.config import load_config
from tsr.schemas.images import ImageStats
from tsr.schemas.models import FileTriggers
from tsr.tui.widgets.generate_form import GenerateForm
from tsr.tui.widgets.lora_picker import LoraPicker
from tsr.tui.widgets.picture import Picture


@pytest.fixture
def studio(home: Path, tmp_path: Path) -> Path:
    """Seeded models, and a managed backend: a fake sd-server holding the Pony checkpoint."""
    launcher = tmp_path / "bin" / "sd-server"
    launcher.parent.mkdir(parents=True)
    fake = " ".join(f'"{part}"' for part in fake_sd_server_command())
    launcher.write_text(f'#!/bin/sh\nexec {fake} "$@"\n')
    launcher.chmod(0o755)
    seed_models(load_config())
    pony = load_config().model_roots()["checkpoints"][0] / "ponyDiffusionV6XL.safetensors"
    write_config(
        "[[backends]]\n"
        'name = "gpu"\nkind = "managed"\n'
        f'url = "http://127.0.0.1:{free_port()}"\nbinary = "{launcher}"\n'
        f'model = "{pony}"\nready_timeout = 20.0\n'
    )
    return pony


def picker_of(app: object) -> LoraPicker:
    return app.screen.query_one(LoraPicker)  # type: ignore[attr-defined, no-any-return]


async def test_pick_a_lora_and_its_trigger_words(studio: Path) -> None:
    app = make_app(load_config(), start_pane="loras")
    async with app.run_test(size=(120, 40)) as pilot:
        picker = picker_of(app)
        await wait_for(pilot, lambda: bool(picker.shown), "the LoRAs")
        form = app.screen.query_one(GenerateForm)
        assert form.model is not None and form.model.name == "ponyDiffusionV6XL.safetensors"
        # the pony checkpoint is loaded: SDXL-architecture LoRAs fit, the SD 1.5 one is hidden
        assert {lora.name for lora in picker.shown} == {
            "mychar.safetensors",
            "detail_tweaker_xl.safetensors",
        }
        await pilot.press("a")  # all families: the SD 1.5 one appears, marked
        await pilot.pause()
        assert "ink_sketch_sd15.safetensors" in {lora.name for lora in picker.shown}
        await pilot.press("a")
        mychar = next(i for i, lora in enumerate(picker.shown) if lora.name.startswith("mychar"))
        picker.query_one("#lora-list").highlighted = mychar  # type: ignore[attr-defined]
        await pilot.press("space", "minus", "minus")
        await wait_for(pilot, lambda: picker.trigger_owner is not None, "the trigger words")
        await wait_for(
            pilot,
            lambda: (
                picker.trigger_owner is not None and picker.trigger_owner.name.startswith("mychar")
            ),
            "mychar's trigger words",
        )
        triggers = picker.query_one("#lora-triggers", SelectionList)
        labels = [str(triggers.get_option_at_index(i).prompt) for i in range(triggers.option_count)]
        assert labels[0].startswith("mychar") and "training" in labels[0]
        triggers.focus()
        await pilot.press("space")  # the first word into the prompt
        picker.query_one("#lora-add-word").focus()
        await pilot.press(*"blue hat", "enter")
        await pilot.pause(0.5)
        prompt = form.query_one("#form-prompt", TextArea).text
        assert prompt == "mychar, blue hat"
        loras = str(form.query_one("#form-loras", Static).content)
        assert loras == "mychar 0.8"
        with connect("local") as client:
            words = client.get(
                "/api/db/triggers", FileTriggers, params={"file": picker.trigger_owner.id}
            )
        mine = [w.word for w in words.triggers if "user" in w.sources]
        assert mine == ["blue hat"]


async def test_generate_and_watch_the_images_arrive(studio: Path) -> None:
    app = make_app(load_config(), start_pane="gallery")
    async with app.run_test(size=(120, 40)) as pilot:
        inbox = app.screen.query_one("#gallery-view")
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        await pilot.pause(0.5)
        assert inbox.items == []  # type: ignore[attr-defined]
        await pilot.press("3")
        await wait_for(pilot, lambda: app.current_mode == "create", "the generate pane")
        form = app.screen.query_one(GenerateForm)
        await wait_for(pilot, lambda: form.model is not None, "the checkpoints")
        form.query_one("#form-prompt", TextArea).text = "a lighthouse at dusk"
        form.query_one("#form-batch").value = "2"  # type: ignore[attr-defined]
        form.query_one("#form-preset").value = "portrait"  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.job is not None, "the job to be queued")
        await wait_for(
            pilot,
            lambda: app.job is not None and app.job.state in ("done", "failed"),
            "the job to end",
        )
        assert app.job is not None and app.job.state == "done", app.job
        assert len(app.job.image_ids) == 2
        results = list(app.screen.query(".result").results(Picture))
        await wait_for(
            pilot,
            lambda: {p.image_key for p in results} >= set(app.job.image_ids),  # type: ignore[union-attr]
            "the images under the form",
        )
        job_line = str(app.screen.query_one("#job-line", Static).content)
        assert "done, 2 image(s) in the inbox" in job_line
        with connect("local") as client:
            stats = client.get("/api/images/stats", ImageStats)
        assert stats.inbox == 2
        # the inbox, open all along, got them from the server's events
        assert len(inbox.items) == 2  # type: ignore[attr-defined]
        assert inbox.items[0].height == 1216  # type: ignore[attr-defined]
        await pilot.press("4")
        await wait_for(pilot, lambda: app.current_mode == "gallery", "the gallery")
        assert app.screen.query_one("#gallery-view") is inbox


async def test_a_rescan_fills_the_lora_picker_without_a_restart(home: Path) -> None:
    from tests.modelfiles import write_pony_lora

    app = make_app(load_config(), start_pane="loras")
    async with app.run_test(size=(80, 24)) as pilot:
        picker = picker_of(app)
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        await pilot.pause(0.5)
        assert picker.shown == []
        lora_root = load_config().model_roots()["loras"][0]
        write_pony_lora(lora_root / "pony-style.safetensors")
        await pilot.press("1")  # the models pane
        await pilot.press("R")  # rescan on the server
        await pilot.press("2")  # back to the LoRAs, which catch up when the scan is done
        await wait_for(
            pilot,
            lambda: "pony-style.safetensors" in {lora.name for lora in picker_of(app).shown},
            "the new LoRA in the picker",
        )
