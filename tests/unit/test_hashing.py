"""sha256_file agrees with hashlib on real files; short forms follow A1111 and CivitAI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests import modelfiles
from tsr.errors import ModelFileError
from tsr.hashing import autov2, lora_short_hash, same_hash, sha256_file

CHUNK = 4096


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17])
def test_equals_hashlib_around_chunk_boundaries(tmp_path: Path, size: int) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(size))
    assert sha256_file(path, chunk_size=CHUNK) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_equals_hashlib_on_a_model_file_with_default_chunks(tmp_path: Path) -> None:
    path = modelfiles.write_sdxl_checkpoint(tmp_path / "sdxl.safetensors")
    with path.open("rb") as stream:
        expected = hashlib.file_digest(stream, "sha256").hexdigest()
    assert sha256_file(path) == expected
    # a few MiB of random data spans several default-size chunks
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_progress_counts_up_to_the_size(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(10 * CHUNK + 3))
    seen: list[int] = []
    sha256_file(path, progress=seen.append, chunk_size=CHUNK)
    assert seen == sorted(seen) and len(seen) == 11
    assert seen[-1] == path.stat().st_size


def test_known_digest_is_lower_case() -> None:
    assert (
        autov2("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855") == "e3b0c44298"
    )


def test_empty_file_has_the_well_known_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.touch()
    digest = sha256_file(path)
    assert digest == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (autov2(digest), lora_short_hash(digest)) == ("e3b0c44298", "e3b0c44298fc")


def test_short_forms_refuse_what_is_not_a_sha256() -> None:
    for bad in ("", "abc", "g" * 64, "a" * 63):
        with pytest.raises(ValueError, match="not a SHA256"):
            autov2(bad)


def test_same_hash_is_case_insensitive_and_matches_short_forms() -> None:
    full = hashlib.sha256(b"model").hexdigest()
    assert same_hash(full.upper(), full)
    assert same_hash(full[:10].upper(), full)  # CivitAI's AutoV2 against a stored SHA256
    assert same_hash(full, full[:12])
    assert not same_hash(full[:10], hashlib.sha256(b"other").hexdigest())
    assert not same_hash(full[:4], full)  # too short to name a file
    assert not same_hash("", "")


def test_missing_or_directory_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"gone\.safetensors: no such file"):
        sha256_file(tmp_path / "gone.safetensors")
    with pytest.raises(ModelFileError, match="is a directory"):
        sha256_file(tmp_path)


def test_unreadable_file_is_a_model_file_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "locked.safetensors"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(ModelFileError, match="permission denied"):
        sha256_file(path)
