"""The gallery's filter form: prompt text, checkpoint and LoRA."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from tsr.schemas.images import ImageFilters


class GalleryFilterScreen(ModalScreen[ImageFilters | None]):
    """Edit the text filters; enter applies, escape leaves them as they were."""

    DEFAULT_CSS = """
    GalleryFilterScreen { align: center middle; }
    GalleryFilterScreen > Vertical {
        width: 64; height: auto; padding: 1 2; border: thick $accent; background: $surface;
    }
    GalleryFilterScreen Label { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel", tooltip="Keep the filters"),
        Binding(
            "ctrl+l",
            "clear",
            "Clear",
            id="filter.clear",
            tooltip="Clear every filter",
            priority=True,
        ),
    ]

    def __init__(self, filters: ImageFilters) -> None:
        super().__init__()
        self.filters = filters

    def compose(self) -> ComposeResult:
        """Three fields; empty means any."""
        with Vertical():
            yield Label("Prompt contains")
            yield Input(self.filters.prompt or "", id="filter-prompt", placeholder="any text")
            yield Label("Checkpoint (file name or hash)")
            yield Input(self.filters.checkpoint or "", id="filter-checkpoint", placeholder="any")
            yield Label("LoRA (file name)")
            yield Input(self.filters.lora or "", id="filter-lora", placeholder="any")
            yield Label("[dim]enter: apply · ctrl+l: clear · escape: cancel[/]")

    def _value(self, field_id: str) -> str | None:
        return self.query_one(f"#{field_id}", Input).value.strip() or None

    def on_input_submitted(self) -> None:
        """Enter in any field applies all three."""
        self.dismiss(
            self.filters.model_copy(
                update={
                    "prompt": self._value("filter-prompt"),
                    "checkpoint": self._value("filter-checkpoint"),
                    "lora": self._value("filter-lora"),
                }
            )
        )

    def action_clear(self) -> None:
        """No text filters at all."""
        self.dismiss(ImageFilters())

    def action_cancel(self) -> None:
        """Leave the filters as they were."""
        self.dismiss(None)
