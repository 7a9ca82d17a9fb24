"""Linking files to CivitAI by hash, against the fake: bulk, cache, misses, families, faults."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_pony_lora, write_sd15_lora, write_sdxl_lora
from tsr.civitai import CivitaiClient
from tsr.db.files import resolve_file, set_override
from tsr.db.link import link_files
from tsr.db.queries import list_files
from tsr.db.scan import scan_roots
from tsr.db.triggers import triggers_for
from tsr.errors import AuthRejected, RemoteUnreachable
from tsr.schemas.models import FileFilter, LinkProgress


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bulk_calls(fake: FakeCivitai) -> list[list[str]]:
    return [json.loads(c.body) for c in fake.calls("POST", "/api/v1/model-versions/by-hash")]


@pytest.fixture
def loras(database: peewee.SqliteDatabase, roots: dict[str, Path]) -> dict[str, Path]:
    """Three scanned LoRAs: an SDXL one CivitAI calls Pony, an SD 1.5 one, an unknown one."""
    made = {
        "zkx": write_sdxl_lora(roots["loras"] / "zkx_girl_v2.safetensors"),
        "ink": write_sd15_lora(roots["loras"] / "ink.safetensors"),
        "mine": write_sd15_lora(roots["loras"] / "homemade.safetensors", metadata={}),
    }
    scan_roots([roots["loras"]])
    return made


def _publish(fake: FakeCivitai, loras: dict[str, Path]) -> None:
    fake.add(
        model_id=372465,
        version_id=410737,
        sha256=sha256(loras["zkx"]).upper(),
        model_name="Zkx Girl (character)",
        version_name="v2.0",
        base_model="Pony",
        trained_words=["zkx_girl", "red scarf, smile"],
        tags=["character"],
    )
    fake.add(
        model_id=5,
        version_id=50,
        sha256=sha256(loras["ink"]),
        model_name="Ink Style",
        base_model="SD 1.5",
        trained_words=["ink style"],
    )


def test_one_bulk_call_links_what_civitai_knows(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, loras)
    steps: list[LinkProgress] = []
    result = link_files(client, progress=steps.append)
    assert result.checked == 3
    assert sorted(entry.civitai.model_name for entry in result.linked) == [
        "Ink Style",
        "Zkx Girl (character)",
    ]
    assert result.misses == 1
    assert len(fake_civitai.requests) == 1 == result.requests
    assert sorted(bulk_calls(fake_civitai)[0]) == sorted(sha256(p) for p in loras.values())
    assert steps[-1].files_done == 3 and steps[-1].linked == 2
    zkx = resolve_file("zkx_girl_v2")
    assert zkx.civitai is not None
    assert (zkx.civitai.model_id, zkx.civitai.version_id, zkx.civitai.base_model) == (
        372465,
        410737,
        "Pony",
    )
    # the header says SDXL; CivitAI's baseModel says Pony, and wins
    assert (zkx.family, zkx.family_signal) == ("pony", "CivitAI baseModel 'Pony'")


def test_misses_are_remembered_until_asked_again(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, loras)
    link_files(client)
    again = link_files(client)
    assert (again.checked, again.skipped_known_misses, again.requests) == (1, 1, 0)
    fake_civitai.add(model_id=9, version_id=90, sha256=sha256(loras["mine"]), model_name="Mine")
    retried = link_files(client, retry_misses=True)
    assert [entry.civitai.model_name for entry in retried.linked] == ["Mine"]
    assert retried.requests == 1


def test_a_copy_of_a_linked_file_links_from_the_cache(
    loras: dict[str, Path],
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> None:
    _publish(fake_civitai, loras)
    link_files(client)
    calls = len(fake_civitai.requests)
    (roots["checkpoints"] / "copy.safetensors").write_bytes(loras["ink"].read_bytes())
    scan_roots([roots["checkpoints"]])
    result = link_files(client)
    assert [(e.civitai.model_name, e.via) for e in result.linked] == [("Ink Style", "cache")]
    assert len(fake_civitai.requests) == calls


def test_compound_trained_words_are_split_and_kept(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, loras)
    link_files(client)
    words = triggers_for(resolve_file("zkx_girl_v2").id).triggers
    civitai = [(w.word, w.part_of) for w in words if "civitai" in w.sources]
    assert civitai == [
        ("zkx_girl", None),
        ("red scarf, smile", None),
        ("red scarf", "red scarf, smile"),
        ("smile", "red scarf, smile"),
    ]


def test_user_family_beats_civitai(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, loras)
    set_override(resolve_file("zkx_girl_v2").id, family="illustrious")
    link_files(client)
    zkx = resolve_file("zkx_girl_v2")
    assert (zkx.family, zkx.family_signal) == ("illustrious", "set by the user")
    set_override(zkx.id, clear_family=True)
    assert resolve_file("zkx_girl_v2").family == "pony"


def test_more_than_100_files_go_in_calls_of_100(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> None:
    for n in range(150):
        path = roots["loras"] / f"l{n:03}.safetensors"
        path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}" + str(n).encode())
    scan_roots([roots["loras"]])
    fake_civitai.add(model_id=1, version_id=11, sha256=sha256(roots["loras"] / "l149.safetensors"))
    result = link_files(client)
    assert [len(call) for call in bulk_calls(fake_civitai)] == [100, 50]
    assert (len(result.linked), result.misses) == (1, 149)


def test_bulk_refused_falls_back_to_single_lookups(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _publish(fake_civitai, loras)
    fake_civitai.fail_next(400)
    result = link_files(client)
    assert result.used_single_lookups
    assert len(result.linked) == 2
    singles = fake_civitai.calls("GET", "/api/v1/model-versions/by-hash/")
    assert len(singles) == 3


def test_rate_limit_and_server_errors_are_retried(
    loras: dict[str, Path], fake_civitai: FakeCivitai, client: CivitaiClient, waits: list[float]
) -> None:
    _publish(fake_civitai, loras)
    fake_civitai.fail_next(429, retry_after="7")
    fake_civitai.fail_next(502)
    result = link_files(client)
    assert len(result.linked) == 2
    assert waits == [7.0, 1.0]
    assert result.requests == 3


def _scan_rows() -> list[tuple[object, ...]]:
    return [(f.path, f.sha256, f.kind, f.family, f.missing) for f in list_files().items]


def test_offline_leaves_the_scan_data_alone(loras: dict[str, Path]) -> None:
    before = _scan_rows()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    offline = CivitaiClient(f"http://127.0.0.1:{port}/api/v1")
    with offline, pytest.raises(RemoteUnreachable, match="cannot reach CivitAI at"):
        link_files(offline)
    assert _scan_rows() == before
    assert list_files(FileFilter(linked=True)).items == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_leaves_the_scan_data_alone(
    status: int, loras: dict[str, Path], fake_civitai: FakeCivitai
) -> None:
    _publish(fake_civitai, loras)
    before = _scan_rows()
    fake_civitai.fail_next(status)
    keyed = CivitaiClient(fake_civitai.url, "expired-key")
    with keyed, pytest.raises(AuthRejected, match=f"HTTP {status}"):
        link_files(keyed)
    assert _scan_rows() == before
    # nothing was remembered as a miss: the next run asks again
    assert len(link_files(CivitaiClient(fake_civitai.url)).linked) == 2


def test_pony_lora_without_civitai_keeps_its_header_family(
    database: peewee.SqliteDatabase, roots: dict[str, Path], client: CivitaiClient
) -> None:
    write_pony_lora(roots["loras"] / "pony_style.safetensors")
    scan_roots([roots["loras"]])
    link_files(client)
    assert resolve_file("pony_style").family == "pony"
