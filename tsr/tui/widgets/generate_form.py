"""The generate form: model, prompts, size, steps, CFG, sampler, seed, batch; family defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import ClassVar

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from tsr.errors import BadRequest
from tsr.families import Family, get_family
from tsr.schemas.generation_api import CheckpointOut
from tsr.schemas.images import ImageOut
from tsr.schemas.jobs import GenerateRequest, LoraRef
from tsr.schemas.models import ModelFile
from tsr.tui.text import number
from tsr.tui.widgets.model_list import is_loaded

SIZE_PRESETS = ("square", "portrait", "landscape", "custom")
SEED_MODES = (("random", "random"), ("fixed", "fixed"), ("reuse last", "last"))


def model_label(model: ModelFile) -> str:
    """A checkpoint as the user knows it: its CivitAI name when linked, else the file's stem."""
    if model.civitai:
        return f"{model.civitai.model_name} ({model.civitai.version_name})"
    return PurePath(model.name).stem


class GenerateForm(VerticalScroll):
    """Everything one generation needs; `ctrl+g` asks for it to be queued."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "generate", "Generate", id="generate.generate", priority=True,
                tooltip="Queue a generation with this form"),
        Binding("enter", "edit_prompt", "Write prompt", id="generate.edit_prompt",
                tooltip="Type the prompt (tab moves on to the other fields)"),
        Binding("escape", "leave_field", "Done", id="generate.leave_field",
                tooltip="Leave the field (the pane keys 1-4 work again)"),
    ]  # fmt: skip

    @dataclass
    class GenerateRequested(Message):
        """The user asked for the form to be queued (the screen adds LoRAs and sends it)."""

        form: GenerateForm

    @dataclass
    class ModelChosen(Message):
        """The user picked another checkpoint."""

        model: ModelFile | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.models: list[CheckpointOut] = []
        self.family: Family = get_family(None)
        #: what the form itself last put in each defaulted field (anything else is the user's)
        self.auto: dict[str, str] = {}
        self.last_seed: int | None = None
        #: the sampler and scheduler labels offered (the server's, plus any value in use)
        self.choices: dict[str, list[str]] = {"sampler": [], "scheduler": []}

    def compose(self) -> ComposeResult:
        """The fields, labelled, in the order they are filled."""
        with Horizontal(classes="form-row"):
            yield Label("Model", classes="form-label")
            yield Select([], id="form-model", prompt="(the loaded checkpoint)", compact=True)
        with Horizontal(classes="form-row form-text-row"):
            yield Label("Prompt", classes="form-label")
            yield TextArea(id="form-prompt", compact=True, soft_wrap=True)
        with Horizontal(classes="form-row form-text-row"):
            yield Label("Negative", classes="form-label")
            yield TextArea(id="form-negative", compact=True, soft_wrap=True)
        with Horizontal(classes="form-row"):
            yield Label("Size", classes="form-label")
            yield Select([(p, p) for p in SIZE_PRESETS], id="form-preset", value="square",
                         allow_blank=False, compact=True)  # fmt: skip
            yield Input("", id="form-width", type="integer", compact=True, max_length=4)
            yield Static("x", classes="form-x")
            yield Input("", id="form-height", type="integer", compact=True, max_length=4)
            yield Label("Batch", classes="form-label-inline")
            yield Input("1", id="form-batch", type="integer", compact=True, max_length=1)
        with Horizontal(classes="form-row"):
            yield Label("Steps", classes="form-label")
            yield Input("", id="form-steps", type="integer", compact=True, max_length=3)
            yield Label("CFG", classes="form-label-inline")
            yield Input("", id="form-cfg", type="number", compact=True, max_length=5)
        with Horizontal(classes="form-row"):
            yield Label("Sampler", classes="form-label")
            for name in ("sampler", "scheduler"):
                value = getattr(self.family, name)
                self.choices[name] = [value]
                self.auto[name] = value
                yield Select([(value, value)], id=f"form-{name}", allow_blank=False, compact=True)
        with Horizontal(classes="form-row"):
            yield Label("Seed", classes="form-label")
            yield Select(SEED_MODES, id="form-seed-mode", value="random", allow_blank=False,
                         compact=True)  # fmt: skip
            yield Input("", id="form-seed", type="integer", compact=True, placeholder="seed")
        with Horizontal(classes="form-row"):
            yield Label("LoRAs", classes="form-label")
            yield Static("", id="form-loras", markup=False)
        with Horizontal(classes="form-row"):
            yield Button("Generate (ctrl+g)", id="form-generate", variant="primary", compact=True)
            yield Static("", id="form-note", markup=False)

    def on_mount(self) -> None:
        """Start from the fallback family's defaults."""
        self._apply_family(self.family)

    # -- what the screen feeds in -------------------------------------------------------------

    def show_models(self, models: list[CheckpointOut]) -> None:
        """The checkpoints to choose from; keeps the choice, else picks a loaded one."""
        self.models = models
        select = self.query_one("#form-model", Select)
        current = select.value
        ids = [m.id for m in models]
        if current not in ids:
            held = [m.id for m in models if is_loaded(m)]
            current = held[0] if held else (ids[0] if ids else Select.NULL)
        with self.prevent(Select.Changed):
            select.set_options([(model_label(m), m.id) for m in models])
            if current is not Select.NULL:
                select.value = current
        self._model_changed()

    def show_samplers(self, samplers: list[str], schedulers: list[str]) -> None:
        """The sampler and scheduler labels the server accepts."""
        for name, values in (("sampler", samplers), ("scheduler", schedulers)):
            select = self.query_one(f"#form-{name}", Select)
            value = select.value if isinstance(select.value, str) else ""
            self.choices[name] = list(values)
            with self.prevent(Select.Changed):
                self._choose(name, value)

    def _choose(self, name: str, value: str) -> None:
        """Offer the known labels plus `value`, and select `value` (call inside prevent)."""
        select = self.query_one(f"#form-{name}", Select)
        if value and value not in self.choices[name]:
            self.choices[name].append(value)
        select.set_options([(label, label) for label in self.choices[name]])
        if value:
            select.value = value

    def show_loras(self, text: str) -> None:
        """The chosen LoRAs, one line."""
        self.query_one("#form-loras", Static).update(text)

    def note(self, text: str) -> None:
        """A short note beside the button (why it is greyed out, what was queued)."""
        self.query_one("#form-note", Static).update(text)

    @property
    def model(self) -> CheckpointOut | None:
        """The chosen checkpoint."""
        value = self.query_one("#form-model", Select).value
        return next((m for m in self.models if m.id == value), None)

    # -- family defaults ----------------------------------------------------------------------

    def _read(self, field: str) -> str:
        widget = self.query_one(f"#form-{field}")
        if isinstance(widget, TextArea):
            return widget.text
        if isinstance(widget, Input):
            return widget.value
        assert isinstance(widget, Select)
        return str(widget.value) if isinstance(widget.value, str) else ""

    def _write(self, field: str, value: str, *, auto: bool = True) -> None:
        """Put `value` in a field; `auto` values are the form's own, others count as the user's."""
        widget = self.query_one(f"#form-{field}")
        with self.prevent(Input.Changed, Select.Changed, TextArea.Changed):
            if isinstance(widget, TextArea):
                widget.text = value
            elif isinstance(widget, Input):
                widget.value = value
            else:
                self._choose(field, value)
        if auto:
            self.auto[field] = value
        else:
            self.auto.pop(field, None)

    def is_edited(self, field: str) -> bool:
        """Whether the field holds something other than what the form last put there."""
        return self._read(field) != self.auto.get(field, "")

    def _model_changed(self) -> None:
        model = self.model
        self.family = get_family(model.family if model else None)
        self._apply_family(self.family)
        self.post_message(self.ModelChosen(model))

    def _apply_family(self, family: Family) -> None:
        """Put the family's defaults into every field the user has not changed."""
        if not self.is_edited("negative"):
            self._write("negative", family.negative)
        if not (self.is_edited("width") or self.is_edited("height")):
            preset = self._read("preset")
            self._set_size(family, preset if preset != "custom" else "square")
        if not self.is_edited("steps"):
            self._write("steps", str(family.steps))
        if not self.is_edited("cfg"):
            self._write("cfg", number(family.cfg))
        for name, value in (("sampler", family.sampler), ("scheduler", family.scheduler)):
            if not self.is_edited(name):
                self._write(name, value)

    def _set_size(self, family: Family, preset: str) -> None:
        if preset in family.sizes:
            width, height = family.sizes[preset]
            self._write("width", str(width))
            self._write("height", str(height))
            with self.prevent(Select.Changed):
                self.query_one("#form-preset", Select).value = preset

    @on(Select.Changed, "#form-model")
    def _model_selected(self, event: Select.Changed) -> None:
        event.stop()
        self._model_changed()

    @on(Select.Changed, "#form-preset")
    def _preset_selected(self, event: Select.Changed) -> None:
        event.stop()
        if event.value != "custom":
            self._set_size(self.family, str(event.value))

    @on(Input.Changed, "#form-width, #form-height")
    def _size_typed(self, event: Input.Changed) -> None:
        event.stop()
        with self.prevent(Select.Changed):
            self.query_one("#form-preset", Select).value = "custom"

    @on(Button.Pressed, "#form-generate")
    def _generate_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_generate()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enter starts the prompt from the form itself; escape leaves a field."""
        if action == "edit_prompt":
            return self.has_focus
        if action == "leave_field":
            return self.has_focus_within and not self.has_focus
        return True

    def action_edit_prompt(self) -> None:
        """Put the cursor in the prompt."""
        self.prompt.focus()

    def action_leave_field(self) -> None:
        """Back to the form (it scrolls with the arrow keys; 1-4 switch panes)."""
        self.focus()

    def action_generate(self) -> None:
        """Ask the screen to queue this form."""
        self.post_message(self.GenerateRequested(self))

    # -- the prompt and triggers ----------------------------------------------------------------

    @property
    def prompt(self) -> TextArea:
        """The prompt field."""
        return self.query_one("#form-prompt", TextArea)

    def add_words(self, words: list[str]) -> None:
        """Append trigger words to the prompt (those not in it yet)."""
        text = self.prompt.text.rstrip()
        present = {part.strip() for part in text.split(",")}
        new = [word for word in words if word not in present]
        if new:
            self.prompt.text = ", ".join(part for part in (text, *new) if part)

    def remove_words(self, words: list[str]) -> None:
        """Take trigger words out of the prompt again."""
        parts = [part.strip() for part in self.prompt.text.split(",")]
        kept = [part for part in parts if part and part not in words]
        self.prompt.text = ", ".join(kept)

    # -- reading it out -------------------------------------------------------------------------

    def request(self, loras: list[LoraRef], force: bool) -> GenerateRequest:
        """The form as a request; a bad field is a BadRequest naming it."""

        def field(name: str) -> str:
            return self.query_one(f"#form-{name}", Input).value.strip()

        mode = self.query_one("#form-seed-mode", Select).value
        seed = -1
        if mode == "fixed":
            if not field("seed"):
                raise BadRequest("the seed is empty; type a number or choose a random seed")
            seed = int(field("seed"))
        elif mode == "last":
            if self.last_seed is None:
                raise BadRequest("there is no last seed yet; generate once, or choose random")
            seed = self.last_seed
        model = self.model
        sampler = self.query_one("#form-sampler", Select).value
        scheduler = self.query_one("#form-scheduler", Select).value
        try:
            return GenerateRequest(
                checkpoint=model.id if model else None,
                loras=loras,
                prompt=self.prompt.text,
                negative=self.query_one("#form-negative", TextArea).text,
                width=int(field("width")) if field("width") else None,
                height=int(field("height")) if field("height") else None,
                steps=int(field("steps")) if field("steps") else None,
                cfg=float(field("cfg")) if field("cfg") else None,
                sampler=sampler if isinstance(sampler, str) else None,
                scheduler=scheduler if isinstance(scheduler, str) else None,
                seed=seed,
                batch=int(field("batch") or 1),
                force=force,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the form"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise BadRequest(f"{where}: {message}") from None

    def apply_image(self, image: ImageOut) -> None:
        """Fill the form with an image's parameters (they count as the user's own edits)."""
        stem = PurePath(image.checkpoint or "").stem
        match = [m for m in self.models if PurePath(m.name).stem == stem]
        match += [m for m in self.models if m.sha256 and m.sha256 == image.checkpoint_sha256]
        if match:
            with self.prevent(Select.Changed):
                self.query_one("#form-model", Select).value = match[-1].id
            self.family = get_family(match[-1].family)
        with self.prevent(Input.Changed, Select.Changed, TextArea.Changed):
            self.prompt.text = image.prompt
            self.query_one("#form-preset", Select).value = "custom"
        self._write("negative", image.negative, auto=False)
        self._write("width", str(image.width), auto=False)
        self._write("height", str(image.height), auto=False)
        if image.steps:
            self._write("steps", str(image.steps), auto=False)
        if image.cfg is not None:
            self._write("cfg", number(image.cfg), auto=False)
        for name, value in (("sampler", image.sampler), ("scheduler", image.scheduler)):
            if value:
                self._write(name, value, auto=False)
        if image.seed is not None:
            with self.prevent(Select.Changed, Input.Changed):
                self.query_one("#form-seed-mode", Select).value = "fixed"
                self.query_one("#form-seed", Input).value = str(image.seed)
        if match:
            self.post_message(self.ModelChosen(match[-1]))
