"""The command palette's entries: namespaced ("remote: use gpu-box"), offered when they apply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.screen import Screen

from tsr.tui.widgets.chrome import PANE_TABS

if TYPE_CHECKING:
    from tsr.tui.app import TsrApp

GALLERY_VIEWS = ("inbox", "kept", "favourites", "trash", "all")


def _on_pane(app: TsrApp, pane: str, method: str, *args: object) -> Callable[[], Awaitable[None]]:
    """A callback that shows `pane`, then calls `method(*args)` on its screen."""

    async def run() -> None:
        screen = await app.show_pane(pane)
        getattr(screen, method)(*args)

    return run


def _use(app: TsrApp, name: str) -> Callable[[], None]:
    return lambda: app.use_remote(name)


def _pane(app: TsrApp, pane: str) -> Callable[[], None]:
    return lambda: app.action_pane(pane)


def tsr_commands(app: TsrApp, screen: Screen) -> Iterator[SystemCommand]:
    """The commands that make sense right now."""
    from tsr.tui.screens.create import CreateScreen
    from tsr.tui.screens.gallery import GalleryScreen

    connection = app.connection
    for name in app.config.remote_names():
        if name != connection.remote:
            yield SystemCommand(
                f"remote: use {name}", f"Switch every pane to {name}", _use(app, name)
            )
    if connection.status == "offline":
        yield SystemCommand(
            f"remote: retry {connection.remote}", connection.reason, app.action_retry
        )
    for pane, key, label in PANE_TABS:
        yield SystemCommand(
            f"pane: {label.lower()}", f"Show the {label} pane ({key})", _pane(app, pane)
        )
    if not connection.online:
        return
    for view in GALLERY_VIEWS:
        yield SystemCommand(
            f"gallery: show {view}",
            f"The gallery's {view}",
            _on_pane(app, "gallery", "action_view", view),
        )
    yield SystemCommand(
        "gallery: filter",
        "By prompt text, checkpoint or LoRA",
        _on_pane(app, "gallery", "action_filter"),
    )
    yield SystemCommand(
        "gallery: undo",
        "Undo the last keep, trash or restore",
        _on_pane(app, "gallery", "action_undo"),
    )
    if isinstance(screen, GalleryScreen) and screen.view == "trash":
        yield SystemCommand(
            "gallery: purge trash",
            "Delete everything in the trash for good (asks once)",
            _on_pane(app, "gallery", "action_purge"),
        )
    yield SystemCommand(
        "models: rescan",
        "Look for new, changed and removed model files",
        _on_pane(app, "models", "action_rescan"),
    )
    yield SystemCommand(
        "models: find on CivitAI",
        "Search CivitAI and download a model",
        _on_pane(app, "models", "action_find"),
    )
    yield SystemCommand(
        "models: download by id or URL",
        "A CivitAI model or version id, or a URL",
        _on_pane(app, "models", "action_download_id"),
    )
    if isinstance(screen, CreateScreen) and screen.can_generate():
        yield SystemCommand(
            "generate: generate",
            "Queue the form as a generation job (ctrl+g)",
            screen.action_generate,
        )
