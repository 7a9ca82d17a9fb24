"""The models pane (`#models`): the list, a file's detail, load, link, rescan, CivitAI, family."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.widgets import DataTable, Static

from tsr.families import all_families
from tsr.schemas.jobs import JobOut
from tsr.schemas.models import ModelFile
from tsr.tui.activity import from_event, is_finished
from tsr.tui.data import download_request
from tsr.tui.messages import ServerEventReceived
from tsr.tui.screens.base import PaneScreen
from tsr.tui.widgets.model_details import ModelDetails
from tsr.tui.widgets.model_list import ModelList

#: from this width the detail shows beside the list, not under it
SIDE_BY_SIDE = 110


class ModelsScreen(PaneScreen):
    """Model files of the remote: load one, link it to CivitAI, fix its family, find more."""

    PANES = ("models",)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("L", "load_model", "Load", id="models.load", key_display="⏎/L",
                tooltip="Load the checkpoint into sd-server (a switch job)"),
        Binding("c", "link", "Link", id="models.link",
                tooltip="Link to CivitAI by hash, or refresh the link"),
        Binding("R", "rescan", "Rescan", id="models.rescan",
                tooltip="Look for new, changed and removed model files"),
        Binding("s", "find", "CivitAI", id="models.find",
                tooltip="Search CivitAI and download a model"),
        Binding("D", "download_id", "Download", id="models.download",
                tooltip="Download a CivitAI model or version by id or URL"),
        Binding("F", "family", "Family", id="models.family",
                tooltip="Set the file's family by hand (or clear it)"),
    ]  # fmt: skip

    def compose_body(self) -> ComposeResult:
        """The list, and the detail beside (wide) or under it (narrow)."""
        with Horizontal(id="models"):
            yield ModelList(id="model-list")
            with VerticalScroll(id="model-side"):
                yield Static("", id="models-first-run", classes="first-run")
                yield ModelDetails("", id="model-details")

    def on_mount(self) -> None:
        """The list takes the keys."""
        self.query_one("#models-first-run").display = False
        super().on_mount()
        self.query_one("#model-table").focus()

    def on_resize(self, event: Resize) -> None:
        """Detail beside the list when wide, under it when narrow."""
        self.set_class(event.size.width >= SIDE_BY_SIDE, "-wide")

    @property
    def model_list(self) -> ModelList:
        """The list widget."""
        return self.query_one(ModelList)

    # -- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """The files of the kind shown, and what the backends hold."""
        self.load_models(self.model_list.kind)

    @work(exclusive=True, group="models-list", exit_on_error=False)
    async def load_models(self, kind: str) -> None:
        """List the files of `kind`, marking the loaded ones."""
        models = await self.require_session().list_models(kind)
        self.model_list.show_models(models)
        first_run = self.query_one("#models-first-run", Static)
        first_run.display = not models
        if not models:
            where = self.tsr.config.model_roots().get(kind + "s", [None])[0]
            folder = (
                str(where) if self.tsr.connection.remote == "local" else "its folder on the server"
            )
            first_run.update(
                f"No {kind} files yet. Put them in {folder} and press R to rescan, "
                "or press s to find one on CivitAI."
            )
            self.query_one(ModelDetails).show(None)

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_load_model()

    @on(ModelList.KindChosen)
    def _kind_chosen(self, message: ModelList.KindChosen) -> None:
        self.load_models(message.kind)

    @on(ModelList.ModelHighlighted)
    def _model_highlighted(self, message: ModelList.ModelHighlighted) -> None:
        self.query_one(ModelDetails).show(message.model)
        self.load_detail(message.model)

    @work(exclusive=True, group="models-detail", exit_on_error=False)
    async def load_detail(self, model: ModelFile) -> None:
        """The highlighted file's metadata and trigger words."""
        await asyncio.sleep(0.1)  # a held arrow key asks for the last row only
        detail = await self.require_session().file_detail(model.id)
        if self.model_list.current is not None and self.model_list.current.id == model.id:
            self.query_one(ModelDetails).show(model, detail)

    def handle_event(self, message: ServerEventReceived) -> None:
        """A scan, link or download finished: list again."""
        update = from_event(message.event)
        switched = isinstance(update, JobOut) and update.kind == "switch"
        if (
            update is not None
            and is_finished(update)
            and (switched or not isinstance(update, JobOut))
        ):
            self.load()

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Load needs a checkpoint; link and family need a file; all need a connection."""
        if not self.tsr.connection.online:
            return None
        current = self.model_list.current if self.is_mounted else None
        if action == "load_model":
            return True if current is not None and current.kind == "checkpoint" else None
        if action in ("link", "family"):
            return True if current is not None else None
        return True

    def action_load_model(self) -> None:
        """Load the highlighted checkpoint (a switch job on the server)."""
        model = self.model_list.current
        if model is not None and model.kind == "checkpoint":
            self.switch_to(model)

    @work(group="models-switch", exit_on_error=False)
    async def switch_to(self, model: ModelFile) -> None:
        """Queue the switch; the job line shows its progress."""
        self.tsr.track(await self.require_session().switch_model(model.id))

    def action_link(self) -> None:
        """Link the highlighted file to CivitAI by its hash (refresh when linked)."""
        model = self.model_list.current
        if model is not None:
            self.link(model)

    @work(group="models-link", exit_on_error=False)
    async def link(self, model: ModelFile) -> None:
        """Refresh a linked file's CivitAI model, or link the unlinked files by their hashes."""
        session = self.require_session()
        if model.civitai is not None:
            self.tsr.track(await session.start_cache(model.civitai.model_id))
        else:
            self.tsr.track(await session.start_link())

    def action_rescan(self) -> None:
        """Rescan the model folders."""
        self.rescan()

    @work(exclusive=True, group="models-scan", exit_on_error=False)
    async def rescan(self) -> None:
        """Start a scan; the job line follows it and the list reloads when it ends."""
        self.tsr.track(await self.require_session().start_scan())

    def action_family(self) -> None:
        """Choose the highlighted file's family by hand."""
        from tsr.tui.screens.dialogs import ChoicePrompt

        model = self.model_list.current
        if model is None:
            return
        choices = [(name, f.label) for name, f in all_families().items()]
        choices.append(("", "automatic (clear my choice)"))

        def chosen(family: str | None) -> None:
            if family is not None:
                self.set_family(model, family or None)

        self.app.push_screen(ChoicePrompt(f"Family of {model.name}", choices, model.family), chosen)

    @work(group="models-family", exit_on_error=False)
    async def set_family(self, model: ModelFile, family: str | None) -> None:
        """Store the override and list again."""
        await self.require_session().set_family(model.id, family)
        self.load()

    def action_find(self) -> None:
        """Search CivitAI."""
        from tsr.tui.screens.civitai import CivitaiScreen

        self.app.push_screen(CivitaiScreen(self.model_list.kind))

    def action_download_id(self) -> None:
        """Download a CivitAI model or version by id or URL."""
        from tsr.tui.screens.dialogs import TextPrompt

        def answered(text: str | None) -> None:
            if text:
                self.download(text)

        self.app.push_screen(
            TextPrompt(
                "Download: a CivitAI version id, model:ID (its newest version), "
                "a civitai.com URL or a file hash",
                placeholder="https://civitai.com/models/4201?modelVersionId=130072",
            ),
            answered,
        )

    @work(group="models-download", exit_on_error=False)
    async def download(self, reference: str) -> None:
        """Start a download on the server; its progress shows on the job line."""
        self.tsr.track(await self.require_session().download(download_request(reference)))
