"""The LoRA picker: LoRAs for the checkpoint's family, weights, and trigger words as toggles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList, SelectionList
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from tsr.families import get_family
from tsr.schemas.generation_api import LoraOut
from tsr.schemas.jobs import LoraRef
from tsr.schemas.models import ModelFile, TriggerWord

WEIGHT_STEP = 0.1
WEIGHT_KEYS = Binding.Group("Weight")
SOURCE_LABELS = {"civitai": "CivitAI", "training": "training", "user": "yours"}


def lora_name(lora: ModelFile) -> str:
    """A LoRA as the user knows it: its CivitAI name when linked, else the file's stem."""
    return lora.civitai.model_name if lora.civitai else PurePath(lora.name).stem


def trigger_label(word: TriggerWord) -> Text:
    """A trigger word with where it comes from: `smile  CivitAI, training x42`."""
    sources = []
    for source in word.sources:
        label = SOURCE_LABELS.get(source, source)
        if source == "training" and word.count:
            label += f" ×{word.count}"  # noqa: RUF001 (a multiplication sign, meant)
        sources.append(label)
    text = Text(word.word)
    text.append("  " + ", ".join(sources), style="dim")
    return text


class LoraPicker(Vertical):
    """Search and choose LoRAs (space, `+`/`-`), and pick their trigger words."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "use", "Use", id="loras.toggle", tooltip="Use this LoRA or not"),
        Binding("plus,equals_sign", "weight(1)", "Weight +", id="loras.weight_up",
                tooltip="Raise the LoRA's weight by 0.1", group=WEIGHT_KEYS),
        Binding("minus", "weight(-1)", "Weight -", id="loras.weight_down",
                tooltip="Lower the LoRA's weight by 0.1", group=WEIGHT_KEYS),
        Binding("a", "show_all", "All families", id="loras.show_all",
                tooltip="Show LoRAs of every family (others are marked), or only compatible ones"),
        Binding("slash", "search", "Search", id="loras.search", show=False,
                tooltip="Search the LoRAs"),
    ]  # fmt: skip

    @dataclass
    class LoraHighlighted(Message):
        """The cursor rests on a LoRA: its trigger words are wanted."""

        lora: ModelFile

    class ChoiceChanged(Message):
        """The LoRAs in use or their weights changed."""

    @dataclass
    class TriggerToggled(Message):
        """A trigger word was switched on (into the prompt) or off."""

        word: str
        chosen: bool

    @dataclass
    class TriggerAdded(Message):
        """The user typed a trigger word of their own for a LoRA."""

        lora: ModelFile
        word: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.loras: Sequence[ModelFile] = []
        self.shown: list[ModelFile] = []
        self.selected: dict[int, float] = {}
        self.chosen_words: set[str] = set()
        self.architecture: str | None = None
        self.family: str | None = None
        self.show_all = False
        self.trigger_owner: ModelFile | None = None

    def compose(self) -> ComposeResult:
        """Search, the list, then the highlighted LoRA's trigger words."""
        with Horizontal(classes="loras--top"):
            yield Input(placeholder="search LoRAs (/)", id="lora-search", compact=True)
            yield Label("", id="lora-scope")
        yield OptionList(id="lora-list", compact=True)
        yield Label("Trigger words", id="lora-trigger-title")
        yield SelectionList[str](id="lora-triggers", compact=True)
        yield Input(placeholder="add a word of your own (enter)", id="lora-add-word", compact=True)

    # -- what the screen feeds in ---------------------------------------------------------------

    def show_loras(self, loras: Sequence[ModelFile], family: str | None, show_all: bool) -> None:
        """The LoRAs to choose from, for a checkpoint of `family`."""
        self.loras, self.family, self.show_all = loras, family, show_all
        self.architecture = get_family(family).architecture if family else None
        scope = "every family" if show_all else f"for {family or 'any family'}"
        self.query_one("#lora-scope", Label).update(f" {scope} · a: toggle")
        self._filter()

    def show_triggers(self, lora: ModelFile, words: list[TriggerWord]) -> None:
        """The trigger words of `lora`, the chosen ones ticked."""
        self.trigger_owner = lora
        self.query_one("#lora-trigger-title", Label).update(f"Trigger words · {lora_name(lora)}")
        triggers = self.query_one("#lora-triggers", SelectionList)
        with self.prevent(SelectionList.SelectionToggled, SelectionList.SelectedChanged):
            triggers.clear_options()
            triggers.add_options(
                Selection(trigger_label(w), w.word, w.word in self.chosen_words)
                for w in words
                if not w.hidden
            )
            if triggers.option_count:
                triggers.highlighted = 0

    def compatible(self, lora: ModelFile) -> bool:
        """Whether `lora` fits the checkpoint: as the server says, else by architecture."""
        if isinstance(lora, LoraOut) and lora.compatible is not None:
            return lora.compatible
        if self.architecture is None:
            return True
        architecture = lora.architecture or (
            get_family(lora.family).architecture if lora.family else None
        )
        return architecture is None or architecture == self.architecture

    def refs(self) -> tuple[list[LoraRef], bool]:
        """The LoRAs in use as request entries, and whether any is for another architecture."""
        chosen = [lora for lora in self.loras if lora.id in self.selected]
        refs = [LoraRef(id=lora.id, weight=self.selected[lora.id]) for lora in chosen]
        return refs, any(not self.compatible(lora) for lora in chosen)

    def summary(self) -> str:
        """`name 0.8, other 1` for the form."""
        chosen = [lora for lora in self.loras if lora.id in self.selected]
        if not chosen:
            return "none (2: pick some)"
        return ", ".join(f"{lora_name(lora)} {self.selected[lora.id]:g}" for lora in chosen)

    # -- the list ---------------------------------------------------------------------------------

    def _prompt(self, lora: ModelFile) -> Text:
        chosen = lora.id in self.selected
        text = Text("[x] " if chosen else "[ ] ", style="bold" if chosen else "")
        text.append(lora_name(lora))
        if chosen:
            text.append(f"  {self.selected[lora.id]:g}", style="bold")
        if not self.compatible(lora):
            note = lora.note if isinstance(lora, LoraOut) and lora.note else None
            text.append(f"  ≠ {note or lora.family or lora.architecture or '?'}", style="red")
        elif lora.family:
            text.append(f"  {lora.family}", style="dim")
        return text

    def _filter(self) -> None:
        words = self.query_one("#lora-search", Input).value.casefold().split()
        option_list = self.query_one("#lora-list", OptionList)
        highlighted = self._highlighted()
        self.shown = [
            lora
            for lora in self.loras
            if (self.show_all or self.compatible(lora) or lora.id in self.selected)
            and all(w in f"{lora_name(lora)} {lora.name}".casefold() for w in words)
        ]
        option_list.clear_options()
        option_list.add_options(Option(self._prompt(lora), id=str(lora.id)) for lora in self.shown)
        ids = [lora.id for lora in self.shown]
        if highlighted is not None and highlighted.id in ids:
            option_list.highlighted = ids.index(highlighted.id)
        elif ids:
            option_list.highlighted = 0

    def _highlighted(self) -> ModelFile | None:
        index = self.query_one("#lora-list", OptionList).highlighted
        return self.shown[index] if index is not None and index < len(self.shown) else None

    @on(Input.Changed, "#lora-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._filter()

    @on(Input.Submitted, "#lora-search")
    def _search_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#lora-list", OptionList).focus()

    @on(OptionList.OptionHighlighted, "#lora-list")
    def _lora_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        lora = self._highlighted()
        if lora is not None:
            self.post_message(self.LoraHighlighted(lora))

    @on(OptionList.OptionSelected, "#lora-list")
    def _lora_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_use()

    def _redraw(self, lora: ModelFile) -> None:
        option_list = self.query_one("#lora-list", OptionList)
        index = self.shown.index(lora)
        option_list.replace_option_prompt_at_index(index, self._prompt(lora))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Toggle and weights need a LoRA under the cursor."""
        if action in ("use", "weight"):
            return True if self._highlighted() is not None else None
        return True

    def action_use(self) -> None:
        """Use the highlighted LoRA, or stop using it."""
        lora = self._highlighted()
        if lora is None:
            return
        if lora.id in self.selected:
            del self.selected[lora.id]
        else:
            self.selected[lora.id] = 1.0
        self._redraw(lora)
        self.post_message(self.ChoiceChanged())

    def action_weight(self, direction: int) -> None:
        """Change the highlighted LoRA's weight by 0.1 (it is used from then on)."""
        lora = self._highlighted()
        if lora is None:
            return
        weight = self.selected.get(lora.id, 1.0 if direction < 0 else 0.9) + direction * WEIGHT_STEP
        self.selected[lora.id] = round(max(-10.0, min(10.0, weight)), 2)
        self._redraw(lora)
        self.post_message(self.ChoiceChanged())

    def action_show_all(self) -> None:
        """Every family's LoRAs (others marked), or only the compatible ones."""
        self.show_loras(self.loras, self.family, not self.show_all)

    def action_search(self) -> None:
        """Type to search."""
        self.query_one("#lora-search", Input).focus()

    # -- trigger words ----------------------------------------------------------------------------

    @on(SelectionList.SelectionToggled, "#lora-triggers")
    def _trigger_toggled(self, event: SelectionList.SelectionToggled[str]) -> None:
        event.stop()
        word = event.selection.value
        chosen = word in event.selection_list.selected
        if chosen:
            self.chosen_words.add(word)
        else:
            self.chosen_words.discard(word)
        self.post_message(self.TriggerToggled(word, chosen))

    @on(Input.Submitted, "#lora-add-word")
    def _word_added(self, event: Input.Submitted) -> None:
        event.stop()
        word = " ".join(event.value.split())
        if word and self.trigger_owner is not None:
            self.chosen_words.add(word)
            self.post_message(self.TriggerAdded(self.trigger_owner, word))
            self.post_message(self.TriggerToggled(word, True))
        event.input.value = ""
