"""Fixtures for download tests: the fake CivitAI, a loopback file server, a real database."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.fakes.civitai import FakeCivitai, fake_civitai  # noqa: F401
from tests.fakes.file_server import FileServer, file_server  # noqa: F401
from tsr.config import Config
from tsr.db import init_database
from tsr.downloads import CivitaiCatalog, DownloadManager
from tsr.schemas.downloads import FINISHED_DOWNLOAD_STATES, DownloadOut

#: how long a test waits for a download to finish before failing
FINISH_TIMEOUT = 20.0


class EventLog:
    """Collects what the manager publishes (the app passes its event bus instead)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(
        self, topic: str, kind: str, data: Mapping[str, Any] | BaseModel | None = None
    ) -> None:
        """Record one event as the bus would carry it (JSON-ready data)."""
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data or {})
        self.events.append((topic, kind, payload))

    def kinds(self, download_id: int) -> list[str]:
        """The kinds of events about one download, in order."""
        return [kind for _, kind, data in self.events if data.get("id") == download_id]


def make_config(home: Path, civitai_url: str, **civitai: Any) -> Config:
    """A config with the default model roots under `home` and CivitAI at `civitai_url`."""
    data = {"civitai": {"base_url": civitai_url, **civitai}}
    return Config.model_validate(data).model_copy(update={"home": home})


@pytest.fixture
def config(isolated_home: Path, fake_civitai: FakeCivitai) -> Config:  # noqa: F811
    """The test's config: data dir `isolated_home`, CivitAI is the fake."""
    init_database(isolated_home / "tsr.db")
    return make_config(isolated_home, fake_civitai.url)


@pytest.fixture
def events() -> EventLog:
    """The events the manager published."""
    return EventLog()


@pytest.fixture
def manager(config: Config, events: EventLog) -> Iterator[DownloadManager]:
    """A running download manager (fast retries) over the test's database."""
    catalog = CivitaiCatalog(config)
    running = DownloadManager(config, catalog, events, retry_base=0.01)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        catalog.close()


def wait_finished(manager: DownloadManager, download_id: int) -> DownloadOut:
    """Poll until the download is done, failed or cancelled."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while time.monotonic() < deadline:
        out = manager.get(download_id)
        if out.state in FINISHED_DOWNLOAD_STATES:
            return out
        time.sleep(0.02)
    raise AssertionError(f"download #{download_id} did not finish: {manager.get(download_id)}")
