"""The header: which remote (a dropdown), how the connection is, what model it has loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Select, Static

from tsr.tui.messages import Connection


def loaded_models(connection: Connection) -> set[str]:
    """The checkpoints the remote's ready backends hold (paths or file names, as reported)."""
    return set(connection.info.loaded_models) if connection.info else set()


def loaded_model_text(connection: Connection) -> str:
    """`model: NAME` for the checkpoint the remote holds, or what keeps it from holding one."""
    info = connection.info
    if info is None:
        return ""
    troubled = [b for b in info.backends if b.state in ("unreachable", "failed")]
    if info.loaded_models:
        names = ", ".join(PurePath(model).stem for model in info.loaded_models)
        return f"model: {names}"
    if troubled:
        backend = troubled[0]
        return f"sd-server {backend.state} at {backend.url}"
    return "no model loaded"


def connection_text(connection: Connection) -> str:
    """One line: the state of the connection and, online, the loaded model."""
    if connection.status == "connecting":
        return "◌ connecting…"
    if connection.status == "offline":
        return f"✗ offline: {connection.reason}  (ctrl+r: retry)"
    version = f"tsr {connection.info.version}" if connection.info else ""
    return " · ".join(part for part in ("● online", version, loaded_model_text(connection)) if part)


class RemoteBar(Horizontal):
    """The top line of every pane: the remote dropdown, then the connection's state."""

    @dataclass
    class RemoteChosen(Message):
        """The user picked another remote in the dropdown."""

        remote: str

    def __init__(self, remotes: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.remotes = remotes

    def compose(self) -> ComposeResult:
        """The app's name, the remote dropdown and the state line."""
        yield Static("tsr", classes="remote-bar--title")
        yield Select(
            [(name, name) for name in self.remotes],
            allow_blank=False,
            compact=True,
            classes="remote-bar--select",
            id="remote-select",
        )
        yield Static("", classes="remote-bar--state", markup=False)

    def on_mount(self) -> None:
        """Follow the app's connection from now on."""
        self.watch(self.app, "connection", self.show_connection)

    def show_connection(self, connection: Connection) -> None:
        """Show `connection`: its remote in the dropdown, its state and model beside it."""
        select = self.query_one(Select)
        if connection.remote in self.remotes and select.value != connection.remote:
            with self.prevent(Select.Changed):
                select.value = connection.remote
        state = self.query_one(".remote-bar--state", Static)
        state.update(connection_text(connection))
        for status in ("connecting", "online", "offline"):
            self.set_class(connection.status == status, f"-{status}")

    def open_list(self) -> None:
        """Drop the remote list down (ctrl+r)."""
        select = self.query_one(Select)
        select.focus()
        select.expanded = True

    @on(Select.Changed, "#remote-select")
    def _remote_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self.post_message(self.RemoteChosen(event.value))
