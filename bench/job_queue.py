"""Benchmark: the job queue's cost per image over calling the zero-latency fake sd-server directly.

Run: `uv run python bench/job_queue.py [--jobs 40] [--batch 1 4]` (prints a Markdown table; exits 1
when the goal is missed). Goal: at most 30 ms per image over the direct call.

"Direct" is `SdServerClient.generate` against the fake. "Queue" is `JobQueue.submit` + `wait`
against the same fake: request validation, checkpoint resolution in the DB, the backend's worker,
the same native job polling, checking every PNG, and saving each image (atomic file write with
fsync, A1111 parameters, DB row). Both poll sd-server's job status at the same interval. Jobs run
one after another, as a user waiting for each would.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file shares its name with the standard library's `queue` (asyncio needs that one): keep
# its folder off the import path and put the project root there instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [
    entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"
]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from tests.fakes.sd_server_fixtures import (  # noqa: E402 (after the path setup)
    fake_sd_server_command,
    free_port,
    write_safetensors,
)
from tsr.config import Config  # noqa: E402
from tsr.db import init_database  # noqa: E402
from tsr.gallery import GalleryStore  # noqa: E402
from tsr.sdapi import GenerationParams, SdServerClient  # noqa: E402
from tsr.server.backends import BackendManager  # noqa: E402
from tsr.server.jobs import JobQueue  # noqa: E402

GOAL_MS = 30.0
POLL = 0.01
SIZE = {"width": 64, "height": 64, "steps": 1}


def start_fake(model: Path, lora_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The fake sd-server, zero latency, as its own process; waits until GET / answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            *fake_sd_server_command(),
            *("-m", str(model), "--lora-model-dir", str(lora_dir)),
            *("--listen-ip", "127.0.0.1", "--listen-port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            httpx.get(url + "/", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("the fake sd-server did not start")


async def direct(url: str, jobs: int, batch: int) -> list[float]:
    """Seconds per job calling the client directly."""
    params = GenerationParams(prompt="a cube", seed=1, batch_count=batch, **SIZE)
    times = []
    async with SdServerClient(url) as client:
        await client.generate(params, poll_interval=POLL)  # warm-up
        for _ in range(jobs):
            started = time.perf_counter()
            result = await client.generate(params, poll_interval=POLL)
            times.append(time.perf_counter() - started)
            assert len(result.images) == batch
    return times


async def queued(queue: JobQueue, jobs: int, batch: int) -> list[float]:
    """Seconds per job through the queue, images saved to the gallery."""
    request = {"prompt": "a cube", "seed": 1, "batch": batch, **SIZE}
    await queue.wait((await queue.submit(request)).id)  # warm-up
    times = []
    for _ in range(jobs):
        started = time.perf_counter()
        job = await queue.wait((await queue.submit(request)).id)
        times.append(time.perf_counter() - started)
        assert job.state == "done", job.error
        assert len(job.image_ids) == batch
    return times


async def measure(work: Path, url: str, jobs: int, batches: list[int]) -> list[str]:
    """One table row per batch size; both ways take turns so that load hits them alike."""
    config = Config.model_validate(
        {
            "paths": {"checkpoints": [str(work / "checkpoints")], "loras": [str(work / "loras")]},
            "backends": [{"name": "fake", "kind": "external", "url": url}],
        },
    )
    config.home = work / "home"
    init_database(config.db_path())
    manager = BackendManager(config)
    queue = JobQueue(manager, GalleryStore(config.gallery_dir()), poll_interval=POLL)
    await manager.start(wait=True)
    await queue.start()
    rows = []
    try:
        for batch in batches:
            direct_times: list[float] = []
            queue_times: list[float] = []
            for _ in range(2):
                direct_times += await direct(url, jobs // 2, batch)
                queue_times += await queued(queue, jobs // 2, batch)
            d, q = statistics.median(direct_times), statistics.median(queue_times)
            per_image = (q - d) / batch * 1000
            rows.append(
                f"| {batch} | {len(queue_times)} | {d * 1000:.1f} | {q * 1000:.1f} | "
                f"{per_image:.1f} | {'yes' if per_image <= GOAL_MS else 'NO'} |"
            )
    finally:
        await queue.stop()
        await manager.stop()
    return rows


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per batch size and way")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tsr-bench-queue-") as folder:
        work = Path(folder)
        model = write_safetensors(work / "checkpoints" / "bench.safetensors")
        (work / "loras").mkdir()
        os.environ["TSR_HOME"] = str(work / "home")
        process, url = start_fake(model, work / "loras")
        try:
            rows = asyncio.run(measure(work, url, args.jobs, args.batch))
        finally:
            process.terminate()
            process.wait()
    print(f"Queue overhead against the zero-latency fake (poll interval {POLL * 1000:g} ms)\n")
    print("| batch | jobs | direct ms/job | queue ms/job | overhead ms/image | ≤ 30 ms |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0 if all(row.endswith("yes |") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
