"""Shared fixtures: every test runs with its own config file and data dir, never the developer's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TSR_CONFIG and TSR_HOME into tmp_path and drop secrets from the environment."""
    home = tmp_path / "tsr-home"
    monkeypatch.setenv("TSR_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("TSR_HOME", str(home))
    for name in ("CIVITAI_API_KEY", "CIVITAI_BASE_URL", "TSR_TOKEN", "TSR_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    return home
