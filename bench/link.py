"""Benchmark: linking 1,000 scanned files against the fake CivitAI (goal: at most 12 HTTP calls).

1,000 small model files are scanned into a fresh database; the fake CivitAI (a real HTTP server
on 127.0.0.1, tests/fakes/civitai.py) knows 70% of them, spread over 50 models. `link_files`
runs once (bulk by-hash, 100 hashes a call), then again (everything linked or a remembered
miss: no call at all), then a copy of a linked file is added and linked from the cache.

    uv run python bench/link.py [--files 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
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
from tsr.db.scan import scan_roots

GOAL_CALLS = 12


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    fake = FakeCivitai().start()
    try:
        with tempfile.TemporaryDirectory(prefix="tsr-bench-link-") as tmp:
            return run(Path(tmp), fake, args.files)
    finally:
        fake.stop()


def run(work: Path, fake: FakeCivitai, count: int) -> int:
    root = work / "loras"
    root.mkdir()
    for n in range(count):
        payload = n.to_bytes(4, "little") * 64
        path = root / f"lora_{n:04}.safetensors"
        write_safetensors(path, payload, {"ss_output_name": f"lora{n}"})
        if n % 10 < 7:
            fake.add(
                model_id=1 + n % 50,
                version_id=10_000 + n,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                model_name=f"Model {n % 50}",
                trained_words=[f"word{n}", "style, detailed"],
            )
    init_database(work / "tsr.db")
    with db.connection_context(), CivitaiClient(fake.url) as client:
        scan_roots([root])
        started = time.perf_counter()
        first = link_files(client)
        first_seconds = time.perf_counter() - started
        first_calls = len(fake.requests)
        again = link_files(client)
        again_calls = len(fake.requests) - first_calls
        shutil.copy(root / "lora_0000.safetensors", root / "copy_of_0000.safetensors")
        scan_roots([root])
        copy = link_files(client)
        copy_calls = len(fake.requests) - first_calls - again_calls
    print(f"link: {count} files, {len(fake.versions)} known to the fake CivitAI")
    print(
        f"  first link:  {len(first.linked)} linked, {first.misses} misses, "
        f"{first_calls} HTTP calls, {first_seconds:.2f} s"
    )
    print(f"  second link: {again.skipped_known_misses} known misses skipped, {again_calls} calls")
    print(
        f"  a copy:      {len(copy.linked)} linked via {copy.linked[0].via if copy.linked else '-'}"
        f", {copy_calls} calls"
    )
    ok = first_calls <= GOAL_CALLS and again_calls == 0 and copy_calls == 0
    print(f"  goal <= {GOAL_CALLS} calls  {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
