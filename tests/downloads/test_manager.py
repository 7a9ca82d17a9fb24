"""The download queue end to end (no HTTP API): CivitAI lookups, faults, install, scan, link."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.downloads.conftest import EventLog, wait_finished
from tests.fakes.civitai import FakeCivitai
from tests.fakes.file_server import FileServer, random_bytes
from tests.modelfiles import write_sd15_checkpoint, write_sdxl_lora
from tsr.config import Config
from tsr.db import db
from tsr.db.files import get_file
from tsr.downloads import CivitaiCatalog, DownloadManager
from tsr.errors import AuthRejected, BadRequest, Conflict, NotFound, RootViolation
from tsr.schemas.downloads import DownloadRequest


@pytest.fixture(scope="module")
def lora_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real SDXL LoRA (about 500 KB), as CivitAI would serve it."""
    return write_sdxl_lora(tmp_path_factory.mktemp("lora") / "l.safetensors").read_bytes()


def publish(
    fake: FakeCivitai,
    version_id: int,
    content: bytes,
    *,
    name: str = "zkx_girl_v2.safetensors",
    type: str = "LORA",
    sha256: str | None = None,
) -> dict[str, object]:
    """Put a model with one version and one downloadable file on the fake CivitAI."""
    model_id = version_id // 10
    fake.add_model(model_id, f"Model {model_id}", type=type)
    fake.add_version(model_id, version_id, trained_words=["zkx girl"])
    return fake.add_file(
        version_id, version_id * 10, name, content=content, sha256=sha256 or sha(content)
    )


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def model_files(root: Path) -> list[str]:
    """The visible files a model root holds (not the .tsr-partial folder)."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def loras(config: Config) -> Path:
    return config.model_roots()["loras"][0]


def test_a_civitai_version_is_fetched_verified_installed_scanned_and_linked(
    manager: DownloadManager,
    fake_civitai: FakeCivitai,
    config: Config,
    events: EventLog,
    lora_bytes: bytes,
) -> None:
    publish(fake_civitai, 4107, lora_bytes)

    queued = manager.submit(DownloadRequest(version_id=4107))
    done = wait_finished(manager, queued.id)

    assert done.state == "done", done.error
    target = loras(config) / "zkx_girl_v2.safetensors"
    assert done.path == str(target)
    assert target.read_bytes() == lora_bytes
    assert (done.model_name, done.model_type, done.kind) == ("Model 410", "LORA", "loras")
    assert (done.bytes_done, done.bytes_total) == (len(lora_bytes), len(lora_bytes))
    assert not list((loras(config) / ".tsr-partial").iterdir())
    with db.connection_context():
        row = get_file(done.file_id or 0)
    assert row.path == str(target)
    assert row.civitai is not None and row.civitai.version_id == 4107
    kinds = events.kinds(queued.id)
    assert kinds[:2] == ["queued", "started"]
    assert kinds[-2:] == ["verifying", "finished"]
    # the download went through CivitAI's redirect to its storage
    paths = [r.path for r in fake_civitai.requests]
    assert "/api/download/models/4107" in paths
    assert any(p.startswith("/storage/4107/") for p in paths)


def test_types_go_to_their_roots_and_other_types_are_refused(
    manager: DownloadManager, fake_civitai: FakeCivitai, config: Config, tmp_path: Path
) -> None:
    checkpoint = write_sd15_checkpoint(tmp_path / "c.safetensors").read_bytes()
    publish(fake_civitai, 5010, checkpoint, name="dream.safetensors", type="Checkpoint")
    publish(fake_civitai, 6010, b"cn", name="cn.safetensors", type="Controlnet")

    out = wait_finished(manager, manager.submit(DownloadRequest(model_id=501)).id)
    assert out.path == str(config.model_roots()["checkpoints"][0] / "dream.safetensors")

    with pytest.raises(BadRequest, match="Controlnet model; tsr installs only checkpoints"):
        manager.submit(DownloadRequest(version_id=6010))
    assert manager.list() == [out]


def test_a_hash_mismatch_is_quarantined_never_installed(
    manager: DownloadManager, fake_civitai: FakeCivitai, config: Config, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes, sha256="ab" * 32)

    out = wait_finished(manager, manager.submit(DownloadRequest(version_id=4107)).id)

    assert out.state == "failed"
    assert out.error is not None
    assert "is not the file CivitAI describes" in out.error
    assert "it was not installed" in out.error
    assert out.quarantined is not None
    kept = Path(out.quarantined)
    assert kept.parent == config.home / "quarantine"
    assert kept.read_bytes() == lora_bytes
    assert model_files(loras(config)) == []


def test_a_gated_file_asks_for_a_civitai_api_key(
    manager: DownloadManager, fake_civitai: FakeCivitai, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes)
    fake_civitai.gated.add(4107)

    # the by-hash lookup answers; the download itself is refused without a key
    out = wait_finished(manager, manager.submit(DownloadRequest(hash=sha(lora_bytes)[:10])).id)

    assert out.state == "failed"
    assert out.error == (
        "this file needs a CivitAI API key: set it with `tsr config set civitai.api_key KEY`"
    )


def test_a_key_set_in_the_config_file_is_used_without_a_restart(
    fake_civitai: FakeCivitai, isolated_home: Path, lora_bytes: bytes, events: EventLog
) -> None:
    from tsr.config import ConfigFile, load_config
    from tsr.db import init_database

    publish(fake_civitai, 4107, lora_bytes)
    fake_civitai.gated.add(4107)
    fake_civitai.api_key = "good-key"
    init_database(isolated_home / "tsr.db")
    editor = ConfigFile()
    editor.set("civitai.base_url", fake_civitai.url)
    editor.save()
    config = load_config().model_copy(update={"home": isolated_home})
    catalog = CivitaiCatalog(config)
    manager = DownloadManager(config, catalog, events, retry_base=0.01)
    manager.start()
    try:
        first = wait_finished(manager, manager.submit(DownloadRequest(hash=sha(lora_bytes))).id)
        assert first.state == "failed"
        editor.set("civitai.api_key", "good-key")
        editor.save()
        again = manager.submit(DownloadRequest(hash=sha(lora_bytes)))
        assert again.id == first.id  # the failed download is queued again
        assert wait_finished(manager, again.id).state == "done"
    finally:
        manager.stop()
        catalog.close()
    download = fake_civitai.calls("GET", "/api/download/")[-1]
    assert download.headers["Authorization"] == "Bearer good-key"
    # the key went to CivitAI only, never to its storage host (another origin would not see it)
    assert all("good-key" not in r.target for r in fake_civitai.requests)


def test_cut_connections_resume_and_install_the_right_file(
    manager: DownloadManager,
    fake_civitai: FakeCivitai,
    file_server: FileServer,
    config: Config,
    lora_bytes: bytes,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.cut_after(70_000, 150_000, 1)

    out = wait_finished(manager, manager.submit(DownloadRequest(version_id=4107)).id)

    assert out.state == "done", out.error
    assert (loras(config) / "zkx_girl_v2.safetensors").read_bytes() == lora_bytes
    assert file_server.ranges() == [None, "bytes=70000-", "bytes=220000-", "bytes=220001-"]


def test_a_server_ignoring_range_still_installs_the_exact_file(
    manager: DownloadManager,
    fake_civitai: FakeCivitai,
    config: Config,
    lora_bytes: bytes,
    file_server: FileServer,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.ignore_range = True
    file_server.cut_after(200_000)

    out = wait_finished(manager, manager.submit(DownloadRequest(version_id=4107)).id)

    assert out.state == "done", out.error
    assert (loras(config) / "zkx_girl_v2.safetensors").read_bytes() == lora_bytes


def test_a_download_survives_a_restart_and_resumes_from_its_part(
    fake_civitai: FakeCivitai,
    file_server: FileServer,
    config: Config,
    events: EventLog,
    lora_bytes: bytes,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.02
    catalog = CivitaiCatalog(config)
    first = DownloadManager(config, catalog, events)
    first.start()
    download_id = first.submit(DownloadRequest(version_id=4107)).id
    part = loras(config) / ".tsr-partial" / f"{download_id}.part"
    deadline = time.monotonic() + 10
    while (not part.exists() or part.stat().st_size < 100_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    assert first.get(download_id).state == "queued"
    kept = part.stat().st_size
    assert 0 < kept < len(lora_bytes)

    file_server.delay = 0
    second = DownloadManager(config, catalog, events)
    second.start()
    try:
        out = wait_finished(second, download_id)
    finally:
        second.stop()
        catalog.close()
    assert out.state == "done", out.error
    assert (loras(config) / "zkx_girl_v2.safetensors").read_bytes() == lora_bytes
    assert file_server.ranges()[-1] == f"bytes={kept}-"


def test_cancel_stops_the_download_and_drops_its_part(
    manager: DownloadManager,
    fake_civitai: FakeCivitai,
    file_server: FileServer,
    config: Config,
    lora_bytes: bytes,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.05
    download_id = manager.submit(DownloadRequest(version_id=4107)).id
    deadline = time.monotonic() + 10
    while manager.get(download_id).bytes_done == 0 and time.monotonic() < deadline:
        time.sleep(0.01)

    out = manager.cancel(download_id)

    assert out.state == "cancelled"
    assert not (loras(config) / ".tsr-partial" / f"{download_id}.part").exists()
    assert model_files(loras(config)) == []
    with pytest.raises(Conflict, match="already cancelled"):
        manager.cancel(download_id)


def test_asking_twice_for_a_running_download_gives_the_same_one(
    manager: DownloadManager,
    fake_civitai: FakeCivitai,
    file_server: FileServer,
    lora_bytes: bytes,
) -> None:
    entry = publish(fake_civitai, 4107, lora_bytes)
    entry["downloadUrl"] = file_server.add("zkx_girl_v2.safetensors", lora_bytes)
    file_server.delay = 0.01

    first = manager.submit(DownloadRequest(version_id=4107))
    second = manager.submit(DownloadRequest(url=f"{fake_civitai.root}/models/410"))

    assert second.id == first.id
    assert wait_finished(manager, first.id).state == "done"


def test_a_file_already_on_disk_is_not_fetched_again(
    manager: DownloadManager, fake_civitai: FakeCivitai, config: Config, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes)
    first = wait_finished(manager, manager.submit(DownloadRequest(version_id=4107)).id)
    fetched = len(fake_civitai.calls("GET", "/storage/"))

    again = wait_finished(manager, manager.submit(DownloadRequest(version_id=4107)).id)

    assert again.id != first.id
    assert (again.state, again.already_present, again.path) == ("done", True, first.path)
    assert len(fake_civitai.calls("GET", "/storage/")) == fetched


def test_a_hostile_file_name_lands_safely_inside_the_root(
    manager: DownloadManager, file_server: FileServer, config: Config
) -> None:
    content = random_bytes(1000)
    url = file_server.add("x.safetensors", content)
    file_server.disposition = 'attachment; filename="../../evil/..hidden.safetensors"'

    out = wait_finished(manager, manager.submit(DownloadRequest(url=url, kind="loras")).id)

    assert out.state == "done", out.error
    assert out.path == str(loras(config) / "hidden.safetensors")
    assert not (config.home / "evil").exists()


def test_an_existing_different_file_is_never_overwritten(
    manager: DownloadManager, file_server: FileServer, config: Config
) -> None:
    content = random_bytes(1000)
    url = file_server.add("model.safetensors", content)
    loras(config).mkdir(parents=True)
    (loras(config) / "model.safetensors").write_bytes(b"the user's own file")

    out = wait_finished(manager, manager.submit(DownloadRequest(url=url, kind="loras")).id)

    assert out.path == str(loras(config) / "model-2.safetensors")
    assert (loras(config) / "model.safetensors").read_bytes() == b"the user's own file"
    assert (loras(config) / "model-2.safetensors").read_bytes() == content
    assert out.sha256 == sha(content)  # computed, since the URL came without one


def test_a_plain_url_needs_a_kind_and_its_given_hash_is_checked(
    manager: DownloadManager, file_server: FileServer, config: Config
) -> None:
    url = file_server.add("model.safetensors", random_bytes(1000))

    with pytest.raises(BadRequest, match="cannot tell what kind of model that URL holds"):
        manager.submit(DownloadRequest(url=url))
    out = wait_finished(
        manager, manager.submit(DownloadRequest(url=url, kind="vae", sha256="cd" * 32)).id
    )
    assert out.state == "failed"
    assert out.quarantined is not None
    assert not config.model_roots()["vae"][0].exists() or not model_files(
        config.model_roots()["vae"][0]
    )


def test_the_destination_must_be_a_configured_root(
    manager: DownloadManager, file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.add("model.safetensors", b"x")

    with pytest.raises(RootViolation, match="is not a configured loras folder"):
        manager.submit(DownloadRequest(url=url, kind="loras", root=str(tmp_path / "elsewhere")))


def test_unknown_civitai_things_and_bad_keys_are_named(
    manager: DownloadManager, fake_civitai: FakeCivitai, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFound, match="CivitAI has no such version 999"):
        manager.submit(DownloadRequest(version_id=999))
    with pytest.raises(NotFound, match="CivitAI knows no file with the hash"):
        manager.submit(DownloadRequest(hash="0123456789"))
    fake_civitai.api_key = "good-key"
    monkeypatch.setenv("CIVITAI_API_KEY", "bad-key")
    with pytest.raises(AuthRejected, match=r"CivitAI refused the API key \(HTTP 401\)"):
        manager.submit(DownloadRequest(version_id=999))
    assert manager.list() == []


@pytest.fixture
def tiny_loras(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs as the loras root (skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny-loras"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_and_the_download_resumes_once_there_is_room(
    tiny_loras: Path, file_server: FileServer, isolated_home: Path, fake_civitai: FakeCivitai
) -> None:
    from tsr.db import init_database

    init_database(isolated_home / "tsr.db")
    config = Config.model_validate(
        {"paths": {"loras": [str(tiny_loras)]}, "civitai": {"base_url": fake_civitai.url}}
    ).model_copy(update={"home": isolated_home})
    content = random_bytes(1_500_000)
    url = file_server.add("big.safetensors", content)
    file_server.no_length = True  # the disk fills up while writing
    catalog = CivitaiCatalog(config)
    manager = DownloadManager(config, catalog, retry_base=0.01)
    manager.start()
    try:
        out = wait_finished(manager, manager.submit(DownloadRequest(url=url, kind="loras")).id)
        assert out.state == "failed"
        assert out.error is not None and out.error.startswith(f"the disk holding {tiny_loras}")
        part = tiny_loras / ".tsr-partial" / f"{out.id}.part"
        kept = part.stat().st_size
        assert kept > 0

        subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_loras)], check=True)
        file_server.no_length = False
        again = manager.submit(DownloadRequest(url=url, kind="loras"))
        assert again.id == out.id
        done = wait_finished(manager, out.id)
    finally:
        manager.stop()
        catalog.close()
    assert done.state == "done", done.error
    assert (tiny_loras / "big.safetensors").read_bytes() == content
    assert file_server.ranges()[-1] == f"bytes={kept}-"


def test_a_partial_folder_leading_out_of_the_root_is_refused(
    manager: DownloadManager, file_server: FileServer, config: Config, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    loras(config).mkdir(parents=True)
    (loras(config) / ".tsr-partial").symlink_to(outside)
    url = file_server.add("model.safetensors", random_bytes(1000))

    out = wait_finished(manager, manager.submit(DownloadRequest(url=url, kind="loras")).id)

    assert out.state == "failed"
    assert out.error is not None and "leads out of the model root" in out.error
    assert list(outside.iterdir()) == []
    assert file_server.requests == []
