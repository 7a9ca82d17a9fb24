"""Shared fixtures: every test runs with its own config file and data dir, never the developer's.

Property tests (hypothesis, the API fuzz) replay the same derandomized cases on every run, so a
new random draw cannot turn CI red; TSR_FUZZ_EXPLORE=1 draws new ones, and what they find gets
pinned as a plain test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("replay", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile("explore" if os.environ.get("TSR_FUZZ_EXPLORE") else "replay")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TSR_CONFIG and TSR_HOME into tmp_path and drop secrets from the environment."""
    home = tmp_path / "tsr-home"
    monkeypatch.setenv("TSR_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("TSR_HOME", str(home))
    for name in ("CIVITAI_API_KEY", "CIVITAI_BASE_URL", "TSR_TOKEN", "TSR_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    return home
