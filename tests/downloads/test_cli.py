"""`tsr dl`, `tsr downloads`, `tsr search`, `tsr get`: the real CLI against local and a remote."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import run_cli, write_config
from tests.downloads.test_manager import publish, sha
from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_sdxl_lora
from tests.server.running import serve_app
from tsr.client.local import shutdown_embedded
from tsr.config import load_config

Cli = tuple[pytest.CaptureFixture[str], pytest.MonkeyPatch]
SET_KEY = "set it with `tsr config set civitai.api_key KEY`"


@pytest.fixture(autouse=True)
def stop_embedded_servers() -> Iterator[None]:
    """The local server a command started in this process stops after each test."""
    yield
    shutdown_embedded()


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_civitai: FakeCivitai,
) -> Cli:
    """Run the CLI with a config pointing CivitAI at the fake."""
    write_config(
        tmp_path / "config" / "config.toml", f'[civitai]\nbase_url = "{fake_civitai.url}"\n'
    )
    return capsys, monkeypatch


@pytest.fixture(scope="module")
def lora_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real SDXL LoRA."""
    return write_sdxl_lora(tmp_path_factory.mktemp("lora") / "l.safetensors").read_bytes()


def test_dl_a_version_installs_it(
    cli: Cli, fake_civitai: FakeCivitai, isolated_home: Path, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes)

    code, out, err = run_cli(*cli, "dl", "4107")

    target = isolated_home / "models" / "loras" / "zkx_girl_v2.safetensors"
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"installed {re.escape(str(target))} \(\d+ KiB, SHA-256 verified\)\n", out)
    assert target.read_bytes() == lora_bytes

    code, out, _ = run_cli(*cli, "dl", f"{fake_civitai.root}/models/410", "--json")
    again = json.loads(out)
    assert (code, again["state"], again["already_present"]) == (0, "done", True)
    assert again["path"] == str(target)


def test_dl_a_gated_file_says_how_to_set_the_key(
    cli: Cli, fake_civitai: FakeCivitai, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes)
    fake_civitai.gated.add(4107)

    code, out, err = run_cli(*cli, "dl", "--hash", sha(lora_bytes))

    assert code == 1
    assert out == ""
    assert err == (f"tsr: download #1 failed: this file needs a CivitAI API key: {SET_KEY}\n")


def test_dl_without_a_target_is_a_usage_error(cli: Cli) -> None:
    code, _, err = run_cli(*cli, "dl")
    assert code == 2
    assert "give one of: a version id, a URL, --hash H or --model ID" in err
    code, _, err = run_cli(*cli, "dl", "not-a-thing")
    assert code == 2
    assert "is neither a CivitAI version id nor an http(s) URL" in err


def test_dl_no_wait_then_downloads_list_and_show(
    cli: Cli, fake_civitai: FakeCivitai, lora_bytes: bytes, isolated_home: Path
) -> None:
    publish(fake_civitai, 4107, lora_bytes)

    code, out, _ = run_cli(*cli, "dl", "--model", "410", "--no-wait", "--json")
    queued = json.loads(out)
    assert (code, queued["state"], queued["version_id"]) == (0, "queued", 4107)
    # the same process still runs the local server: wait for it through the CLI
    code, out, _ = run_cli(*cli, "dl", "4107", "--json")
    assert json.loads(out)["id"] == queued["id"]

    code, out, _ = run_cli(*cli, "downloads", "list", "--json")
    assert [d["state"] for d in json.loads(out)] == ["done"]
    code, out, _ = run_cli(*cli, "downloads", "list")
    assert out.splitlines()[0].split() == ["ID", "STATE", "DONE", "SIZE", "RATE", "FILE", "ERROR"]
    row = out.splitlines()[1].split()
    assert row[:3] == [str(queued["id"]), "done", "100%"]
    assert row[-1].endswith("zkx_girl_v2.safetensors")
    code, out, _ = run_cli(*cli, "downloads", "show", str(queued["id"]))
    assert code == 0
    assert f"download:    #{queued['id']} done" in out
    assert f"sha256:      {sha(lora_bytes)}" in out
    code, _, err = run_cli(*cli, "downloads", "cancel", str(queued["id"]))
    assert (code, err) == (1, f"tsr: download #{queued['id']} is already done\n")


def test_search_with_filters_prints_a_table_and_json(cli: Cli, fake_civitai: FakeCivitai) -> None:
    fake_civitai.add(model_id=1, version_id=11, sha256="a" * 64, model_name="Zkx Girl")
    fake_civitai.add(
        model_id=2, version_id=21, sha256="b" * 64, model_name="Zkx Dream", type="Checkpoint"
    )

    code, out, _ = run_cli(*cli, "search", "zkx", "--type", "lora", "--base-model", "sdxl 1.0")
    assert code == 0
    assert out.splitlines() == [
        "MODEL  TYPE  NAME      BASE MODELS  NEWEST VERSION",
        "1      LORA  Zkx Girl  SDXL 1.0     11",
    ]
    code, out, _ = run_cli(*cli, "search", "zkx", "-t", "checkpoint", "--json")
    page = json.loads(out)
    assert [item["name"] for item in page["items"]] == ["Zkx Dream"]
    assert page["items"][0]["modelVersions"][0]["baseModel"] == "SDXL 1.0"


def test_get_shows_versions_files_and_hashes(cli: Cli, fake_civitai: FakeCivitai) -> None:
    fake_civitai.add(model_id=7, version_id=70, sha256="d" * 64, trained_words=["zkx girl"])
    fake_civitai.add_version(7, 71, name="v2.0", base_model="Pony")

    code, out, _ = run_cli(*cli, "get", "7")
    assert code == 0
    assert "model:      7 Some Model (LORA)" in out
    assert "70       v1.0  SDXL 1.0    model.safetensors" in out
    assert "DDDDDDDDDD" in out
    assert "zkx girl" in out
    code, out, _ = run_cli(*cli, "get", "7", "--base-model", "pony", "--json")
    assert [v["id"] for v in json.loads(out)["modelVersions"]] == [71]
    code, _, err = run_cli(*cli, "get", "8")
    assert (code, err) == (1, "tsr: CivitAI has no such model 8\n")


def test_the_verbs_reach_a_named_remote(
    cli: Cli, fake_civitai: FakeCivitai, tmp_path: Path, lora_bytes: bytes
) -> None:
    publish(fake_civitai, 4107, lora_bytes)
    other_home = tmp_path / "gpu-box"
    config = load_config().model_copy(update={"home": other_home})
    with serve_app(config) as remote:
        write_config(
            tmp_path / "config" / "config.toml",
            f'[civitai]\nbase_url = "{fake_civitai.url}"\n[remotes.gpu]\nurl = "{remote.url}"\n',
        )
        code, out, _ = run_cli(*cli, "dl", "4107", "--remote", "gpu", "--json")
        assert code == 0
        assert json.loads(out)["path"] == str(
            other_home / "models" / "loras" / "zkx_girl_v2.safetensors"
        )
        code, out, _ = run_cli(*cli, "search", "--remote", "gpu", "--json")
        assert [item["id"] for item in json.loads(out)["items"]] == [410]
