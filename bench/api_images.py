"""Benchmark: `GET /api/images` pages of 100 from a 100,000-image gallery over loopback HTTP.

Goal: p50 <= 15 ms and p99 <= 60 ms, one uvicorn worker (`tsr serve`, a token, access log on).
Builds the rows with bulk inserts as `bench/gallery.py` does (files need not exist to list them),
starts `tsr serve --port 0` on 127.0.0.1 in its own process, then pages through several filters
with a keep-alive httpx client, following `next_cursor` as the TUI does.

    uv run python bench/api_images.py [--rows 100000] [--pages 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from gallery import CHECKPOINTS, RARE, RARE_LORA, build  # noqa: E402

from tsr.client import Client  # noqa: E402
from tsr.db.database import db, init_database  # noqa: E402
from tsr.schemas.images import ImageFilters  # noqa: E402

P50_GOAL_MS, P99_GOAL_MS = 15.0, 60.0
TOKEN = "bench-token-0123456789"
START_TIMEOUT = 60.0


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`tsr serve --port 0` for `home` (log to a file: a full pipe would stall it); its URL."""
    env = {**os.environ, "TSR_HOME": str(home), "TSR_CONFIG": str(home / "config.toml")}
    env["TSR_TOKEN"] = TOKEN
    log = open(home / "serve.stderr", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "tsr", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        cwd=ROOT,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tsr serve exited: {(home / 'serve.stderr').read_text()}")
        try:
            lock = json.loads((home / "server.lock").read_text() or "null")
        except (OSError, ValueError):
            lock = None
        if lock and lock.get("pid") == process.pid and lock.get("url"):
            url = str(lock["url"])
            httpx.get(f"{url}/api/health", timeout=START_TIMEOUT).raise_for_status()
            return process, url
        time.sleep(0.05)
    process.kill()
    raise SystemExit("tsr serve did not start")


def query(filters: ImageFilters) -> dict[str, Any]:
    """Query parameters for `filters` (as the clients send them)."""
    from tsr.client.images_api import list_params

    return list_params(filters, None, 100)


def walk(http: httpx.Client, params: dict[str, Any], pages: int) -> tuple[list[float], int]:
    """Fetch up to `pages` pages following `next_cursor`; milliseconds per request, items seen."""
    times, items, cursor = [], 0, None
    for _ in range(pages):
        began = time.perf_counter()
        sent = params if cursor is None else {**params, "cursor": cursor}
        response = http.get("/api/images", params=sent)
        response.raise_for_status()
        body = response.json()
        times.append((time.perf_counter() - began) * 1000)
        items += len(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    return times, items


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    """Build, serve, page, print a table; exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=40, help="pages walked per scenario")
    parser.add_argument("--rounds", type=int, default=5, help="walks per scenario")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        init_database(home / "tsr.db")
        began = time.perf_counter()
        with db.connection_context():
            _ids, now = build(args.rows)
        db.close()
        print(f"built {args.rows} images in {time.perf_counter() - began:.1f} s")
        process, url = start_server(home)
        try:
            return run(url, now, args.pages, args.rounds)
        finally:
            process.terminate()
            process.wait(30)


def run(url: str, now: Any, pages: int, rounds: int) -> int:
    """Time every scenario against the server at `url`."""
    scenarios: list[tuple[str, ImageFilters]] = [
        ("newest, walking pages", ImageFilters()),
        ("everything incl. trash", ImageFilters(state="all")),
        ("state kept", ImageFilters(state="kept")),
        ("favourites", ImageFilters(favourite=True)),
        ("checkpoint by name", ImageFilters(checkpoint="checkpoint-7")),
        ("checkpoint by hash", ImageFilters(checkpoint=CHECKPOINTS[7][1][:10])),
        ("lora", ImageFilters(lora="lora-42")),
        ("rare lora", ImageFilters(lora=RARE_LORA)),
        ("prompt: common word", ImageFilters(prompt="castle")),
        ("prompt: rare word", ImageFilters(prompt=RARE)),
        ("last 30 days", ImageFilters(since=now - timedelta(days=30))),
    ]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    every: list[float] = []
    print(f"{'scenario':26} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    with httpx.Client(base_url=url, headers=headers, timeout=30, trust_env=False) as http:
        walk(http, query(ImageFilters()), 5)  # warm-up: connection, caches
        for name, filters in scenarios:
            times: list[float] = []
            for _ in range(rounds):
                times += walk(http, query(filters), pages)[0]
            every += times
            print(
                f"{name:26} {len(times):8} {percentile(times, 0.5):8.2f} "
                f"{percentile(times, 0.99):8.2f} {max(times):8.2f}"
            )
    p50, p99 = percentile(every, 0.5), percentile(every, 0.99)
    print(f"{'all':26} {len(every):8} {p50:8.2f} {p99:8.2f} {max(every):8.2f}")
    # the same pages through tsr's own client (answers parsed into ImagePage models)
    with Client(url, token=TOKEN) as client:
        client.images.list(limit=100)
        parsed = []
        for _ in range(100):
            began = time.perf_counter()
            client.images.list(limit=100)
            parsed.append((time.perf_counter() - began) * 1000)
    print(
        f"tsr Client.images.list(limit=100), parsed: p50 {percentile(parsed, 0.5):.2f} ms, "
        f"p99 {percentile(parsed, 0.99):.2f} ms"
    )
    print(f"goal: p50 <= {P50_GOAL_MS} ms, p99 <= {P99_GOAL_MS} ms over all requests")
    print(f"mean {statistics.fmean(every):.2f} ms")
    return 0 if p50 <= P50_GOAL_MS and p99 <= P99_GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
