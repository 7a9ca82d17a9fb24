"""Benchmark: the embedded `local` server and the API transport (Unix socket vs TCP, SSE).

Run: `uv run python bench/bench_server.py` (prints a Markdown table).

Cold figures come from fresh processes (imports included, as a CLI verb pays them); warm ones
from one process after the first request.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLD_RUNS = 3
REQUESTS = 300
EVENTS = 2000

COLD_SCRIPT = """
import json, time
t0 = time.perf_counter()
from tsr.client import connect
t1 = time.perf_counter()
client = connect("local")
t2 = time.perf_counter()
client.info()
t3 = time.perf_counter()
client.close()
from tsr.client.local import shutdown_embedded
shutdown_embedded()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "connect": t2 - t1, "first": t3 - t2, "stop": t4 - t3}))
"""


def cold_runs() -> dict[str, list[float]]:
    """Per phase, seconds in fresh processes: import, connect(), first info(), shut-down."""
    phases: dict[str, list[float]] = {}
    for _ in range(COLD_RUNS):
        home = tempfile.mkdtemp()
        env = {**os.environ, "TSR_HOME": home, "TSR_CONFIG": f"{home}/config.toml"}
        out = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        for phase, seconds in json.loads(out).items():
            phases.setdefault(phase, []).append(seconds)
    return phases


def request_latency(client: object, runs: int) -> list[float]:
    """Seconds per `info()` call, after a warm-up."""
    from tsr.client import Client

    assert isinstance(client, Client)
    client.info()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.info()
        times.append(time.perf_counter() - started)
    return times


def event_figures(client: object, publish: object) -> tuple[float, float, int]:
    """Median seconds from publish (in a thread) to receipt; events/s through SSE; dropped."""
    from tsr.client import Client
    from tsr.server.events import EventBus

    assert isinstance(client, Client) and isinstance(publish, EventBus)
    stream = client.events(["job"])
    next(stream)
    delays = []
    for n in range(50):
        sent = time.perf_counter()
        publish.publish("job", "progress", {"n": n})
        next(stream)
        delays.append(time.perf_counter() - sent)
    started = time.perf_counter()

    def burst() -> None:
        for n in range(EVENTS):
            publish.publish("job", "progress", {"n": n})

    feeder = threading.Thread(target=burst)
    feeder.start()
    received = dropped = 0
    for event in stream:
        if event.kind == "dropped":
            dropped += int(event.data["count"])
            continue
        received += 1
        if event.data["n"] == EVENTS - 1:
            break
    elapsed = time.perf_counter() - started
    feeder.join()
    stream.close()
    return statistics.median(delays), received / elapsed, dropped


def warm_figures() -> dict[str, float]:
    """Request latency over the socket and over TCP, and event delivery."""
    from tests.server.running import serve_app
    from tsr.client import Client, connect
    from tsr.client.local import embedded_server, shutdown_embedded
    from tsr.config import Config
    from tsr.server.app import app_state

    home = Path(tempfile.mkdtemp())
    os.environ["TSR_HOME"] = str(home / "local")
    os.environ["TSR_CONFIG"] = str(home / "config.toml")
    figures: dict[str, float] = {}
    with connect("local") as client:
        figures["info over the Unix socket"] = statistics.median(request_latency(client, REQUESTS))
        server = embedded_server(Config(home=home / "local"))
        assert server is not None and server.app is not None
        delay, rate, dropped = event_figures(client, app_state(server.app).events)
        figures["event publish → client (socket)"] = delay
        figures["events/s through SSE (socket)"] = rate
        figures[f"events dropped of a {EVENTS} burst (socket)"] = dropped
    shutdown_embedded()
    with serve_app(Config(home=home / "tcp")) as running, Client(running.url) as client:
        figures["info over TCP loopback"] = statistics.median(request_latency(client, REQUESTS))
        delay, rate, dropped = event_figures(client, running.state.events)
        figures["event publish → client (TCP)"] = delay
        figures["events/s through SSE (TCP)"] = rate
        figures[f"events dropped of a {EVENTS} burst (TCP)"] = dropped
    return figures


def main() -> None:
    """Print the figures as a Markdown table."""
    print("| measure | median | min | max |")
    print("|---|---|---|---|")
    names = {
        "import": "import tsr.client (cold process)",
        "connect": 'connect("local") returns',
        "first": "first info() (embedded start-up)",
        "stop": "shut-down at exit",
    }
    for phase, values in cold_runs().items():
        print(
            f"| {names[phase]} | {statistics.median(values) * 1000:.0f} ms "
            f"| {min(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |"
        )
    for name, value in warm_figures().items():
        counted = name.startswith("events")
        shown = f"{value:,.0f}" if counted else f"{value * 1000:.2f} ms"
        print(f"| {name} | {shown} | | |")


if __name__ == "__main__":
    main()
