"""Scanning real model files: incremental, moves, vanished and corrupt files, interruption."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import peewee
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.modelfiles import write_ckpt, write_pony_checkpoint, write_sd15_lora, write_sdxl_lora
from tsr.civitai import CivitaiClient
from tsr.db.files import get_override, resolve_file, set_override
from tsr.db.link import link_files
from tsr.db.queries import list_files
from tsr.db.scan import KnownDigest, scan_roots
from tsr.db.triggers import add_trigger, triggers_for
from tsr.errors import RootViolation
from tsr.schemas.models import FileFilter, ModelFile, ScanProgress, ScanResult


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scan(
    roots: dict[str, Path],
    *,
    workers: int | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    stop_event: threading.Event | None = None,
) -> ScanResult:
    """Scan every root the way `tsr db scan` does with this config."""
    model_roots = {kind: [folder] for kind, folder in roots.items()}
    return scan_roots(
        None, model_roots=model_roots, workers=workers, progress=progress, stop_event=stop_event
    )


def by_name() -> dict[str, ModelFile]:
    return {f.name: f for f in list_files(FileFilter()).items}


def test_first_scan_records_kind_family_and_hashes(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    pony = write_pony_checkpoint(roots["checkpoints"] / "ponyV6.safetensors")
    write_sdxl_lora(roots["loras"] / "styles" / "ink.safetensors")
    old = write_ckpt(roots["checkpoints"] / "old.ckpt")
    (roots["loras"] / "readme.txt").write_text("not a model")
    result = scan(roots)
    assert (result.seen, result.new, result.unchanged) == (3, 3, 0)
    files = by_name()
    assert set(files) == {"ponyV6.safetensors", "ink.safetensors", "old.ckpt"}
    assert files["ponyV6.safetensors"].sha256 == sha256(pony)
    assert files["ponyV6.safetensors"].autov2 == sha256(pony)[:10]
    assert (files["ponyV6.safetensors"].kind, files["ponyV6.safetensors"].family) == (
        "checkpoint",
        "pony",
    )
    assert "Pony Diffusion" in (files["ponyV6.safetensors"].family_signal or "")
    assert (files["ink.safetensors"].kind, files["ink.safetensors"].family) == ("lora", "sdxl")
    assert files["ink.safetensors"].root == str(roots["loras"])
    assert files["old.ckpt"].sha256 == sha256(old)


def test_rescan_of_unchanged_files_reads_nothing(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    write_sd15_lora(roots["loras"] / "a.safetensors")
    write_sd15_lora(roots["loras"] / "b.safetensors", metadata={})
    scan(roots)
    phases: list[str] = []
    again = scan(roots, progress=lambda step: phases.append(step.phase))
    assert (again.unchanged, again.new, again.changed, again.hashed_bytes) == (2, 0, 0, 0)
    assert "hash" not in phases


def test_changed_file_is_rehashed_and_loses_its_stale_link(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> None:
    lora = write_sd15_lora(roots["loras"] / "a.safetensors")
    fake_civitai.add(model_id=1, version_id=10, sha256=sha256(lora), trained_words=["aaa"])
    scan_roots([roots["loras"]])
    link_files(client)
    add_trigger(resolve_file("a").id, ["mine"])
    write_sd15_lora(lora, metadata={"ss_output_name": "retrained"})
    result = scan_roots([roots["loras"]])
    assert result.changed == 1
    changed = resolve_file("a")
    assert changed.sha256 == sha256(lora)
    assert changed.civitai is None
    words = {t.word: t.sources for t in triggers_for(changed.id).triggers}
    assert words == {"mine": ["user"]}


def test_renamed_file_keeps_link_triggers_and_notes(
    database: peewee.SqliteDatabase,
    roots: dict[str, Path],
    fake_civitai: FakeCivitai,
    client: CivitaiClient,
) -> None:
    lora = write_sd15_lora(roots["loras"] / "a.safetensors")
    fake_civitai.add(model_id=1, version_id=10, sha256=sha256(lora), trained_words=["aaa"])
    scan(roots)
    link_files(client)
    file_id = resolve_file("a").id
    add_trigger(file_id, ["mine"])
    set_override(file_id, notes="keep at 0.7")
    (roots["loras"] / "chars").mkdir()
    lora.rename(roots["loras"] / "chars" / "renamed.safetensors")
    result = scan(roots)
    assert (result.moved, result.new, result.vanished, result.hashed_bytes) == (1, 0, 0, 0)
    moved = resolve_file("renamed")
    assert moved.id == file_id
    assert moved.path == str(roots["loras"] / "chars" / "renamed.safetensors")
    assert moved.civitai is not None and moved.civitai.version_id == 10
    assert {t.word for t in triggers_for(file_id).triggers} >= {"aaa", "mine"}
    assert get_override(file_id).notes == "keep at 0.7"


def test_copied_then_deleted_file_is_recognised_by_its_hash(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    lora = write_sd15_lora(roots["loras"] / "a.safetensors")
    scan(roots)
    file_id = resolve_file("a").id
    add_trigger(file_id, ["mine"])
    # another root, a new inode: only the content says it is the same file
    shutil.copy(lora, roots["checkpoints"] / "misplaced.safetensors")
    lora.unlink()
    result = scan(roots)
    assert (result.moved, result.new) == (1, 0)
    assert resolve_file("misplaced").id == file_id
    assert [t.word for t in triggers_for(file_id).triggers if "user" in t.sources] == ["mine"]


def test_vanished_file_is_flagged_missing_not_deleted(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    lora = write_sd15_lora(roots["loras"] / "a.safetensors")
    kept = lora.read_bytes()
    scan(roots)
    lora.unlink()
    result = scan(roots)
    assert result.vanished == 1
    missing = list_files(FileFilter(missing=True)).items
    assert [f.name for f in missing] == ["a.safetensors"]
    assert list_files(FileFilter(missing=False)).items == []
    # it comes back (a remounted drive): same row, not missing any more
    lora.write_bytes(kept)
    result = scan(roots)
    assert resolve_file("a").missing is False
    assert resolve_file("a").id == missing[0].id


def test_corrupt_file_is_recorded_and_the_scan_goes_on(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    (roots["loras"] / "broken.safetensors").write_bytes(b"\xff" * 8 + b"{")
    (roots["checkpoints"] / "page.ckpt").write_text("<html>403 Forbidden</html>")
    write_sd15_lora(roots["loras"] / "good.safetensors")
    result = scan(roots)
    assert result.new == 3
    errors = {Path(issue.path).name: issue.error for issue in result.errors}
    assert set(errors) == {"broken.safetensors", "page.ckpt"}
    assert "web page" in errors["page.ckpt"]
    files = by_name()
    assert files["good.safetensors"].error is None
    assert files["broken.safetensors"].error == errors["broken.safetensors"]
    assert files["broken.safetensors"].kind == "lora"  # the root's kind: the header said nothing


def test_interrupted_scan_keeps_what_is_done_and_resumes(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    for n in range(12):
        write_sd15_lora(roots["loras"] / f"lora{n:02}.safetensors", metadata={"n": str(n)})

    def interrupt(step: ScanProgress) -> None:
        if step.phase == "hash" and step.files_done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(roots, workers=1, progress=interrupt)
    stored = list_files().items
    assert 3 <= len(stored) < 12
    assert all(f.sha256 and f.sha256 == sha256(Path(f.path)) for f in stored)
    resumed = scan(roots)
    assert (resumed.unchanged, resumed.new) == (len(stored), 12 - len(stored))
    assert len(list_files().items) == 12


def test_stop_event_ends_the_scan_early(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    for n in range(12):
        write_sd15_lora(roots["loras"] / f"lora{n:02}.safetensors", metadata={"n": str(n)})
    stop = threading.Event()

    def stop_after_two(step: ScanProgress) -> None:
        if step.files_done >= 2:
            stop.set()

    result = scan(roots, workers=1, progress=stop_after_two, stop_event=stop)
    assert result.interrupted
    assert 2 <= result.new < 12
    assert len(list_files().items) == result.new


def test_roots_outside_the_configured_ones_are_refused(
    database: peewee.SqliteDatabase, roots: dict[str, Path], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(RootViolation, match="is not inside a configured model root"):
        scan_roots([elsewhere], model_roots={k: [v] for k, v in roots.items()})


def test_symlinks_leading_outside_the_roots_are_not_followed(
    database: peewee.SqliteDatabase, roots: dict[str, Path], tmp_path: Path
) -> None:
    outside = write_sd15_lora(tmp_path / "private" / "secret.safetensors")
    os.symlink(outside, roots["loras"] / "link.safetensors")
    os.symlink(outside.parent, roots["loras"] / "linkdir")
    inside = write_sd15_lora(roots["checkpoints"] / "shared.safetensors", metadata={})
    os.symlink(inside, roots["loras"] / "shared-link.safetensors")
    scan(roots)
    assert sorted(by_name()) == ["shared-link.safetensors", "shared.safetensors"]


def test_one_file_can_be_scanned_alone(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    one = write_sd15_lora(roots["loras"] / "one.safetensors")
    write_sd15_lora(roots["loras"] / "other.safetensors", metadata={})
    model_roots = {kind: [folder] for kind, folder in roots.items()}
    result = scan_roots([one], model_roots=model_roots)
    assert (result.seen, result.new) == (1, 1)
    assert list(by_name()) == ["one.safetensors"]
    one.unlink()
    assert scan_roots([one], model_roots=model_roots).vanished == 1
    assert resolve_file("one").missing


def _known(path: Path, digest: str) -> KnownDigest:
    info = path.stat()
    return KnownDigest(info.st_size, info.st_mtime_ns, info.st_ino, digest)


def test_a_digest_known_already_spares_reading_the_file_again(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    # a download hashed the bytes as they arrived: its one-file scan need not read them again
    lora = write_sdxl_lora(roots["loras"] / "ink.safetensors")
    other = write_sd15_lora(roots["loras"] / "other.safetensors")
    model_roots = {kind: [folder] for kind, folder in roots.items()}

    result = scan_roots(None, model_roots=model_roots, known_digests=[_known(lora, sha256(lora))])

    assert result.new == 2
    assert result.hashed_bytes == other.stat().st_size  # only the file without a known digest
    files = by_name()
    assert files["ink.safetensors"].sha256 == sha256(lora)
    assert files["ink.safetensors"].family == "sdxl"  # the header was still read
    assert files["other.safetensors"].sha256 == sha256(other)


def test_a_file_changed_since_its_digest_was_known_is_hashed_for_real(
    database: peewee.SqliteDatabase, roots: dict[str, Path]
) -> None:
    lora = write_sdxl_lora(roots["loras"] / "ink.safetensors")
    stale = _known(lora, sha256(lora))
    with lora.open("ab") as handle:
        handle.write(b"\0" * 64)  # changed after it was hashed (padding after the tensors)
    model_roots = {kind: [folder] for kind, folder in roots.items()}

    result = scan_roots(None, model_roots=model_roots, known_digests=[stale])

    assert result.hashed_bytes == lora.stat().st_size
    assert by_name()["ink.safetensors"].sha256 == sha256(lora) != stale.sha256
