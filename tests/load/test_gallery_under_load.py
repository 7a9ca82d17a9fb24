"""Issue 5's reliability check: 20 clients page the gallery of a `tsr serve` process with a token
while generation jobs run on a managed fake sd-server; nothing fails and no image is lost.

The work is bounded in count, not in time: each client makes a fixed number of passes.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.sd_server_fixtures import free_port, write_launcher
from tests.modelfiles import write_sd15_checkpoint, write_sd15_lora
from tests.server.conftest import TOKEN
from tests.server.running import ServeProcess
from tsr.client import Client
from tsr.config import load_config
from tsr.db import init_database
from tsr.db.database import db
from tsr.db.scan import scan_roots
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageFilters, ImageParams
from tsr.schemas.jobs import JobOut

SEEDED = 300
CLIENTS = 20
PASSES = 3
PAGE = 40
THUMBS_PER_PASS = 2
JOBS = 8
BATCH = 2
#: how long a fixture waits for the server or a job to settle (not a speed goal)
PATIENCE = 60.0
TINY = {"width": 64, "height": 64, "steps": 2}


def tiny_png(index: int) -> bytes:
    """A real 16x16 PNG whose colour depends on `index` (so every file differs)."""
    buffer = io.BytesIO()
    colour = (index % 256, (index * 7) % 256, (index * 13) % 256)
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def decodes_as(data: bytes, kind: str) -> bool:
    """True when `data` is a complete, valid image of format `kind`."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format == kind


def stop_serve(serve: ServeProcess) -> None:
    """SIGTERM `tsr serve` (it stops its managed sd-server first); show its log if it failed."""
    code, output = serve.stop()
    if code not in (0, -15):
        print(output[-20_000:], file=sys.stderr)


def gone(port: int) -> bool:
    """True once nothing accepts connections on the loopback `port` (waits up to PATIENCE)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class Served:
    """The running `tsr serve` and what it was seeded with."""

    serve: ServeProcess
    seeded_ids: set[int]

    def client(self) -> Client:
        """A new client of the server with the token."""
        return Client(self.serve.url, token=TOKEN)


def seed_gallery(server_toml: Path, home: Path) -> set[int]:
    """Scan the model roots and save SEEDED real PNGs through the gallery (server not running)."""
    config = load_config(server_toml).model_copy(update={"home": home})
    init_database(config.db_path())
    try:
        scan_roots(model_roots=config.model_roots())
        gallery = GalleryStore(config.gallery_dir())
        saved = {
            gallery.save(tiny_png(i), ImageParams(prompt=f"seed image {i}")).id
            for i in range(SEEDED)
        }
    finally:
        db.close()
    assert len(saved) == SEEDED
    return saved


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`tsr serve` with a token, a managed fake sd-server holding sd15, a seeded gallery."""
    base = tmp_path.resolve()
    checkpoint = write_sd15_checkpoint(base / "models" / "checkpoints" / "sd15.safetensors")
    write_sd15_lora(base / "models" / "loras" / "sd15-detail.safetensors")
    launcher = write_launcher(base / "bin")
    sd_port = free_port()
    server_toml = base / "server.toml"
    server_toml.write_text(f"""
[paths]
checkpoints = ["{checkpoint.parent}"]
loras = ["{base / "models" / "loras"}"]

[[backends]]
name = "gpu"
kind = "managed"
url = "http://127.0.0.1:{sd_port}"
binary = "{launcher}"
ready_timeout = {PATIENCE}
""")
    home = base / "server-home"
    seeded = seed_gallery(server_toml, home)
    serve = ServeProcess(home, server_toml, TSR_TOKEN=TOKEN)
    try:
        with Client(serve.url, token=TOKEN) as client:
            switched = client.models.switch_and_wait("sd15", "gpu")
            assert switched.state == "done", switched.error
        yield Served(serve, seeded)
    finally:
        stop_serve(serve)
    assert gone(sd_port), "the managed sd-server outlived tsr serve"


@dataclass
class Pager:
    """One client paging the whole gallery PASSES times; what it saw and what went wrong."""

    served: Served
    number: int
    passes: list[list[int]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        """Page to the end PASSES times, fetching a few thumbnails and files on the way."""
        try:
            with self.served.client() as client:
                for _ in range(PASSES):
                    self.passes.append(self.one_pass(client))
        except BaseException as exc:  # collected: a thread's failure must reach the test
            self.errors.append(exc)

    def one_pass(self, client: Client) -> list[int]:
        """Every id of one walk through `/api/images` following `next_cursor`."""
        seen: list[int] = []
        cursor: str | None = None
        while True:
            page = client.images.list(ImageFilters(), cursor=cursor, limit=PAGE)
            seen += [image.id for image in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        # a different few thumbnails per client and pass: thumbnails get made concurrently
        start = (self.number * 11 + len(self.passes) * 5) % max(len(seen), 1)
        for image_id in seen[start : start + THUMBS_PER_PASS]:
            if not decodes_as(client.images.thumbnail(image_id), "WEBP"):
                raise AssertionError(f"thumbnail of image {image_id} is not a WebP")
        return seen


def submit_jobs(client: Client) -> list[JobOut]:
    """Queue JOBS generations of BATCH images each and follow them all to the end."""
    requests = [
        {"prompt": f"a lighthouse, take {i}", "checkpoint": "sd15", "batch": BATCH, **TINY}
        for i in range(JOBS)
    ]
    return client.generation.generate_all_and_wait(requests)


def test_twenty_clients_page_the_gallery_while_jobs_run_and_nothing_is_lost(
    served: Served,
) -> None:
    pagers = [Pager(served, number) for number in range(CLIENTS)]
    threads = [threading.Thread(target=p.run, name=f"pager-{p.number}") for p in pagers]
    for thread in threads:
        thread.start()
    try:
        with served.client() as client:
            jobs = submit_jobs(client)
    finally:
        for thread in threads:
            thread.join(PATIENCE)
    assert not any(thread.is_alive() for thread in threads), "a client never finished paging"

    errors = [f"client {p.number}: {e!r}" for p in pagers for e in p.errors]
    assert errors == []
    generated = {image_id for job in jobs for image_id in job.image_ids}
    for pager in pagers:
        assert len(pager.passes) == PASSES
        for ids in pager.passes:
            assert len(ids) == len(set(ids)), f"client {pager.number} saw an id twice"
            assert ids == sorted(ids, reverse=True), f"client {pager.number}: not newest first"
            # a pass may or may not see images made while it ran, but every seeded one
            assert served.seeded_ids <= set(ids)
            assert set(ids) <= served.seeded_ids | generated
    assert [job.state for job in jobs] == ["done"] * JOBS, [job.error for job in jobs]
    assert all(len(job.image_ids) == BATCH for job in jobs)
    assert len(generated) == JOBS * BATCH

    with served.client() as client:
        final: list[int] = []
        cursor: str | None = None
        while True:
            page = client.images.list(ImageFilters(), cursor=cursor, limit=PAGE)
            final += [image.id for image in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert sorted(final) == sorted(served.seeded_ids | generated)
        stats = client.images.stats()
        assert stats.inbox + stats.kept + stats.trashed == SEEDED + JOBS * BATCH
        for image_id in sorted(generated):
            assert decodes_as(client.images.file(image_id), "PNG"), image_id
