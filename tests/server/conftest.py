"""Fixtures for server tests: configs with and without a token, served for real on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.running import RunningApp, serve_app
from tsr.config import Config

TOKEN = "s3cret-Token-for-tests"


#: nothing listens here: a route that would call CivitAI fails at once, and never goes online
OFFLINE_CIVITAI = "http://127.0.0.1:9/api/v1"


def make_config(home: Path, **server: object) -> Config:
    """A config whose data dir is `home`, with these [server] settings (CivitAI unreachable)."""
    raw = {"server": server, "civitai": {"base_url": OFFLINE_CIVITAI}}
    return Config.model_validate(raw).model_copy(update={"home": home})


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """An app requiring TOKEN, served on 127.0.0.1 for a whole test module."""
    home = tmp_path_factory.mktemp("token-server") / "home"
    with serve_app(make_config(home, token=TOKEN)) as running:
        yield running
