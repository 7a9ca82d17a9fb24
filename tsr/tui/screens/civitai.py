"""Find a model on CivitAI (type and base-model filters), read its details, download a version."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, cast

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from tsr.families import all_families
from tsr.schemas.downloads import DownloadRequest
from tsr.tui.data import Session as DataSession
from tsr.tui.screens.base import NotConnected
from tsr.tui.text import clip, human_size, one_line

if TYPE_CHECKING:
    from tsr.civitai import CivitaiModel, CivitaiVersion
    from tsr.tui.app import TsrApp

TYPES = (("any type", ""), ("Checkpoint", "Checkpoint"), ("LoRA", "LORA"), ("VAE", "VAE"),
         ("Embedding", "TextualInversion"))  # fmt: skip
KIND_TYPES = {
    "checkpoint": "Checkpoint",
    "lora": "LORA",
    "vae": "VAE",
    "embedding": "TextualInversion",
}
_TAGS = re.compile(r"<[^>]+>")


def base_model_choices() -> list[tuple[str, str]]:
    """`any base model`, then every CivitAI base model some family knows."""
    names = [name for family in all_families().values() for name in family.civitai_base_models]
    return [("any base model", ""), *((name, name) for name in dict.fromkeys(names))]


def version_markup(version: CivitaiVersion) -> str:
    """A version's base model, trigger words and files."""
    lines = [f"[b]version[/] {escape(version.name)} [dim](id {version.id})[/]"]
    if version.base_model:
        lines.append(f"[b]base model[/] {escape(version.base_model)}")
    if version.trained_words:
        lines.append(f"[b]trigger words[/] {escape(', '.join(version.trained_words))}")
    for file in version.files:
        size = human_size(file.size_kb * 1024) if file.size_kb else "?"
        primary = " (primary)" if file.primary else ""
        lines.append(f"[dim]file[/] {escape(file.name)} · {size}{primary}")
    return "\n".join(lines)


def model_markup(model: CivitaiModel) -> str:
    """A model's name, type, creator, tags and the start of its description."""
    creator = (model.creator or {}).get("username")
    lines = [f"[b]{escape(model.name)}[/] [dim](model {model.id})[/]"]
    facts = [model.type or "", f"by {creator}" if creator else "", "NSFW" if model.nsfw else ""]
    lines.append(" · ".join(fact for fact in facts if fact))
    if model.tags:
        lines.append(f"[dim]tags[/] {escape(', '.join(model.tags[:8]))}")
    description = clip(one_line(_TAGS.sub(" ", model.description or "")), 360)
    if description:
        lines += ["", escape(description)]
    return "\n".join(lines)


class CivitaiScreen(Screen[None]):
    """Search CivitAI through the server, pick a model and a version, download it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="civitai.close", tooltip="Back to the models"),
        Binding("ctrl+d", "download", "Download", id="civitai.download",
                tooltip="Download the chosen version into the model folder for its type"),
        Binding("ctrl+n", "more", "More results", id="civitai.more",
                tooltip="The next page of results"),
    ]  # fmt: skip

    def __init__(self, kind: str = "checkpoint") -> None:
        super().__init__()
        self.kind = kind
        self.models: list[CivitaiModel] = []
        self.next_cursor: str | None = None
        self.model: CivitaiModel | None = None

    @property
    def tsr(self) -> TsrApp:
        """The app, typed."""
        return cast("TsrApp", self.app)

    def compose(self) -> ComposeResult:
        """Query and filters on top; results left; the model and its versions right."""
        with Horizontal(id="civitai-query"):
            yield Input(placeholder="search CivitAI (enter)", id="civitai-text", compact=True)
            yield Select(TYPES, value=KIND_TYPES.get(self.kind, ""), allow_blank=False,
                         id="civitai-type", compact=True)  # fmt: skip
            yield Select(base_model_choices(), value="", allow_blank=False, id="civitai-base",
                         compact=True)  # fmt: skip
        with Horizontal(id="civitai-body"):
            yield OptionList(id="civitai-results", compact=True)
            with Vertical(id="civitai-detail"):
                yield Select([], prompt="versions", id="civitai-version", compact=True)
                with VerticalScroll():
                    yield Static("", id="civitai-version-text")
                    yield Static("Type a name and press enter.", id="civitai-model-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """The query field takes the keys first."""
        self.query_one("#civitai-text", Input).focus()

    def _session(self) -> DataSession:
        session = self.tsr.session
        if session is None:
            raise NotConnected(f"not connected to {self.tsr.connection.remote}")
        return session

    def _filters(self) -> tuple[str | None, list[str], list[str]]:
        text = self.query_one("#civitai-text", Input).value.strip() or None
        kind = self.query_one("#civitai-type", Select).value
        base = self.query_one("#civitai-base", Select).value
        return (
            text,
            [kind] if isinstance(kind, str) and kind else [],
            ([base] if isinstance(base, str) and base else []),
        )

    @on(Input.Submitted, "#civitai-text")
    @on(Select.Changed, "#civitai-type, #civitai-base")
    def _search_asked(self) -> None:
        self.search(None)

    @work(exclusive=True, group="civitai-search", exit_on_error=False)
    async def search(self, cursor: str | None) -> None:
        """One page of results (appended when `cursor` continues the last search)."""
        text, types, bases = self._filters()
        results = self.query_one("#civitai-results", OptionList)
        if cursor is None:
            results.clear_options()
            self.models = []
        page = await self._session().search_civitai(text, types, bases, cursor)
        self.models += page.items
        self.next_cursor = page.next_cursor
        results.add_options(
            Option(f"{model.name} · {model.type or '?'}", id=str(model.id)) for model in page.items
        )
        if not self.models:
            self.query_one("#civitai-model-text", Static).update("Nothing found.")
        elif cursor is None:
            results.highlighted = 0
            results.focus()

    @on(OptionList.OptionHighlighted, "#civitai-results")
    def _result_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        index = event.option_index
        if 0 <= index < len(self.models):
            self.show_model(self.models[index])

    def show_model(self, model: CivitaiModel) -> None:
        """The model's details and its versions (newest first)."""
        self.model = model
        self.query_one("#civitai-model-text", Static).update(model_markup(model))
        versions = self.query_one("#civitai-version", Select)
        versions.set_options(
            (f"{v.name} · {v.base_model or '?'}", v.id) for v in model.model_versions
        )
        if model.model_versions:
            versions.value = model.model_versions[0].id
        self.refresh_bindings()

    @on(Select.Changed, "#civitai-version")
    def _version_chosen(self, event: Select.Changed) -> None:
        version = self.version
        text = version_markup(version) if version else ""
        self.query_one("#civitai-version-text", Static).update(text)

    @property
    def version(self) -> CivitaiVersion | None:
        """The chosen version of the highlighted model."""
        value = self.query_one("#civitai-version", Select).value
        if self.model is None:
            return None
        return next((v for v in self.model.model_versions if v.id == value), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Download needs a version; more results need a next page."""
        if action == "download":
            return True if self.model is not None else None
        if action == "more":
            return True if self.next_cursor else None
        return True

    def action_more(self) -> None:
        """The next page of results."""
        if self.next_cursor:
            self.search(self.next_cursor)

    def action_download(self) -> None:
        """Download the chosen version."""
        version = self.version
        if version is not None:
            self.download(version.id)

    @work(group="civitai-download", exit_on_error=False)
    async def download(self, version_id: int) -> None:
        """Queue the download on the server; the job line follows it."""
        download = await self._session().download(DownloadRequest(version_id=version_id))
        self.tsr.track(download)
        self.notify(f"Downloading {download.model_name or download.ref}…")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed search or download becomes a notification."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.tsr.report_error(event.worker.error)

    def action_close(self) -> None:
        """Back to the models pane."""
        self.dismiss()
