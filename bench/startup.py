"""Benchmark: what a big gallery costs a tsr command that starts the embedded server.

Every `tsr` verb on `local` starts the server in-process, and the server makes the gallery folder
and its rows agree before it accepts work. This builds a gallery of `--images` real files (tiny
stand-ins: a reconcile compares sizes, not pixels) with a cached thumbnail each, then times
`tsr db stats` as its own process: after a clean stop (the usual case), and after a crash (no
clean-stop record: the full walk). Goal: a command after a clean stop costs at most 0.3 s more
with 100,000 images than with none.

    uv run python bench/startup.py [--images 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gallery import build  # noqa: E402

from tsr.config import Config  # noqa: E402
from tsr.db.database import db, init_database  # noqa: E402
from tsr.db.images import GalleryImage  # noqa: E402
from tsr.gallery.thumbnails import thumbnail_path  # noqa: E402
from tsr.server.gallery_service import build_store  # noqa: E402

GOAL_EXTRA_SECONDS = 0.3
STAND_IN = b"\x89PNG\r\n\x1a\n" + bytes(56)
THUMB_SIZE = 256


def make_gallery(home: Path, images: int) -> None:
    """Rows from bench/gallery.py, a stand-in file where each row says, and a thumbnail each."""
    init_database(home / "tsr.db")
    store = build_store(Config(home=home))
    with db.connection_context():
        if images:
            build(images)
        GalleryImage.update(file_size=len(STAND_IN)).execute()
        rows = GalleryImage.select(GalleryImage.id, GalleryImage.state).tuples()
        for image_id, state in rows:
            path = store.location(image_id, state)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(STAND_IN)
            thumb = thumbnail_path(store.thumbs_dir, image_id, THUMB_SIZE)
            if image_id == 0 or not thumb.parent.is_dir():
                thumb.parent.mkdir(parents=True, exist_ok=True)
            thumb.write_bytes(b"RIFF")
    db.close()


def command_seconds(home: Path, crash_first: bool) -> float:
    """Wall time of `tsr db stats` (optionally after forgetting the last clean stop)."""
    env = {**os.environ, "TSR_HOME": str(home), "TSR_CONFIG": str(home / "config.toml")}
    if crash_first:
        (home / "gallery-state.json").unlink(missing_ok=True)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tsr", "db", "stats"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    return time.perf_counter() - began


def measure(home: Path, runs: int, crash_first: bool) -> list[float]:
    """`runs` timings after one warm-up run."""
    command_seconds(home, crash_first)
    return [command_seconds(home, crash_first) for _ in range(runs)]


def main() -> int:
    """Build both galleries, time the command, print a table; exit 1 if the goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        empty, big = Path(folder) / "empty", Path(folder) / "big"
        began = time.perf_counter()
        make_gallery(empty, 0)
        make_gallery(big, args.images)
        print(f"built {args.images} images in {time.perf_counter() - began:.1f} s")
        results = {
            "empty gallery": measure(empty, args.runs, crash_first=False),
            f"{args.images:,} images, after a clean stop": measure(big, args.runs, False),
            f"{args.images:,} images, after a crash": measure(big, args.runs, True),
        }
    print("| `tsr db stats` | median | min | max |\n|---|---|---|---|")
    for label, times in results.items():
        median = statistics.median(times)
        print(f"| {label} | {median:.2f} s | {min(times):.2f} s | {max(times):.2f} s |")
    baseline = statistics.median(results["empty gallery"])
    extra = statistics.median(results[f"{args.images:,} images, after a clean stop"]) - baseline
    print(f"extra after a clean stop: {extra:.2f} s (goal <= {GOAL_EXTRA_SECONDS} s)")
    return 0 if extra <= GOAL_EXTRA_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
