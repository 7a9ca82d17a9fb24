"""`tsr tui`: the terminal UI (textual is imported only here, so other verbs start fast)."""

from __future__ import annotations

import os

import typer

from tsr.cli.common import LocalFlag, RemoteOption


def register(app: typer.Typer) -> None:
    """Add `tui` to the root app."""
    app.command("tui")(tui)


def tui(remote: RemoteOption = None, local: LocalFlag = False) -> None:
    """Open the terminal UI: models, LoRAs and triggers, generate, and the gallery."""
    from tsr.cli.common import chosen_remote
    from tsr.client import resolve_remote
    from tsr.config import load_config

    config = load_config()
    name = resolve_remote(chosen_remote(remote, local), config)
    config.remote(name)  # an unknown name is one line listing the known ones, before any UI
    if config.tui.low_bandwidth:
        # 256 colours cost about two thirds of truecolor's bytes per image cell
        os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "256")
    from tsr.tui.app import build_app

    build_app(config, name).run()
