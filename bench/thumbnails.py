"""Benchmark: thumbnail of a 1024x1024 PNG, first request (goal <= 40 ms) and cached (<= 2 ms).

Saves realistic 1024x1024 images (gradients plus noise, about 2 MB each, like a generated
picture) into a temporary gallery, then times `GalleryStore.thumbnail(id, 256)`: the first call
decodes, scales, encodes WebP and writes it atomically; later calls find the cached file.

    uv run python bench/thumbnails.py [--images 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tsr.db.database import db, init_database
from tsr.gallery.store import GalleryStore
from tsr.schemas.images import ImageParams

FIRST_GOAL_MS, CACHED_GOAL_MS = 40.0, 2.0


def realistic_png(seed: int, size: int = 1024) -> bytes:
    """A PNG that compresses like a generated image: smooth shapes, fine noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    base = np.stack(
        [128 + 100 * np.sin(x / (60 + 40 * c) + y / (90 + 30 * c) + phase[c]) for c in range(3)],
        axis=-1,
    )
    pixels = (base + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def timings(calls: list[Callable[[], object]]) -> list[float]:
    """Milliseconds for each call, in order."""
    times = []
    for call in calls:
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def report(name: str, times: list[float], goal: float) -> bool:
    """Print median and worst; True when the median meets the goal."""
    median = statistics.median(times)
    print(f"{name:38} median {median:6.2f} ms   worst {max(times):6.2f} ms   goal {goal} ms")
    return median <= goal


def main() -> int:
    """Save the images, time first and cached thumbnails; exit 1 if a median misses its goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        init_database(Path(folder) / "tsr.db")
        store = GalleryStore(Path(folder) / "gallery")
        pngs = [realistic_png(seed) for seed in range(args.images)]
        ids = [store.save(png, ImageParams(prompt=f"bench {n}")).id for n, png in enumerate(pngs)]
        megabytes = statistics.median(map(len, pngs)) / 1e6
        print(f"{args.images} PNGs of 1024x1024, median {megabytes:.2f} MB")
        ok = True
        held, fresh = ids[: len(ids) // 2], ids[len(ids) // 2 :]
        with db.connection_context():
            first = timings([lambda i=i: store.thumbnail(i, 256) for i in held])
            cached = timings([lambda i=i: store.thumbnail(i, 256) for i in held * 5])
        ok &= report("first request (connection held)", first, FIRST_GOAL_MS)
        ok &= report("cached (connection held)", cached, CACHED_GOAL_MS)
        first = timings([lambda i=i: store.thumbnail(i, 256) for i in fresh])
        cached = timings([lambda i=i: store.thumbnail(i, 256) for i in fresh * 5])
        ok &= report("first request (connection per call)", first, FIRST_GOAL_MS)
        ok &= report("cached (connection per call)", cached, CACHED_GOAL_MS)
        size = statistics.median(
            (store.thumbs_dir / "256" / f"{image_id}.webp").stat().st_size for image_id in ids
        )
        print(f"thumbnail 256x256 WebP, median {size / 1000:.1f} KB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
