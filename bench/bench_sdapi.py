"""Benchmark: fake sd-server start-up and SdServerClient cost per call.

Run: `uv run python bench/bench_sdapi.py` (prints a Markdown table).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.sd_server_fixtures import (  # noqa: E402 (after the path setup)
    fake_sd_server_command,
    start_fake_sd_server,
    write_safetensors,
)
from tsr.sdapi import GenerationParams, SdServerClient  # noqa: E402


def startup_times(runs: int) -> list[float]:
    """Seconds from spawning the fake to its `listening on:` line."""
    model = write_safetensors(Path(tempfile.mkdtemp()) / "m.safetensors")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            [*fake_sd_server_command(), "-m", str(model), "--listen-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        process.stdout.readline()
        times.append(time.perf_counter() - started)
        process.terminate()
        process.wait()
    return times


async def timed(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    """Seconds per call, after one warm-up call."""
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


def row(name: str, times: list[float]) -> str:
    median, worst = statistics.median(times) * 1000, max(times) * 1000
    return f"| {name} | {len(times)} | {median:.1f} | {worst:.1f} |"


async def client_rows(url: str) -> list[str]:
    rows = []
    async with SdServerClient(url) as sd:
        rows.append(row("ping (GET /)", await timed(sd.ping, 50)))
        rows.append(row("loras()", await timed(sd.loras, 50)))
        rows.append(row("capabilities()", await timed(sd.capabilities, 50)))
        for size, batch in ((64, 1), (512, 1), (1024, 1), (64, 8)):
            params = GenerationParams(prompt="bench", width=size, height=size, batch_count=batch)
            rows.append(
                row(
                    f"generate() {size}x{size} x{batch} (native job)",
                    await timed(lambda p=params: sd.generate(p), 10),
                )
            )
        payload = {"prompt": "bench", "width": 64, "height": 64, "seed": 1}
        rows.append(row("txt2img() 64x64 (sdapi)", await timed(lambda: sd.txt2img(payload), 20)))
    return rows


def main() -> None:
    """Print the figures as a Markdown table."""
    print("| what | runs | median ms | max ms |")
    print("|---|---|---|---|")
    print(row("fake sd-server start → listening", startup_times(10)))
    fake = start_fake_sd_server(Path(tempfile.mkdtemp()))
    try:
        for line in asyncio.run(client_rows(fake.url)):
            print(line)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
