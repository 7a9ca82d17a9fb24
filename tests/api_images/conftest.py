"""Gallery API fixtures: a seeded gallery served for real, embedded (`local`) or by `tsr serve`.

Images are saved through GalleryStore (real PNGs made with Pillow) before the server starts.
Tests that change images import fresh ones of their own through the API, so the seeded images
stay as they were for every test of a module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.gallery.helpers import make_png, params
from tests.server.conftest import TOKEN, make_config
from tests.server.running import ServeProcess, cli_env
from tsr.client import Client, connect
from tsr.client.local import shutdown_embedded
from tsr.db.database import db, init_database
from tsr.gallery import GalleryStore
from tsr.schemas.images import LoraUse

MODES = ("local", "serve")
#: every seeded image's prompt holds this, so a filter finds exactly them
SEED_WORD = "seeded"
#: (checkpoint, LoRAs, prompt, seed, favourite) of each seeded image, oldest first
SEEDED: list[tuple[str, list[str], str, int, bool]] = [
    ("dreamshaper_8", ["add_detail"], "a red cube on a table", 101, False),
    ("dreamshaper_8", [], "a lighthouse at dusk", 102, True),
    ("juggernautXL_v9", ["add_detail", "ink_sketch"], "a fox in the snow", 103, False),
    ("juggernautXL_v9", [], "an old library", 104, False),
    ("dreamshaper_8", ["ink_sketch"], "a neon market in the rain", 105, True),
]
#: a CLI run gets this long; it only waits for a local server
CLI_TIMEOUT = 60


@dataclass
class Served:
    """A seeded gallery behind a running server, and a client for it."""

    mode: str
    home: Path
    client: Client
    #: seeded image ids, oldest first (the order of SEEDED)
    seeded: list[int]
    #: a moment before the seeded images were saved
    started: datetime
    cli_config: Path
    process: ServeProcess | None = None
    _fresh: int = field(default=0)

    @property
    def gallery(self) -> Path:
        """The gallery folder."""
        return self.home / "gallery"

    def raw(self) -> httpx.Client:
        """A plain httpx client for the same server (token included), for requests by hand."""
        endpoint = self.client.endpoint
        return httpx.Client(
            base_url=endpoint.base_url,
            headers=endpoint.headers(),
            transport=httpx.HTTPTransport(uds=endpoint.uds),
            trust_env=False,
        )

    def fresh_folder(self, count: int, tag: str | None = None) -> tuple[Path, str]:
        """A folder under the data dir with `count` new PNGs whose prompts hold a unique tag."""
        tag = tag or f"fresh{uuid.uuid4().hex[:10]}"
        folder = self.home / "incoming" / tag
        folder.mkdir(parents=True)
        for index in range(count):
            self._fresh += 1
            text = (
                f"{tag} picture {index}\nNegative prompt: blurry\n"
                f"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {index}, Size: 40x30, "
                "Model: freshmodel"
            )
            color = (self._fresh * 37 % 256, index * 50 % 256, 90)
            (folder / f"{index}.png").write_bytes(make_png(color, (40, 30), text))
        return folder, tag

    def fresh(self, count: int) -> tuple[list[int], str]:
        """Import `count` new images through the API; their ids (newest first) and their tag."""
        folder, tag = self.fresh_folder(count)
        report = self.client.images.import_folder(str(folder))
        assert len(report.imported) == count, report
        return sorted(report.imported, reverse=True), tag

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m tsr ARGS` against this server, stdin not a terminal."""
        where = ["--local"] if self.mode == "local" else ["--remote", "gpu"]
        extra = env or {}
        return subprocess.run(
            [sys.executable, "-m", "tsr", *args, *where],
            env=cli_env(self.home, self.cli_config, **extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )


def seed(home: Path) -> list[int]:
    """Save the SEEDED images into `home`'s gallery (before any server runs); their ids."""
    config = make_config(home)
    init_database(config.db_path())
    store = GalleryStore(config.gallery_dir())
    ids = []
    for index, (checkpoint, loras, prompt, seed_value, favourite) in enumerate(SEEDED):
        png = make_png((40 * index, 200 - 30 * index, 120), (64, 48))
        image = store.save(
            png,
            params(
                checkpoint=checkpoint,
                loras=[LoraUse(name=name, weight=0.5 + 0.1 * n) for n, name in enumerate(loras)],
                prompt=f"{SEED_WORD}: {prompt}",
                seed=seed_value,
            ),
        )
        if favourite:
            store.update(image.id, favourite=True)
        ids.append(image.id)
    db.close()
    return ids


@contextmanager
def serving(mode: str, root: Path, home: Path, **server: object) -> Iterator[Served]:
    """Serve the data dir `home` in `mode` (with these [server] settings) until the block ends."""
    cli_config = root / "cli.toml"
    seeded: list[int] = []
    started = datetime.now(UTC)
    if mode == "local":
        cli_config.write_text("")
        client = connect("local", make_config(home, **server))
        try:
            client.health()
            yield Served(mode, home, client, seeded, started, cli_config)
        finally:
            client.close()
            shutdown_embedded()
        return
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in server.items())
    (root / "server.toml").write_text(f"[server]\n{settings}")
    process = ServeProcess(home, root / "server.toml", TSR_TOKEN=TOKEN)
    cli_config.write_text(f'[remotes.gpu]\nurl = "{process.url}"\ntoken = "{TOKEN}"\n')
    client = Client(process.url, token=TOKEN)
    try:
        yield Served(mode, home, client, seeded, started, cli_config, process)
    finally:
        client.close()
        process.stop()


@pytest.fixture(scope="module", params=MODES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A seeded gallery served embedded (`local`) or by a `tsr serve` process with a token."""
    root = tmp_path_factory.mktemp(request.param)
    began = datetime.now(UTC) - timedelta(seconds=1)
    seeded = seed(root / "home")
    with serving(request.param, root, root / "home") as served:
        served.seeded, served.started = seeded, began
        yield served
