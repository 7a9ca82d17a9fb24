"""The lines around every pane: the pane tabs and the job line."""

from __future__ import annotations

from textual.widgets import Static

from tsr.tui.activity import Activity, activity_text, is_finished

PANE_TABS = (
    ("models", "1", "Models"),
    ("loras", "2", "LoRAs"),
    ("generate", "3", "Generate"),
    ("gallery", "4", "Gallery"),
)


class PaneTabs(Static):
    """`1 Models  2 LoRAs  3 Generate  4 Gallery`: the current panes lit, each one clickable."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.shown: tuple[str, ...] = ()

    def show(self, shown: tuple[str, ...]) -> None:
        """Light up the panes in `shown`."""
        if shown == self.shown:
            return
        self.shown = shown
        parts = []
        for pane, key, label in PANE_TABS:
            style = "reverse bold" if pane in shown else "dim"
            parts.append(f"[@click=app.pane('{pane}')][{style}] {key} {label} [/][/]")
        self.update(" ".join(parts), layout=False)


class JobLine(Static):
    """The current (or last) job, download and task of this app under every pane; hidden if none."""

    def on_mount(self) -> None:
        """Follow the app's job, download and task; count the seconds while one runs."""
        for slot in ("job", "download", "db_task"):
            self.watch(self.app, slot, self._changed)
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self.has_class("-busy"):
            self._changed()

    def _changed(self) -> None:
        self.show([getattr(self.app, slot, None) for slot in ("job", "download", "db_task")])

    def show(self, activities: list[Activity | None]) -> None:
        """Show each one that is there (running first), or hide."""
        shown = sorted((a for a in activities if a is not None), key=is_finished)
        self.display = bool(shown)
        self.update(" │ ".join(activity_text(a) for a in shown))
        busy = any(not is_finished(a) for a in shown)
        self.set_class(busy, "-busy")
        self.set_class(not busy and any(a.state == "failed" for a in shown), "-failed")
