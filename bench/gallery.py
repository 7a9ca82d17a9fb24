"""Benchmark: filtered gallery pages of 100 over 100,000 images, in-process (goal: median <= 20 ms).

Builds a temporary database with bulk inserts (the files need not exist to list them), then times
`GalleryStore.list` for each filter kind, first page and deep pages, with the DB connection held
open (as a server thread does) and opened per call.

    uv run python bench/gallery.py [--rows 100000] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tsr.db.database import db, init_database
from tsr.db.images import GalleryImage, GalleryLora
from tsr.gallery.ids import SEQUENCE_BITS, created_of, first_id_at, relative_file
from tsr.gallery.store import GalleryStore
from tsr.schemas.images import ImageFilters

GOAL_MS = 20.0
WORDS = [f"word{n}" for n in range(600)] + ["cat", "dog", "castle", "forest", "portrait"]
RARE = "zyzzyva"
CHECKPOINTS = [(f"checkpoint-{n}", f"{n:02x}" * 32) for n in range(30)]
LORAS = [f"lora-{n}" for n in range(200)]
RARE_LORA = "lora-rare"


def build(rows: int, seed: int = 7) -> tuple[list[int], datetime]:
    """Insert `rows` synthetic images (newest about now); return their ids (ascending) and now."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=730)
    span_ms = int((now - start).total_seconds() * 1000)
    offsets = sorted(rng.sample(range(span_ms), rows))
    ids = [first_id_at(start) + (offset << SEQUENCE_BITS) for offset in offsets]
    image_rows, lora_rows = [], []
    for index, image_id in enumerate(ids):
        checkpoint, sha = rng.choice(CHECKPOINTS)
        prompt = ", ".join(rng.choices(WORDS, k=rng.randint(10, 30)))
        if index % 5000 == 0:
            prompt += ", " + RARE
        roll = rng.random()
        state = "inbox" if roll < 0.70 else "kept" if roll < 0.92 else "trashed"
        image_rows.append(
            {
                "id": image_id,
                "file": relative_file(image_id).as_posix(),
                "created": created_of(image_id).replace(tzinfo=None),
                "width": 1024,
                "height": 1024,
                "file_size": 1_500_000,
                "sha256": f"{rng.getrandbits(256):064x}",
                "state": state,
                "restore_state": "inbox" if state == "trashed" else None,
                "trashed_at": now.replace(tzinfo=None) if state == "trashed" else None,
                "favourite": rng.random() < 0.05,
                "rating": rng.choice([0, 0, 0, 0, 1, 2, 3, 4, 5]),
                "checkpoint": checkpoint,
                "checkpoint_sha256": sha,
                "checkpoint_hash": sha[:10],
                "prompt": prompt,
                "negative": "worst quality, low quality",
                "steps": 25,
                "cfg": 6.0,
                "sampler": "Euler a",
                "scheduler": "Karras",
                "seed": rng.getrandbits(32),
                "source": "tsr",
                "parameters": prompt + "\nSteps: 25, Sampler: Euler a, CFG scale: 6, Seed: 1",
                "extra": json.dumps({}),
            }
        )
        names = rng.sample(LORAS, rng.choice([0, 0, 1, 1, 2, 3]))
        if index % 20_000 == 0:
            names.append(RARE_LORA)
        for position, name in enumerate(names):
            lora_rows.append({"image": image_id, "position": position, "name": name, "weight": 0.8})
    with db.atomic():
        for batch in range(0, len(image_rows), 500):
            GalleryImage.insert_many(image_rows[batch : batch + 500]).execute()
        for batch in range(0, len(lora_rows), 2000):
            GalleryLora.insert_many(lora_rows[batch : batch + 2000]).execute()
        db.execute_sql(
            "INSERT INTO gallery_prompt(rowid, prompt) SELECT id, prompt FROM gallery_image"
        )
    # no ANALYZE: a live gallery database never gets one, so the planner works without stats
    return ids, now


def timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and worst of `runs` calls, in milliseconds (after one warm-up call)."""
    call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times)


def main() -> int:
    """Build the database, run every scenario, print a table; exit 1 if a median misses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        init_database(Path(folder) / "tsr.db")
        began = time.perf_counter()
        with db.connection_context():
            ids, now = build(args.rows)
        print(f"built {args.rows} images in {time.perf_counter() - began:.1f} s")
        store = GalleryStore(Path(folder) / "gallery")
        deep_cursor = str(ids[len(ids) // 2])
        month_ago = now - timedelta(days=30)
        scenarios: list[tuple[str, ImageFilters, str | None]] = [
            ("newest (active)", ImageFilters(), None),
            ("deep page (cursor mid-way)", ImageFilters(), deep_cursor),
            ("everything incl. trash", ImageFilters(state="all"), None),
            ("state kept", ImageFilters(state="kept"), None),
            ("state trashed", ImageFilters(state="trashed"), None),
            ("favourites", ImageFilters(favourite=True), None),
            ("checkpoint by name", ImageFilters(checkpoint="checkpoint-7"), None),
            ("checkpoint by hash", ImageFilters(checkpoint=CHECKPOINTS[7][1][:10]), None),
            ("lora", ImageFilters(lora="lora-42"), None),
            ("lora, deep page", ImageFilters(lora="lora-42"), deep_cursor),
            ("lora used 5 times", ImageFilters(lora=RARE_LORA), None),
            (
                "checkpoint + lora used 5 times",
                ImageFilters(checkpoint="checkpoint-1", lora=RARE_LORA),
                None,
            ),
            ("prompt: common word", ImageFilters(prompt="castle"), None),
            ("prompt: rare word (20 hits)", ImageFilters(prompt=RARE), None),
            ("prompt: no match", ImageFilters(prompt="nothing-like-it"), None),
            ("last 30 days", ImageFilters(since=month_ago), None),
            (
                "a past month",
                ImageFilters(since=now - timedelta(days=400), until=now - timedelta(days=370)),
                None,
            ),
            (
                "kept + favourite + checkpoint",
                ImageFilters(state="kept", favourite=True, checkpoint="checkpoint-3"),
                None,
            ),
            ("lora + prompt word", ImageFilters(lora="lora-42", prompt="forest"), None),
            ("min rating 4 + favourite", ImageFilters(min_rating=4, favourite=True), None),
        ]
        missed = False
        print(f"{'scenario':34} {'held ms':>14} {'per-call ms':>14} {'items':>6}")
        for name, filters, cursor in scenarios:
            with db.connection_context():
                held = timed(lambda f=filters, c=cursor: store.list(f, c, 100), args.runs)
                items = len(store.list(filters, cursor, 100).items)
            fresh = timed(lambda f=filters, c=cursor: store.list(f, c, 100), args.runs)
            missed |= held[0] > GOAL_MS or fresh[0] > GOAL_MS
            print(
                f"{name:34} {held[0]:6.2f} ({held[1]:5.1f}) {fresh[0]:6.2f} ({fresh[1]:5.1f})"
                f" {items:6}"
            )
        # the counts behind the status line, asked after each batch of the TUI's changes
        stats = timed(store.stats, args.runs)
        missed |= stats[0] > GOAL_MS
        print(f"{'counts (GalleryStore.stats)':34} {'':>14} {stats[0]:6.2f} ({stats[1]:5.1f})")
        print(f"median (worst) of {args.runs} runs; goal: median <= {GOAL_MS} ms")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
