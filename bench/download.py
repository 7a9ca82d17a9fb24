"""Benchmark: tsr's download vs curl on the same file from a loopback file server (goal >= 0.8x).

Writes a file (512 MiB by default), serves it from `tests/fakes/file_server.py` on 127.0.0.1
(sendfile, so the server is not the bottleneck), then fetches it with `curl -o` and with tsr's
`Transfer` (the download core: Range-resumable `.part` file, SHA-256 computed on the fly, fsync
at the end), taking turns. curl is timed twice: as it is, and followed by an fsync of its file,
since tsr makes the bytes durable before installing them. With `--end-to-end`, the whole queue
is timed too: `DownloadManager` with verify, install and the one-file scan (which reads the file
again to hash it).

    uv run python bench/download.py [--size-mb 512] [--repeats 5] [--dir /tmp] [--end-to-end]

curl is needed (`apt-get install -y curl`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# the repo root instead of bench/ first on the path: a bench script named like a standard module
# (a file named like a stdlib module) must not shadow it
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402 (after the path setup)
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from tests.fakes.file_server import FileServer  # noqa: E402
from tsr.downloads.transfer import Transfer  # noqa: E402

GOAL_RATIO = 0.8
MIB = 1024 * 1024


def write_file(path: Path, size_mb: int) -> None:
    """`size_mb` MiB of random bytes (one random 16 MiB block repeated)."""
    block = os.urandom(16 * MIB)
    with path.open("wb") as out:
        left = size_mb * MIB
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            left -= len(piece)
        out.flush()
        os.fsync(out.fileno())


def fsync_file(path: Path) -> None:
    """Flush a file's pages to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_curl(url: str, dest: Path) -> tuple[float, float]:
    """Seconds curl takes to fetch `url` into `dest`, and with an fsync of the result."""
    start = time.perf_counter()
    subprocess.run(["curl", "--silent", "--show-error", "--fail", "-o", str(dest), url], check=True)
    fetched = time.perf_counter()
    fsync_file(dest)
    return fetched - start, time.perf_counter() - start


def run_tsr(url: str, part: Path) -> float:
    """Seconds tsr's Transfer takes (SHA-256 on the fly and fsync included)."""
    start = time.perf_counter()
    with httpx.Client(follow_redirects=True) as http:
        Transfer(url, part, http).run()
    return time.perf_counter() - start


def run_end_to_end(url: str, work: Path, number: int) -> float:
    """Seconds the download queue takes: transfer, verify, install, scan and link."""
    from tsr.config import Config
    from tsr.db import init_database
    from tsr.downloads import CivitaiCatalog, DownloadManager
    from tsr.schemas.downloads import DownloadRequest

    home = work / f"home-{number}"
    init_database(home / "tsr.db")
    config = Config.model_validate(
        {"civitai": {"base_url": "http://127.0.0.1:9/api/v1"}}
    ).model_copy(update={"home": home})
    catalog = CivitaiCatalog(config)
    manager = DownloadManager(config, catalog)
    manager.start()
    try:
        start = time.perf_counter()
        download_id = manager.submit(DownloadRequest(url=url, kind="checkpoints")).id
        while (out := manager.get(download_id)).state not in ("done", "failed", "cancelled"):
            time.sleep(0.01)
        seconds = time.perf_counter() - start
    finally:
        manager.stop()
        catalog.close()
    if out.state != "done":
        raise SystemExit(f"the end-to-end download failed: {out.error}")
    shutil.rmtree(home, ignore_errors=True)
    return seconds


def mib_s(size_mb: int, seconds: list[float]) -> str:
    """Median throughput and the range over runs."""
    rates = [size_mb / s for s in seconds]
    return f"{statistics.median(rates):7.0f} MiB/s  ({min(rates):.0f}-{max(rates):.0f})"


def main() -> int:
    """Run the comparison; exit 1 when tsr's median is below GOAL_RATIO of curl's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--end-to-end", action="store_true", help="also time the whole queue")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is not installed (apt-get install -y curl)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tsr-bench-dl-", dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "served.safetensors"
        write_file(source, args.size_mb)
        times: dict[str, list[float]] = {"curl": [], "curl + fsync": [], "tsr": [], "queue": []}
        with FileServer() as server:
            url = server.add_path(source, "model.safetensors")
            for number in range(args.repeats):
                order = ["curl", "tsr"] if number % 2 == 0 else ["tsr", "curl"]
                for who in order:
                    if who == "curl":
                        dest = work / "curl.out"
                        fetched, synced = run_curl(url, dest)
                        times["curl"].append(fetched)
                        times["curl + fsync"].append(synced)
                        dest.unlink()
                    else:
                        part = work / "tsr.part"
                        times["tsr"].append(run_tsr(url, part))
                        part.unlink()
                if args.end_to_end:
                    times["queue"].append(run_end_to_end(url, work, number))
    print(f"{args.size_mb} MiB from 127.0.0.1, {args.repeats} runs each, median (range)")
    for name, seconds in times.items():
        if seconds:
            print(f"  {name:<13} {mib_s(args.size_mb, seconds)}")
    ratio = statistics.median(times["curl"]) / statistics.median(times["tsr"])
    synced = statistics.median(times["curl + fsync"]) / statistics.median(times["tsr"])
    print(f"tsr / curl: {ratio:.2f} (vs curl + fsync: {synced:.2f}); goal >= {GOAL_RATIO}")
    return 0 if ratio >= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
