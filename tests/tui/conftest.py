"""TUI fixtures: the app built as the CLI builds it, against real servers; halfcell images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tsr.client.local import shutdown_embedded
from tsr.config import Config, load_config
from tsr.tui.app import TsrApp, build_app

#: how long a test waits for something to appear before it fails (not a speed goal)
PATIENCE = 30.0


@pytest.fixture(autouse=True)
def stop_embedded_servers() -> Iterator[None]:
    """An embedded `local` server a test started is stopped before the next test."""
    yield
    shutdown_embedded()


def write_config(text: str) -> Config:
    """Write the test's config file (TSR_CONFIG points into tmp_path) and read it back."""
    config = load_config()
    assert config.source is not None
    config.source.parent.mkdir(parents=True, exist_ok=True)
    config.source.write_text(text)
    return load_config()


def make_app(config: Config | None = None, **options: object) -> TsrApp:
    """The app as `tsr tui` builds it, with half-cell images (stable in snapshots)."""
    return build_app(config or load_config(), renderer="halfcell", **options)  # type: ignore[arg-type]


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds; fail naming `what` if it never does."""
    waited = 0.0
    while not condition():
        if waited > PATIENCE:
            raise AssertionError(f"gave up waiting for {what}")
        await pilot.pause(0.05)
        waited += 0.05


@pytest.fixture
def home(isolated_home: Path) -> Path:
    """The data dir (TSR_HOME) of the test's `local` server."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    return isolated_home
