"""The help screen (`?`): every key that works here, what it does, and its id for the keymap."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def _key_label(screen: Screen, key: str) -> str:
    return screen.app.get_key_display(Binding(key, ""))


def help_markup(screen: Screen, config_path: str) -> str:
    """The keys active on `screen` (grouped by where they are bound) as Textual markup."""
    groups: dict[str, list[tuple[str, Binding, bool]]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.system or not binding.description:
            continue
        owner = type(active.node).__name__.removesuffix("Screen") or "App"
        groups.setdefault(owner, []).append((key, binding, active.enabled))
    lines: list[str] = []
    for owner, rows in sorted(groups.items(), key=lambda item: item[0] != "TsrApp"):
        lines.append(f"[b]{escape('Everywhere' if owner == 'TsrApp' else owner)}[/]")
        merged: dict[str, tuple[list[str], Binding, bool]] = {}
        for key, binding, enabled in rows:
            entry = merged.setdefault(binding.id or binding.action, ([], binding, enabled))
            entry[0].append(_key_label(screen, key))
        for keys, binding, enabled in merged.values():
            what = escape(binding.tooltip or binding.description)
            ident = f"  [dim]{escape(binding.id)}[/]" if binding.id else ""
            row = f"  {escape(', '.join(keys)):<14} {what}"
            lines.append((row if enabled else f"[dim]{row}[/]") + ident)
        lines.append("")
    lines.append(
        "[dim]Remap any key by its id in "
        f"{escape(config_path)}, e.g.[/]\n"
        '  [tui.keymap]\n  "gallery.trash" = "x,delete"\n'
        "[dim]ctrl+p opens the command palette; escape closes this help.[/]"
    )
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """A list of the keys of the screen underneath."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%; border: thick $accent; background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "close", "Close", id="help.close",
                tooltip="Close the help"),
    ]  # fmt: skip

    def __init__(self, underneath: Screen) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        """The key list, scrollable."""
        with VerticalScroll():
            source = getattr(self.app, "config", None)
            path = str(source.source) if source is not None and source.source else "the config"
            yield Static(help_markup(self.underneath, path), id="help-text")

    def action_close(self) -> None:
        """Back to the pane."""
        self.dismiss()
