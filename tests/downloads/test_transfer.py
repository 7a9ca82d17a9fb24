"""One transfer against a misbehaving file server: cuts, ignored Range, 401, stops, full disks."""

from __future__ import annotations

import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.file_server import FileServer, random_bytes, sha256_of
from tsr.downloads.transfer import DiskFull, Transfer, TransferStatus, TransferStopped
from tsr.errors import AuthRejected, NotFound, ServerError

SIZE = 300_000


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain client, as the manager builds one (redirects followed)."""
    with httpx.Client(follow_redirects=True) as client:
        yield client


def transfer(url: str, part: Path, http: httpx.Client, **options: Any) -> Transfer:
    """A transfer that does not pause between attempts."""
    return Transfer(url, part, http, retry_base=0.01, sleep=lambda s: None, **options)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_connections_cut_at_random_points_resume_to_the_right_sha256(
    seed: int, file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE, seed)
    url = file_server.add("model.safetensors", content)
    cuts = sorted(random.Random(seed).sample(range(1, SIZE), 3))
    # each cut is counted from where that request starts
    file_server.cut_after(cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1])
    part = tmp_path / "1.part"

    result = transfer(url, part, http).run()

    assert result.sha256 == sha256_of(content)
    assert part.read_bytes() == content
    assert file_server.ranges() == [None, *(f"bytes={cut}-" for cut in cuts)]
    assert result.file_name == "model.safetensors"


def test_a_server_that_ignores_range_restarts_from_zero_never_appends(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    file_server.ignore_range = True
    file_server.cut_after(100_000)
    part = tmp_path / "1.part"

    result = transfer(url, part, http).run()

    assert [r.status for r in file_server.requests] == [200, 200]
    assert file_server.ranges() == [None, "bytes=100000-"]
    assert part.stat().st_size == SIZE
    assert result.sha256 == sha256_of(content)


def test_a_part_left_by_an_earlier_run_is_resumed_not_refetched(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    part = tmp_path / "1.part"
    part.write_bytes(content[:123_456])

    result = transfer(url, part, http).run()

    assert file_server.ranges() == ["bytes=123456-"]
    assert file_server.requests[0].sent == SIZE - 123_456
    assert result.sha256 == sha256_of(content)


def test_a_complete_part_is_recognised_from_the_416_answer(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    part = tmp_path / "1.part"
    part.write_bytes(content)

    result = transfer(url, part, http).run()

    assert [r.status for r in file_server.requests] == [416]
    assert result.sha256 == sha256_of(content)


def test_a_longer_part_than_the_file_starts_over(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    part = tmp_path / "1.part"
    part.write_bytes(content + b"stale tail")

    result = transfer(url, part, http).run()

    assert part.read_bytes() == content
    assert result.sha256 == sha256_of(content)


def test_401_says_so_in_one_sentence(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    url = file_server.add("model.safetensors", b"x" * 10)
    file_server.token = "right"

    with pytest.raises(AuthRejected, match=r"needs credentials .* \(HTTP 401\)"):
        transfer(url, tmp_path / "1.part", http).run()
    assert len(file_server.requests) == 1  # never retried


def test_a_missing_file_is_not_found(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="answered 404"):
        transfer(file_server.url("nothing.safetensors"), tmp_path / "1.part", http).run()


def test_a_failing_server_is_retried_then_given_up(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    url = file_server.add("model.safetensors", b"x" * 10)
    file_server.status = 503

    with pytest.raises(ServerError, match="keeps failing"):
        transfer(url, tmp_path / "1.part", http, max_failures=3).run()
    assert len(file_server.requests) == 3


def test_stopping_keeps_the_part_for_later(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    file_server.delay = 0.05
    stop = threading.Event()
    seen: list[int] = []

    def progress(status: TransferStatus) -> None:
        seen.append(status.done)
        if status.done >= 128 * 1024:
            stop.set()

    part = tmp_path / "1.part"
    with pytest.raises(TransferStopped):
        transfer(url, part, http, stop=stop, progress=progress).run()
    kept = part.stat().st_size
    assert 0 < kept < SIZE
    assert part.read_bytes() == content[:kept]


def test_without_content_length_the_body_ends_with_the_connection(
    file_server: FileServer, http: httpx.Client, tmp_path: Path
) -> None:
    content = random_bytes(SIZE)
    url = file_server.add("model.safetensors", content)
    file_server.no_length = True

    result = transfer(url, tmp_path / "1.part", http).run()

    assert result.sha256 == sha256_of(content)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
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


@pytest.mark.parametrize("announced", [True, False])
def test_a_full_disk_fails_in_one_sentence_and_keeps_the_part(
    announced: bool, tiny_disk: Path, file_server: FileServer, http: httpx.Client
) -> None:
    content = random_bytes(2 * 1024 * 1024)
    url = file_server.add("big.safetensors", content)
    # without Content-Length the disk fills up mid-write; with it, before the first byte
    file_server.no_length = not announced
    part = tiny_disk / ".tsr-partial" / "1.part"
    part.parent.mkdir()
    part.write_bytes(content[:200_000])  # what an earlier attempt got

    with pytest.raises(DiskFull) as caught:
        transfer(url, part, http).run()

    message = str(caught.value)
    assert message.startswith(f"the disk holding {part.parent} is full")
    assert message.endswith("it resumes where it stopped")
    assert "\n" not in message
    kept = part.stat().st_size
    assert kept >= 200_000
    assert part.read_bytes() == content[:kept]
