"""The model list: checkpoints (VAEs, embeddings behind a filter), filtered as you type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Select

from tsr.schemas.generation_api import CheckpointOut
from tsr.schemas.models import ModelFile
from tsr.tui.text import human_size

KINDS = (("checkpoints", "checkpoint"), ("VAEs", "vae"), ("embeddings", "embedding"))


def display_name(model: ModelFile) -> str:
    """The CivitAI name when linked, else the file's stem."""
    return model.civitai.model_name if model.civitai else PurePath(model.name).stem


def is_loaded(model: CheckpointOut) -> bool:
    """Whether a backend holds `model` now."""
    return bool(model.loaded_on)


class ModelList(Vertical):
    """A filter box, a kind choice, and a table of model files; one row per file."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "search",
            "Filter",
            id="models.search",
            show=False,
            tooltip="Type to filter models",
        ),
    ]

    @dataclass
    class ModelHighlighted(Message):
        """The cursor rests on a model file."""

        model: ModelFile

    @dataclass
    class KindChosen(Message):
        """The user chose another kind of model file to list."""

        kind: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.models: list[CheckpointOut] = []
        self.shown: list[CheckpointOut] = []

    def compose(self) -> ComposeResult:
        """Filter and kind on one line, the table under them."""
        with Horizontal(classes="models--top"):
            yield Input(placeholder="filter models (/)", id="model-filter", compact=True)
            yield Select(KINDS, value="checkpoint", allow_blank=False, id="model-kind",
                         compact=True)  # fmt: skip
        table: DataTable[str | Text] = DataTable(id="model-table", cursor_type="row")
        table.add_column(" ", key="loaded", width=1)
        table.add_column("Name", key="name")
        table.add_column("Family", key="family", width=11)
        table.add_column("Size", key="size", width=9)
        table.add_column("CivitAI", key="linked", width=7)
        yield table

    @property
    def kind(self) -> str:
        """The kind of model file listed."""
        value = self.query_one("#model-kind", Select).value
        return value if isinstance(value, str) else "checkpoint"

    @property
    def current(self) -> CheckpointOut | None:
        """The model file under the cursor."""
        row = self.query_one(DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def show_models(self, models: list[CheckpointOut]) -> None:
        """Show these files (a ● marks those a backend holds)."""
        self.models = models
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = self.current.id if self.current else None
        words = self.query_one("#model-filter", Input).value.casefold().split()
        self.shown = [
            model
            for model in self.models
            if all(
                w in f"{display_name(model)} {model.name} {model.family or ''}".casefold()
                for w in words
            )
        ]
        table.clear()
        for model in self.shown:
            loaded = is_loaded(model)
            table.add_row(
                Text("●", style="bold green") if loaded else "",
                Text(display_name(model), style="bold" if loaded else ""),
                model.family or "?",
                human_size(model.size),
                "✓" if model.civitai else "–",  # noqa: RUF001 (an en dash: "not linked")
                key=str(model.id),
            )
        ids = [model.id for model in self.shown]
        if keep in ids:
            table.move_cursor(row=ids.index(keep))
        elif self.shown:
            self.post_message(self.ModelHighlighted(self.shown[0]))

    @on(Input.Changed, "#model-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill()

    @on(Input.Submitted, "#model-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(DataTable).focus()

    @on(Select.Changed, "#model-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.KindChosen(self.kind))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        model = self.current
        if model is not None:
            self.post_message(self.ModelHighlighted(model))

    def action_search(self) -> None:
        """Type to filter."""
        self.query_one("#model-filter", Input).focus()
