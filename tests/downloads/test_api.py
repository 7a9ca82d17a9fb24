"""The download and CivitAI proxy endpoints, through a real server on 127.0.0.1 and tsr.client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.downloads.conftest import FINISH_TIMEOUT, make_config
from tests.downloads.test_manager import publish
from tests.fakes.civitai import FakeCivitai
from tests.fakes.file_server import FileServer
from tests.modelfiles import write_sdxl_lora
from tests.server.running import RunningApp, serve_app
from tsr.client import Client
from tsr.config import Config
from tsr.errors import BadRequest, Conflict, NotFound
from tsr.schemas.downloads import FINISHED_DOWNLOAD_STATES, DownloadOut
from tsr.schemas.server import Event

KEY = "civitai-secret-key-42"


@pytest.fixture(scope="module")
def lora_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real SDXL LoRA."""
    return write_sdxl_lora(tmp_path_factory.mktemp("lora") / "l.safetensors").read_bytes()


@pytest.fixture
def server_config(isolated_home: Path, fake_civitai: FakeCivitai) -> Config:
    """The server's config: CivitAI is the fake, with a key only the server knows."""
    fake_civitai.api_key = KEY
    return make_config(isolated_home, fake_civitai.url, api_key=KEY)


@pytest.fixture
def running(server_config: Config) -> Iterator[RunningApp]:
    """The tsr app served on a free loopback port."""
    with serve_app(server_config) as app:
        yield app


@pytest.fixture
def client(running: RunningApp) -> Iterator[Client]:
    """A client of the running app."""
    with Client(running.url) as tsr:
        yield tsr


def follow(client: Client, download_id: int) -> DownloadOut:
    """Poll the API until the download finishes."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while time.monotonic() < deadline:
        out = client.downloads.get(download_id)
        if out.state in FINISHED_DOWNLOAD_STATES:
            return out
        time.sleep(0.02)
    raise AssertionError(f"download #{download_id} did not finish")


def test_post_download_installs_the_file_and_reports_progress_events(
    client: Client,
    running: RunningApp,
    fake_civitai: FakeCivitai,
    file_server: FileServer,
    server_config: Config,
    lora_bytes: bytes,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.08  # slow enough for a few progress events
    received: list[Event] = []
    subscribed = threading.Event()

    def listen() -> None:
        with Client(running.url) as reader:
            for event in reader.events(["download"]):
                if event.topic == "bus":
                    subscribed.set()
                    continue
                received.append(event)
                if event.kind == "finished":
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(10)

    queued = client.downloads.start({"version_id": 4107})
    done = follow(client, queued.id)
    listener.join(10)

    assert queued.state == "queued"
    assert done.state == "done", done.error
    target = server_config.model_roots()["loras"][0] / "zkx_girl_v2.safetensors"
    assert target.read_bytes() == lora_bytes
    assert done.file_id is not None
    assert [d.id for d in client.downloads.list()] == [queued.id]
    assert client.downloads.list(["failed"]) == []
    kinds = [event.kind for event in received]
    assert kinds[0] == "queued" and kinds[-1] == "finished"
    progress = [event.data for event in received if event.kind == "progress"]
    assert progress, "no progress events"
    assert all(p["bytes_total"] == len(lora_bytes) for p in progress)
    assert [p["bytes_done"] for p in progress] == sorted(p["bytes_done"] for p in progress)
    assert any(p["rate"] for p in progress)


def test_a_download_queued_before_a_restart_finishes_after_it(
    server_config: Config, fake_civitai: FakeCivitai, file_server: FileServer, lora_bytes: bytes
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.05
    with serve_app(server_config) as first, Client(first.url) as client:
        download_id = client.downloads.start({"version_id": 4107}).id
        deadline = time.monotonic() + 10
        while client.downloads.get(download_id).bytes_done == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    file_server.delay = 0
    with serve_app(server_config) as second, Client(second.url) as client:
        done = follow(client, download_id)
    assert done.state == "done", done.error
    assert file_server.ranges()[0] is None
    assert file_server.ranges()[-1] not in (None, "bytes=0-")  # resumed, not restarted


def test_cancel_and_unknown_ids_through_the_api(
    client: Client, fake_civitai: FakeCivitai, file_server: FileServer, lora_bytes: bytes
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.05
    download_id = client.downloads.start({"version_id": 4107}).id

    assert client.downloads.cancel(download_id).state == "cancelled"
    with pytest.raises(Conflict, match=f"download #{download_id} is already cancelled"):
        client.downloads.cancel(download_id)
    with pytest.raises(NotFound, match="there is no download #999"):
        client.downloads.get(999)


def test_bad_requests_get_one_sentence(client: Client, fake_civitai: FakeCivitai) -> None:
    with pytest.raises(BadRequest, match="give exactly one of version_id, model_id, url or hash"):
        client.downloads.start({"version_id": 1, "model_id": 2})
    with pytest.raises(BadRequest, match="a SHA-256 is 64 hex digits"):
        client.downloads.start({"url": "http://example.invalid/x", "sha256": "abc"})
    with pytest.raises(NotFound, match="CivitAI has no such version 5"):
        client.downloads.start({"version_id": 5})


def test_search_goes_through_the_server_with_filters_and_a_cache(
    client: Client, fake_civitai: FakeCivitai
) -> None:
    fake_civitai.add(model_id=1, version_id=11, sha256="a" * 64, model_name="Zkx Girl")
    fake_civitai.add(
        model_id=2, version_id=21, sha256="b" * 64, model_name="Zkx Dream", type="Checkpoint"
    )
    fake_civitai.add(
        model_id=3, version_id=31, sha256="c" * 64, model_name="Zkx Pony", base_model="Pony"
    )

    loras = client.civitai.search("zkx", types=["lora"], base_models=["sdxl 1.0"])
    again = client.civitai.search("zkx", types=["lora"], base_models=["sdxl 1.0"])
    checkpoints = client.civitai.search("zkx", types=["Checkpoint"])

    assert [m.name for m in loras.items] == ["Zkx Girl"]
    assert again == loras
    assert [m.id for m in checkpoints.items] == [2]
    searches = fake_civitai.calls("GET", "/api/v1/models")
    assert len(searches) == 2  # the repeated search came from the server's cache
    assert "types=LORA" in searches[0].target
    assert "baseModels=SDXL+1.0" in searches[0].target
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in searches)


def test_search_pages_follow_the_cursor(client: Client, fake_civitai: FakeCivitai) -> None:
    for n in range(1, 4):
        fake_civitai.add(model_id=n, version_id=n * 10, sha256=f"{n}" * 64, model_name=f"M{n}")

    first = client.civitai.search(limit=2)
    second = client.civitai.search(limit=2, cursor=first.next_cursor)

    assert [m.id for m in first.items] == [1, 2]
    assert [m.id for m in second.items] == [3]
    assert second.next_cursor is None


def test_model_details_come_through_and_the_key_never_leaves_the_server(
    client: Client, running: RunningApp, fake_civitai: FakeCivitai
) -> None:
    fake_civitai.add(model_id=7, version_id=70, sha256="d" * 64, trained_words=["zkx"])

    model = client.civitai.model(7)
    version = client.civitai.version(70)
    raw = client._http.get("/api/civitai/models/7").text + client._http.get("/api/info").text

    assert [v.id for v in model.model_versions] == [70]
    assert model.model_versions[0].files[0].sha256 == "d" * 64
    assert version.trained_words == ["zkx"]
    assert KEY not in raw
    assert {"downloads", "civitai"} <= set(client.info().capabilities)
    with pytest.raises(NotFound, match="CivitAI has no such model 8"):
        client.civitai.model(8)


async def test_the_async_client_has_the_same_methods(
    running: RunningApp, fake_civitai: FakeCivitai, lora_bytes: bytes
) -> None:
    from tsr.client import AsyncClient

    publish(fake_civitai, 4107, lora_bytes)
    async with AsyncClient(running.url) as client:
        page = await client.civitai.search(types=["LORA"])
        model = await client.civitai.model(410)
        version = await client.civitai.version(4107)
        queued = await client.downloads.start({"version_id": 4107})
        for _ in range(int(FINISH_TIMEOUT / 0.02)):
            out = await client.downloads.get(queued.id)
            if out.state in FINISHED_DOWNLOAD_STATES:
                break
            await asyncio.sleep(0.02)
        listed = await client.downloads.list(["done"])
        with pytest.raises(Conflict):
            await client.downloads.cancel(queued.id)
    assert [m.id for m in page.items] == [410]
    assert (model.id, version.id) == (410, 4107)
    assert out.state == "done", out.error
    assert [d.id for d in listed] == [queued.id]
