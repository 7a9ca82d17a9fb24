"""A first start on a fresh data dir: the default model folders are there for the user to fill;
a configured root that is missing stays missing (an unmounted disk must not become a folder)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server.conftest import make_config
from tests.server.running import serve_app
from tsr.config import Config


def test_the_default_model_folders_exist_after_a_first_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    unmounted = tmp_path / "usb-disk" / "loras"
    base = make_config(home)
    config = Config.model_validate(
        {**base.model_dump(exclude={"home"}), "paths": {"loras": [str(unmounted)]}}
    ).model_copy(update={"home": home})

    with serve_app(config) as running:
        assert httpx.get(f"{running.url}/api/health", timeout=10).status_code == 200

    for kind in ("checkpoints", "vae", "embeddings"):
        assert (home / "models" / kind).is_dir(), kind
    assert not (home / "models" / "loras").exists()
    assert not unmounted.exists()
