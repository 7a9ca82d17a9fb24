"""`tsr db ...` as a user types it, through its real entry point and the embedded server.

The command runs in this process (a new process per command costs a second of start-up); the
embedded `local` server it starts serves real HTTP on its Unix socket, and the fake CivitAI is a
real HTTP server. `tests/api_db/test_cli.py` runs `python -m tsr db` as separate processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_pony_checkpoint, write_sdxl_lora
from tsr.client.local import shutdown_embedded


@dataclass
class Run:
    """What one command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


Tsr = Callable[..., Run]


@pytest.fixture
def tsr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Tsr]:
    """Run `tsr ARGS` (with `env` set for that command only); the server stops after the test."""
    from tsr.cli import main

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        with monkeypatch.context() as patch:
            patch.setattr(sys, "argv", ["tsr", *args])
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    yield run
    shutdown_embedded()


@pytest.fixture
def library(tmp_path: Path) -> dict[str, Path]:
    """A config naming two model roots, with a LoRA and a checkpoint in them."""
    loras, checkpoints = tmp_path / "lib" / "loras", tmp_path / "lib" / "checkpoints"
    config = Path(os.environ["TSR_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[paths]\nloras = "{loras}"\ncheckpoints = "{checkpoints}"\n')
    return {
        "lora": write_sdxl_lora(loras / "zkx_girl_v2.safetensors"),
        "checkpoint": write_pony_checkpoint(checkpoints / "ponyV6.safetensors"),
    }


def test_scan_link_list_search_and_triggers(
    tsr: Tsr, library: dict[str, Path], fake_civitai: FakeCivitai
) -> None:
    fake_civitai.add(
        model_id=372465,
        version_id=410737,
        sha256=hashlib.sha256(library["lora"].read_bytes()).hexdigest(),
        model_name="Zkx Girl (character)",
        version_name="v2.0",
        base_model="Pony",
        trained_words=["zkx_girl", "red scarf, smile"],
    )
    env = {"CIVITAI_BASE_URL": fake_civitai.url, "CIVITAI_API_KEY": "k-123"}
    scanned = tsr("db", "scan")
    assert scanned.returncode == 0, scanned.stderr
    assert "2 new" in scanned.stdout

    linked = tsr("db", "link", env=env)
    assert linked.returncode == 0, linked.stderr
    assert "linked 1 of 2 unlinked files" in linked.stdout
    assert "Zkx Girl (character)" in linked.stdout
    assert all("k-123" not in call.target for call in fake_civitai.requests)

    listed = json.loads(tsr("db", "list", "--json").stdout)
    assert {"id", "path", "sha256", "kind", "family", "missing", "civitai"} <= set(listed[0])
    by_name = {Path(item["path"]).name: item for item in listed}
    assert by_name["ponyV6.safetensors"]["civitai"] is None
    assert by_name["zkx_girl_v2.safetensors"]["civitai"] == {
        "model_id": 372465,
        "version_id": 410737,
        "model_name": "Zkx Girl (character)",
        "version_name": "v2.0",
        "base_model": "Pony",
        "model_type": "LORA",
    }
    assert by_name["zkx_girl_v2.safetensors"]["family"] == "pony"

    found = tsr("db", "search", "zkx")
    assert found.returncode == 0 and "zkx_girl_v2.safetensors" in found.stdout
    assert "ponyV6" not in found.stdout

    added = tsr("db", "triggers", "add", "zkx_girl_v2", "glowing eyes")
    assert added.returncode == 0, added.stderr
    words = json.loads(tsr("db", "triggers", "zkx_girl_v2", "--json").stdout)["triggers"]
    assert [(w["word"], w["sources"]) for w in words][:2] == [
        ("zkx_girl", ["civitai"]),
        ("red scarf, smile", ["civitai"]),
    ]
    assert ("glowing eyes", ["user"]) in [(w["word"], w["sources"]) for w in words]
    removed = tsr("db", "triggers", "remove", "zkx_girl_v2", "glowing eyes")
    assert "glowing eyes" not in removed.stdout

    stats = json.loads(tsr("db", "stats", "--json").stdout)
    assert (stats["present"], stats["linked"]) == (2, 1)


def test_civitai_failures_are_one_line(
    tsr: Tsr, library: dict[str, Path], fake_civitai: FakeCivitai
) -> None:
    assert tsr("db", "scan").returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
    offline = tsr("db", "link", env={"CIVITAI_BASE_URL": closed})
    assert offline.returncode == 1
    assert offline.stderr == f"tsr: cannot reach CivitAI at {closed}: connection refused\n"

    fake_civitai.api_key = "the-right-key"
    refused = tsr("db", "link", env={"CIVITAI_BASE_URL": fake_civitai.url, "CIVITAI_API_KEY": "x"})
    assert refused.returncode == 1
    assert refused.stderr.startswith("tsr: CivitAI refused the API key (HTTP 401)")
    assert refused.stderr.count("\n") == 1
    # the scan data is still all there
    assert len(json.loads(tsr("db", "list", "--json").stdout)) == 2


def test_scan_refuses_folders_outside_the_roots(
    tsr: Tsr, library: dict[str, Path], tmp_path: Path
) -> None:
    result = tsr("db", "scan", str(tmp_path))
    assert result.returncode == 1
    assert "is not inside a configured model root" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(tsr("db", "tasks", "--json").stdout) == []


def test_relative_paths_are_the_users_and_tasks_are_listed(
    tsr: Tsr, library: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(library["lora"].parent.parent)
    scanned = tsr("db", "scan", "loras", "--json")
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(scanned.stdout)["roots"] == [str(library["lora"].parent)]
    shown = json.loads(tsr("db", "show", "./loras/zkx_girl_v2.safetensors", "--json").stdout)
    assert shown["path"] == str(library["lora"])
    [task] = json.loads(tsr("db", "tasks", "--json").stdout)
    assert (task["kind"], task["state"], task["scan"]["new"]) == ("scan", "done", 1)
    listed = tsr("db", "tasks")
    assert listed.stdout.splitlines()[1].split()[:4] == [str(task["id"]), "scan", "done", "1/1"]
    cancelled = tsr("db", "cancel", str(task["id"]))
    assert cancelled.stdout == f"scan task #{task['id']} is done\n"
    assert tsr("db", "cancel", "99").stderr == (
        "tsr: there is no task #99 on this server (tasks last until it stops)\n"
    )


def test_set_and_show_a_file(tsr: Tsr, library: dict[str, Path]) -> None:
    assert tsr("db", "scan").returncode == 0
    changed = tsr("db", "set", "ponyV6", "--family", "illustrious", "--notes", "for portraits")
    assert changed.returncode == 0, changed.stderr
    assert "family illustrious (set by the user)" in changed.stdout
    shown = json.loads(tsr("db", "show", "ponyV6", "--json").stdout)
    assert shown["override"] == {"family": "illustrious", "hidden": False, "notes": "for portraits"}
    unknown = tsr("db", "show", "nothing-like-it")
    assert unknown.stderr == (
        "tsr: no model file is named 'nothing-like-it'; try `tsr db search nothing-like-it`\n"
    )
