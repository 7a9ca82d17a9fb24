"""Small dialogs: ask for one line of text, or one choice from a list."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 70; height: auto; max-height: 80%; padding: 1 2;
    border: thick $accent; background: $surface;
}}
{name} OptionList {{ height: auto; max-height: 16; }}
"""


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line; enter answers, escape cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextPrompt")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without answer"),
    ]

    def __init__(self, question: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.question, self.placeholder, self.value = question, placeholder, value

    def compose(self) -> ComposeResult:
        """The question and the field."""
        with Vertical():
            yield Label(self.question)
            yield Input(self.value, placeholder=self.placeholder)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """No answer."""
        self.dismiss(None)


class ChoicePrompt(ModalScreen[str | None]):
    """Ask for one of a few choices (value, label); enter picks, escape cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ChoicePrompt")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without answer"),
    ]

    def __init__(self, question: str, choices: list[tuple[str, str]], current: str | None) -> None:
        super().__init__()
        self.question, self.choices, self.current = question, choices, current

    def compose(self) -> ComposeResult:
        """The question and the choices, the current one highlighted."""
        with Vertical():
            yield Label(self.question)
            options = OptionList(*(Option(label, id=value) for value, label in self.choices))
            values = [value for value, _ in self.choices]
            if self.current in values:
                options.highlighted = values.index(self.current)
            yield options

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """No answer."""
        self.dismiss(None)
