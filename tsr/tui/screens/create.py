"""The create screen: the generate form (`#generate`) and the LoRA picker (`#loras`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import PurePath

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Static

from tsr.errors import BadRequest, NotFound
from tsr.schemas.generation_api import CheckpointOut, LoraOut
from tsr.schemas.images import ImageOut
from tsr.schemas.jobs import FINISHED_STATES, GenerateRequest, JobOut
from tsr.schemas.models import ModelFile
from tsr.tui.image_events import image_news
from tsr.tui.messages import ServerEventReceived
from tsr.tui.screens.base import PaneScreen
from tsr.tui.widgets.generate_form import GenerateForm
from tsr.tui.widgets.lora_picker import LoraPicker
from tsr.tui.widgets.picture import Picture

#: from this width the form and the LoRA picker show side by side
SIDE_BY_SIDE = 110
#: the newest images of the last job shown under the form
RESULTS = 4


async def _labels(request: Awaitable[list[str]]) -> list[str]:
    """Sampler or scheduler labels; a server without the list leaves the family's own."""
    try:
        return await request
    except NotFound:
        return []


def first_run_text(models: Sequence[ModelFile], connection_info: str, checkpoints_dir: str) -> str:
    """What to do when there is nothing to generate with yet."""
    lines = []
    if not models:
        lines.append(
            "[b]No checkpoints yet.[/] Put .safetensors or .gguf files in "
            f"{checkpoints_dir}, then press 1 and R to rescan; or find one on CivitAI "
            "(ctrl+p, then “models: find on CivitAI”)."
        )
    if connection_info:
        lines.append(
            f"[b]{connection_info}.[/] Start sd-server there (for example "
            "`docker compose up -d` in rocm-docker/), or configure a managed backend "
            "in the config's [[backends]]."
        )
    return "\n\n".join(lines)


class CreateScreen(PaneScreen):
    """Generate with a model, LoRAs and trigger words; watch the job and its images arrive."""

    PANES = ("generate", "loras")

    def __init__(self) -> None:
        super().__init__()
        self.showing = "generate"
        self.models: list[CheckpointOut] = []
        self.loras: list[LoraOut] = []
        self.pending_reuse: ImageOut | None = None
        self.submitting = False
        self.shown_results: list[int] = []

    def compose_body(self) -> ComposeResult:
        """Form and picker (side by side when wide), the first-run note, the results."""
        with Horizontal(id="create"):
            with Vertical(id="generate"):
                yield Static("", id="first-run", classes="first-run")
                yield GenerateForm(id="generate-form")
                with Horizontal(id="generate-results"):
                    for _ in range(RESULTS):
                        yield Picture(self.tsr.renderer, "", classes="result")
            yield LoraPicker(id="loras")

    def on_mount(self) -> None:
        """Nothing to show until the session answers; follow the app's job from now on."""
        self.query_one("#first-run").display = False
        self.watch(self.tsr, "job", self.on_job_changed, init=False)
        super().on_mount()

    # -- layout ---------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        """Side by side when wide; one at a time (2 and 3 switch) when narrow."""
        self.set_class(event.size.width >= SIDE_BY_SIDE, "-wide")
        self.set_class(event.size.height < 30, "-short")
        self.set_class(event.size.height >= 44, "-tall")
        self.show_pane(self.showing)

    def show_pane(self, pane: str) -> None:
        """Bring the form or the picker forward (both show on a wide terminal)."""
        if pane not in self.PANES:
            pane = self.showing
        self.showing = pane
        wide = self.has_class("-wide")
        self.query_one("#generate").display = wide or pane == "generate"
        self.query_one("#loras").display = wide or pane == "loras"
        super().show_pane(pane)
        target = "#generate-form" if pane == "generate" else "#lora-list"
        if self.focused is None or not self.query_one(f"#{pane}").has_focus_within:
            self.query_one(target).focus()

    # -- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """Checkpoints, the loaded one, samplers; then LoRAs for its family."""
        self.load_models()

    @work(exclusive=True, group="create-models", exit_on_error=False)
    async def load_models(self) -> None:
        """Checkpoints, LoRAs and the sampler names; the loaded checkpoint is chosen."""
        session = self.require_session()
        models, samplers, schedulers = await asyncio.gather(
            session.list_models("checkpoint"),
            _labels(session.samplers()),
            _labels(session.schedulers()),
        )
        self.models = models
        form = self.query_one(GenerateForm)
        form.show_samplers(samplers, schedulers)
        form.show_models(models)
        self._show_first_run()
        if self.pending_reuse is not None:
            self.reuse_image(self.pending_reuse)

    def _show_first_run(self) -> None:
        """Say what to do when there is no checkpoint or no sd-server yet."""
        info = self.tsr.connection.info
        troubled = (
            [b for b in info.backends if b.state in ("unreachable", "failed")] if info else []
        )
        problem = f"sd-server is {troubled[0].state} at {troubled[0].url}" if troubled else ""
        roots = self.tsr.config.model_roots()["checkpoints"]
        where = str(roots[0]) if self.tsr.connection.remote == "local" else "the server's folder"
        note = first_run_text(self.models, problem, where)
        first_run = self.query_one("#first-run", Static)
        first_run.update(note)
        first_run.display = bool(note)

    @on(GenerateForm.ModelChosen)
    def _model_chosen(self, message: GenerateForm.ModelChosen) -> None:
        self.load_loras(message.model.family if message.model else None)

    @work(exclusive=True, group="create-loras", exit_on_error=False)
    async def load_loras(self, family: str | None) -> None:
        """Every LoRA, checked against the checkpoint's family (the picker hides the misfits)."""
        self.loras = await self.require_session().list_loras(family)
        picker = self.query_one(LoraPicker)
        picker.show_loras(self.loras, family, picker.show_all)
        self.query_one(GenerateForm).show_loras(picker.summary())
        if self.pending_reuse is not None:
            self._reuse_loras(self.pending_reuse)
            self.pending_reuse = None

    @on(LoraPicker.LoraHighlighted)
    def _lora_highlighted(self, message: LoraPicker.LoraHighlighted) -> None:
        self.load_triggers(message.lora)

    @work(exclusive=True, group="create-triggers", exit_on_error=False)
    async def load_triggers(self, lora: ModelFile) -> None:
        """The trigger words of the highlighted LoRA."""
        triggers = await self.require_session().triggers(lora.id)
        self.query_one(LoraPicker).show_triggers(lora, triggers.triggers)

    @on(LoraPicker.TriggerAdded)
    def _trigger_added(self, message: LoraPicker.TriggerAdded) -> None:
        self.add_trigger(message.lora, message.word)

    @work(group="create-add-trigger", exit_on_error=False)
    async def add_trigger(self, lora: ModelFile, word: str) -> None:
        """Store the user's own trigger word on the server, then show the list again."""
        triggers = await self.require_session().add_triggers(lora.id, [word])
        self.query_one(LoraPicker).show_triggers(lora, triggers.triggers)

    @on(LoraPicker.ChoiceChanged)
    def _choice_changed(self) -> None:
        self.query_one(GenerateForm).show_loras(self.query_one(LoraPicker).summary())

    @on(LoraPicker.TriggerToggled)
    def _trigger_toggled(self, message: LoraPicker.TriggerToggled) -> None:
        form = self.query_one(GenerateForm)
        if message.chosen:
            form.add_words([message.word])
        else:
            form.remove_words([message.word])

    # -- generating -----------------------------------------------------------------------------

    def can_generate(self) -> bool:
        """Online, a prompt can be sent, and our last job is not still queued or running."""
        job = self.tsr.job
        busy = job is not None and job.kind == "generate" and job.state not in FINISHED_STATES
        return self.tsr.connection.online and not busy and not self.submitting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Generate greys out while it cannot run."""
        if action == "generate":
            return True if self.can_generate() else None
        return True

    @on(GenerateForm.GenerateRequested)
    def _generate_requested(self) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        """Queue the form (with the chosen LoRAs) as a generation job."""
        form = self.query_one(GenerateForm)
        if not self.can_generate():
            form.note("a job is still running" if self.tsr.connection.online else "offline")
            return
        refs, force = self.query_one(LoraPicker).refs()
        try:
            request = form.request(refs, force)
        except BadRequest as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.submitting = True
        self.submit(request)

    @work(group="create-generate", exit_on_error=False)
    async def submit(self, request: GenerateRequest) -> None:
        """Send the request; the job line follows it from here."""
        try:
            job = await self.require_session().generate(request)
        finally:
            self.submitting = False
        self.tsr.track(job)
        self.query_one(GenerateForm).note(f"queued job {job.id[:8]}")
        self._clear_results()

    def handle_event(self, message: ServerEventReceived) -> None:
        """The tracked job's images appear under the form as they are saved."""
        job = self.tsr.job
        if job is None or message.event.data.get("job") != job.id:
            return
        made = [image.id for image in image_news(message.event).images]
        if made:
            self.show_results(made)

    def on_job_changed(self, job: JobOut | None) -> None:
        """The tracked job moved on: remember its seed, show its images."""
        if job is None or job.kind != "generate":
            return
        form = self.query_one(GenerateForm)
        if job.seeds:
            form.last_seed = job.seeds[0]
        if job.image_ids:
            self.show_results(job.image_ids)
        self.refresh_bindings()

    def _clear_results(self) -> None:
        for picture in self.query(".result").results(Picture):
            picture.show_placeholder("")
        self.remove_class("-has-results")
        self.shown_results = []

    @work(group="create-results", exit_on_error=False)
    async def show_results(self, ids: list[int]) -> None:
        """Thumbnails of the job's newest images."""
        shown = self.shown_results
        new = [image_id for image_id in ids if image_id not in shown]
        if not new:
            return
        self.shown_results = (shown + new)[-RESULTS:]
        self.add_class("-has-results")
        pictures = list(self.query(".result").results(Picture))
        session = self.require_session()
        for picture, image_id in zip(pictures, self.shown_results, strict=False):
            if picture.image_key != image_id:
                box = (picture.size.width or 20, picture.size.height or 9)
                fitted = await self.tsr.images.fitted(session, image_id, "thumb", box)
                picture.show_image(fitted, key=image_id)

    # -- reuse ----------------------------------------------------------------------------------

    def reuse_image(self, image: ImageOut) -> None:
        """Fill the form and the LoRAs from an image's parameters."""
        self.query_one(GenerateForm).apply_image(image)
        self.pending_reuse = image
        picker = self.query_one(LoraPicker)
        if picker.loras:
            self._reuse_loras(image)
            self.pending_reuse = None

    def _reuse_loras(self, image: ImageOut) -> None:
        picker = self.query_one(LoraPicker)
        by_stem = {PurePath(lora.name).stem: lora for lora in picker.loras}
        picker.selected = {
            by_stem[use.name].id: use.weight if use.weight is not None else 1.0
            for use in image.loras
            if use.name in by_stem
        }
        picker.show_loras(picker.loras, picker.family, picker.show_all)
        self.query_one(GenerateForm).show_loras(picker.summary())
        missing = [use.name for use in image.loras if use.name not in by_stem]
        if missing:
            self.notify(f"LoRAs not found here: {', '.join(missing)}", severity="warning")
