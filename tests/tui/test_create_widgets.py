"""The generate form and the LoRA picker on their own: family defaults, edits, LoRAs, triggers."""

from __future__ import annotations

from datetime import datetime

import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Input, Select, SelectionList, TextArea

from tsr.errors import BadRequest
from tsr.schemas.generation_api import CheckpointOut
from tsr.schemas.images import ImageOut, LoraUse
from tsr.schemas.models import CivitaiRef, ModelFile, TriggerWord
from tsr.tui.widgets.generate_form import GenerateForm
from tsr.tui.widgets.lora_picker import LoraPicker

WHEN = datetime(2025, 1, 1)


def model(file_id: int, name: str, kind: str, family: str, architecture: str) -> ModelFile:
    return ModelFile(
        id=file_id,
        path=f"/models/{kind}s/{name}.safetensors",
        name=f"{name}.safetensors",
        root=f"/models/{kind}s",
        size=6_000_000,
        kind=kind,
        family=family,
        architecture=architecture,
        first_seen=WHEN,
        last_seen=WHEN,
    )


PONY = CheckpointOut(
    **model(1, "ponyDiffusionV6XL", "checkpoint", "pony", "sdxl").model_dump(),
    loaded_on=["default"],
).model_copy(
    update={
        "civitai": CivitaiRef(
            model_id=257749,
            version_id=290640,
            model_name="Pony Diffusion V6 XL",
            version_name="V6",
            base_model="Pony",
        )
    }
)
SD15 = CheckpointOut(**model(2, "dreamshaper_8", "checkpoint", "sd15", "sd1").model_dump())
LORAS = [
    model(10, "mychar", "lora", "pony", "sdxl"),
    model(11, "detail_tweaker_xl", "lora", "sdxl", "sdxl"),
    model(12, "ink_sketch_sd15", "lora", "sd15", "sd1"),
]


class Harness(App[None]):
    """One widget in a bare app, recording what it posts."""

    def __init__(self, widget_class: type) -> None:
        super().__init__()
        self.widget_class = widget_class
        self.posted: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self.widget_class(id="widget")

    @on(GenerateForm.ModelChosen)
    @on(GenerateForm.GenerateRequested)
    @on(LoraPicker.ChoiceChanged)
    @on(LoraPicker.TriggerToggled)
    @on(LoraPicker.TriggerAdded)
    @on(LoraPicker.LoraHighlighted)
    def record(self, message: Message) -> None:
        self.posted.append(message)


def value(form: GenerateForm, field: str) -> str:
    return form.query_one(f"#form-{field}", Input).value


async def test_a_model_change_fills_its_familys_defaults() -> None:
    app = Harness(GenerateForm)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.query_one(GenerateForm)
        form.show_models([PONY, SD15])
        await pilot.pause()
        assert form.query_one("#form-model", Select).value == PONY.id
        assert (value(form, "steps"), value(form, "cfg")) == ("25", "6")
        assert form.query_one("#form-sampler", Select).value == "Euler a"
        assert "score_4" in form.query_one("#form-negative", TextArea).text
        form.query_one("#form-model", Select).value = SD15.id
        await pilot.pause()
        assert (value(form, "width"), value(form, "height")) == ("512", "512")
        assert (value(form, "steps"), value(form, "cfg")) == ("25", "7")
        assert form.query_one("#form-sampler", Select).value == "DPM++ 2M"
        assert form.query_one("#form-negative", TextArea).text == "worst quality, low quality"


async def test_what_the_user_edited_survives_a_model_change() -> None:
    app = Harness(GenerateForm)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.query_one(GenerateForm)
        form.show_models([PONY, SD15])
        await pilot.pause()
        form.query_one("#form-steps", Input).focus()
        await pilot.press("end", "backspace", "backspace", "4", "0")  # typed by the user
        await pilot.pause()
        form.query_one("#form-model", Select).value = SD15.id
        await pilot.pause()
        assert value(form, "steps") == "40"
        assert value(form, "cfg") == "7"  # not edited: follows the family


async def test_the_form_becomes_a_request_and_bad_fields_are_named() -> None:
    app = Harness(GenerateForm)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.query_one(GenerateForm)
        form.show_models([PONY.model_copy(update={"loaded_on": []})])
        await pilot.pause()
        form.prompt.text = "a lighthouse"
        request = form.request([], force=False)
        assert request.checkpoint == PONY.id and request.prompt == "a lighthouse"
        assert (request.width, request.height, request.steps, request.seed) == (1024, 1024, 25, -1)
        form.query_one("#form-width", Input).value = "1000"
        with pytest.raises(BadRequest, match="width: 1000 is not a multiple of 64"):
            form.request([], force=False)
        form.query_one("#form-width", Input).value = "1024"
        form.query_one("#form-seed-mode", Select).value = "last"
        with pytest.raises(BadRequest, match="no last seed"):
            form.request([], force=False)
        form.last_seed = 77
        assert form.request([], force=False).seed == 77
        form.prompt.text = "  "
        with pytest.raises(BadRequest, match="prompt"):
            form.request([], force=False)


async def test_an_images_parameters_fill_the_form() -> None:
    app = Harness(GenerateForm)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.query_one(GenerateForm)
        form.show_models([PONY, SD15])
        await pilot.pause()
        image = ImageOut(
            id=5,
            file="x.png",
            created=WHEN,
            width=512,
            height=768,
            file_size=1,
            sha256="0" * 64,
            state="kept",
            checkpoint="dreamshaper_8",
            prompt="a red fox in snow",
            negative="blurry",
            steps=30,
            cfg=7.5,
            sampler="Euler",
            scheduler="Karras",
            seed=4242,
            loras=[LoraUse(name="ink_sketch_sd15", weight=0.6)],
        )
        form.apply_image(image)
        await pilot.pause()
        assert form.query_one("#form-model", Select).value == SD15.id
        assert form.prompt.text == "a red fox in snow"
        assert (value(form, "width"), value(form, "height")) == ("512", "768")
        assert (value(form, "steps"), value(form, "cfg"), value(form, "seed")) == (
            "30",
            "7.5",
            "4242",
        )
        assert form.query_one("#form-seed-mode", Select).value == "fixed"
        assert form.request([], force=False).seed == 4242


async def test_trigger_words_go_into_the_prompt_and_out_again() -> None:
    app = Harness(GenerateForm)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.query_one(GenerateForm)
        form.prompt.text = "score_9, a lighthouse"
        form.add_words(["mychar", "red dress"])
        form.add_words(["mychar"])
        assert form.prompt.text == "score_9, a lighthouse, mychar, red dress"
        form.remove_words(["mychar"])
        await pilot.pause()
        assert form.prompt.text == "score_9, a lighthouse, red dress"


async def test_loras_are_chosen_with_weights_and_other_families_are_marked() -> None:
    app = Harness(LoraPicker)
    async with app.run_test(size=(80, 30)) as pilot:
        picker = app.query_one(LoraPicker)
        picker.show_loras(LORAS, family="pony", show_all=True)
        picker.query_one("#lora-list").focus()
        await pilot.pause()
        assert [picker.compatible(lora) for lora in LORAS] == [True, True, False]
        await pilot.press("space", "minus", "minus")  # mychar at 0.8
        await pilot.press("down", "down", "space")  # the SD 1.5 one, anyway
        await pilot.pause()
        refs, force = picker.refs()
        assert [(ref.id, ref.weight) for ref in refs] == [(10, 0.8), (12, 1.0)]
        assert force  # an SD 1.5 LoRA on a Pony checkpoint needs the user's say-so
        assert picker.summary() == "mychar 0.8, ink_sketch_sd15 1"
        await pilot.press("space")
        await pilot.pause()
        assert picker.refs() == ([picker.refs()[0][0]], False)


async def test_search_filters_the_loras_as_you_type() -> None:
    app = Harness(LoraPicker)
    async with app.run_test(size=(80, 30)) as pilot:
        picker = app.query_one(LoraPicker)
        picker.show_loras(LORAS, family="sdxl", show_all=False)
        picker.query_one("#lora-search").focus()
        await pilot.press("d", "e", "t")
        await pilot.pause()
        assert [lora.id for lora in picker.shown] == [11]


async def test_trigger_words_toggle_and_the_user_adds_their_own() -> None:
    app = Harness(LoraPicker)
    async with app.run_test(size=(80, 30)) as pilot:
        picker = app.query_one(LoraPicker)
        picker.show_loras(LORAS, family="pony", show_all=False)
        picker.show_triggers(
            LORAS[0],
            [
                TriggerWord(word="mychar", sources=["civitai", "training"], rank=0, count=50),
                TriggerWord(word="red dress", sources=["training"], rank=1, count=12),
            ],
        )
        triggers = picker.query_one("#lora-triggers", SelectionList)
        triggers.focus()
        await pilot.press("space")
        await pilot.pause()
        toggled = [m for m in app.posted if isinstance(m, LoraPicker.TriggerToggled)]
        assert [(m.word, m.chosen) for m in toggled] == [("mychar", True)]
        label = str(triggers.get_option_at_index(0).prompt)
        assert "CivitAI" in label and "training x50" in label.replace("×", "x")  # noqa: RUF001
        picker.query_one("#lora-add-word").focus()
        await pilot.press(*"blue hat", "enter")
        await pilot.pause()
        added = [m for m in app.posted if isinstance(m, LoraPicker.TriggerAdded)]
        assert [(m.lora.id, m.word) for m in added] == [(10, "blue hat")]
        assert "blue hat" in picker.chosen_words
