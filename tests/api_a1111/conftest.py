"""Fixtures of the A1111-front tests: real model files scanned into a real DB, a tsr app on
127.0.0.1 with the token set, and a managed backend that runs the fake sd-server process."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.sd_server_fixtures import free_port, write_launcher
from tests.modelfiles import write_pony_checkpoint, write_sd15_checkpoint, write_sd15_lora
from tests.server.conftest import OFFLINE_CIVITAI
from tests.server.running import RunningApp, serve_app
from tsr.config import Config
from tsr.db import init_database
from tsr.db.files import resolve_file
from tsr.db.scan import scan_roots

TOKEN = "a1111-Token-for-tests"
#: what an A1111 client sends: HTTP Basic, any user name, the token as the password
BASIC = ("webui-user", TOKEN)
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: the A1111 `info` keys (Processed.js()) every answer must carry
A1111_INFO_KEYS = {
    "prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "seed", "all_seeds",
    "subseed", "all_subseeds", "width", "height", "sampler_name", "cfg_scale", "steps",
    "batch_size", "sd_model_name", "sd_model_hash", "seed_resize_from_w", "seed_resize_from_h",
    "denoising_strength", "extra_generation_params", "index_of_first_image", "infotexts",
    "styles", "job_timestamp", "clip_skip", "is_using_inpainting_conditioning", "version",
}  # fmt: skip


@dataclass(frozen=True)
class ModelTree:
    """sd15 and pony checkpoints, two sd15 LoRAs (one in a sub-folder)."""

    checkpoints: Path
    loras: Path

    def checkpoint(self, stem: str) -> Path:
        """The checkpoint file with this stem."""
        return self.checkpoints / f"{stem}.safetensors"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> ModelTree:
    """The model files, written once per test module."""
    base = tmp_path_factory.mktemp("models")
    found = ModelTree(base / "checkpoints", base / "loras")
    write_sd15_checkpoint(found.checkpoint("sd15"))
    write_pony_checkpoint(found.checkpoint("pony"))
    write_sd15_lora(found.loras / "sd15-detail.safetensors")
    write_sd15_lora(found.loras / "styles" / "ink.safetensors")
    return found


@dataclass
class A1111Server:
    """A running tsr app and the fake sd-server its managed backend started."""

    url: str
    fake_url: str
    tree: ModelTree
    running: RunningApp

    def post(self, path: str, payload: Any, **options: Any) -> httpx.Response:
        """POST as an A1111 script does (Basic auth, JSON)."""
        options.setdefault("auth", BASIC)
        return httpx.post(f"{self.url}{path}", json=payload, timeout=60, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        """GET as an A1111 client does (Basic auth)."""
        options.setdefault("auth", BASIC)
        return httpx.get(f"{self.url}{path}", timeout=30, **options)

    def api(self, path: str, **params: Any) -> Any:
        """GET a tsr `/api/...` route with the bearer token; its JSON."""
        response = httpx.get(f"{self.url}{path}", params=params, headers=BEARER, timeout=30)
        response.raise_for_status()
        return response.json()

    def fake_mode(self, **change: Any) -> None:
        """Switch the fake sd-server (latency, hold, faults) while it runs."""
        httpx.post(f"{self.fake_url}/__fake__/mode", json=change, timeout=5).raise_for_status()

    def fake_model(self) -> str:
        """The model path the fake sd-server says it serves."""
        caps = httpx.get(f"{self.fake_url}/sdcpp/v1/capabilities", timeout=5).json()
        return str(caps["model"]["path"])

    def wait_until(self, condition: Any, seconds: float = 20.0) -> Any:
        """Poll `condition()` until it returns something true; fail after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"not reached within {seconds} s")


def sha256_of(stem: str) -> str:
    """The SHA256 the scan recorded for a model file."""
    found = resolve_file(stem).sha256
    assert found is not None
    return found


def decode_png(encoded: str) -> Image.Image:
    """A base64 image from an A1111 answer, decoded and checked to be a PNG."""
    data = base64.b64decode(encoded, validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@contextmanager
def serve_a1111(tree: ModelTree, home: Path) -> Iterator[A1111Server]:
    """A tsr app with a token and a managed backend (the fake as its sd-server) holding sd15."""
    fake_url = f"http://127.0.0.1:{free_port()}"
    backend = {
        "name": "gpu",
        "kind": "managed",
        "url": fake_url,
        "binary": str(write_launcher(home / "bin")),
        "model": str(tree.checkpoint("sd15")),
        "ready_timeout": 15.0,
    }
    raw = {
        "paths": {"checkpoints": [str(tree.checkpoints)], "loras": [str(tree.loras)]},
        "server": {"token": TOKEN},
        "civitai": {"base_url": OFFLINE_CIVITAI},
        "backends": [backend],
    }
    config = Config.model_validate(raw).model_copy(update={"home": home})
    init_database(config.db_path())
    scan_roots(model_roots=config.model_roots())
    with serve_app(config) as running:
        server = A1111Server(running.url, fake_url, tree, running)
        server.wait_until(lambda: _answers(fake_url))
        yield server


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def shared_server(
    tree: ModelTree, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[A1111Server]:
    """One server for a test module (tests that leave its model and settings alone)."""
    with serve_a1111(tree, tmp_path_factory.mktemp("tsr") / "home") as server:
        yield server


@pytest.fixture
def a1111(shared_server: A1111Server) -> A1111Server:
    """The module's server with the fake back to normal (no latency, no hold)."""
    shared_server.fake_mode(latency=0.0, hold=False, fail=None)
    return shared_server


@pytest.fixture
def own_server(tree: ModelTree, tmp_path: Path) -> Iterator[A1111Server]:
    """A server of the test's own (for tests that switch models or change settings)."""
    with serve_a1111(tree, tmp_path / "own-home") as server:
        yield server
