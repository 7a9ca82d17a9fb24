"""Benchmark: `tsr db search` over 10,000 files (goal: at most 50 ms a query).

10,000 small model files with realistic names (some with kohya caption tags) are scanned into a
fresh database; the fake CivitAI knows 30% of them (model names, trained words, tags), and
they are linked with their models cached, so every indexed field is filled. Then a set of
queries (common and rare words, prefixes, several words, nothing found) runs through the
service API; the median and worst of 30 runs each are reported, plus one `tsr db search` run
through the real CLI for scale (its time is mostly the interpreter starting).

    uv run python bench/search.py [--files 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scan import write_safetensors
from tests.fakes.civitai import FakeCivitai
from tsr.civitai import CivitaiClient
from tsr.db import db, init_database
from tsr.db.link import link_files
from tsr.db.queries import search
from tsr.db.scan import scan_roots

GOAL_MS = 50.0
ADJECTIVES = [
    "dark",
    "bright",
    "soft",
    "neon",
    "misty",
    "golden",
    "silver",
    "crimson",
    "frozen",
    "ancient",
]
NOUNS = [
    "forest",
    "city",
    "portrait",
    "knight",
    "dragon",
    "garden",
    "ocean",
    "castle",
    "robot",
    "girl",
]
STYLES = [
    "anime",
    "realistic",
    "watercolor",
    "ink",
    "pixel",
    "oil",
    "sketch",
    "cinematic",
    "comic",
    "lineart",
]
TAGS = [
    "1girl",
    "solo",
    "smile",
    "long_hair",
    "outdoors",
    "sky",
    "armor",
    "sword",
    "flower",
    "night",
]
QUERIES = ["dragon", "drag", "watercolor", "neon city", "sword", "zzz_nothing", "v12", "style_42"]


def build(work: Path, fake: FakeCivitai, count: int) -> None:
    rng = random.Random(42)
    root = work / "loras"
    for n in range(count):
        name = f"{rng.choice(ADJECTIVES)}_{rng.choice(NOUNS)}_{rng.choice(STYLES)}_v{n % 20}"
        folder = root / f"set{n // 500:02}"
        folder.mkdir(parents=True, exist_ok=True)
        metadata = {}
        if n % 2:
            tags = {tag: rng.randint(1, 40) for tag in rng.sample(TAGS, 4)}
            metadata["ss_tag_frequency"] = json.dumps({"10_data": tags})
        path = folder / f"{name}_{n:05}.safetensors"
        write_safetensors(path, n.to_bytes(4, "little"), metadata)
        if n % 10 < 3:
            model_id = 1 + n % 300
            if model_id not in fake.models:
                fake.add_model(model_id, f"Style {model_id} {rng.choice(STYLES)}", tags=["style"])
            fake.add_version(model_id, 100_000 + n, trained_words=[f"style_{n % 97}"])
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            fake.add_file(100_000 + n, 1_000_000 + n, path.name, sha256=sha)
    init_database(work / "tsr.db")
    with db.connection_context(), CivitaiClient(fake.url) as client:
        started = time.perf_counter()
        scan_roots([root])
        scanned = time.perf_counter() - started
        started = time.perf_counter()
        result = link_files(client, fetch_models=True)
        linked = time.perf_counter() - started
    print(
        f"library: {count} files scanned in {scanned:.1f} s; {len(result.linked)} linked "
        f"({result.requests} HTTP calls incl. model fetches) in {linked:.1f} s"
    )


def measure() -> bool:
    ok = True
    with db.connection_context():
        for query in QUERIES:
            times, hits = [], 0
            for _ in range(30):
                started = time.perf_counter()
                hits = len(search(query, limit=50))
                times.append((time.perf_counter() - started) * 1000)
            worst = max(times)
            ok = ok and statistics.median(times) <= GOAL_MS
            print(
                f"  {query!r:16} {hits:3} hits  median {statistics.median(times):6.2f} ms  "
                f"worst {worst:6.2f} ms"
            )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    fake = FakeCivitai().start()
    try:
        with tempfile.TemporaryDirectory(prefix="tsr-bench-search-") as tmp:
            work = Path(tmp)
            build(work, fake, args.files)
            print(f"search over {args.files} files (service API, limit 50, 30 runs each):")
            ok = measure()
            config = work / "config.toml"
            config.write_text(f'[server]\ndb_path = "{work / "tsr.db"}"\n')
            env = {**os.environ, "TSR_CONFIG": str(config), "TSR_HOME": str(work / "home")}
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "tsr", "db", "search", "neon", "city", "--json"],
                env=env,
                capture_output=True,
                check=True,
            )
            cli_ms = (time.perf_counter() - started) * 1000
            print(f"  `tsr db search neon city` CLI: {cli_ms:.0f} ms (process start-up included)")
    finally:
        fake.stop()
    print(f"  goal: median <= {GOAL_MS:.0f} ms  {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
