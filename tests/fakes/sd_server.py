#!/usr/bin/env python3
"""A fake stable-diffusion.cpp `sd-server`: its flags, endpoints and quirks, with cheap fake images.

Run it like sd-server (`python tests/fakes/sd_server.py -m MODEL --lora-model-dir DIR --listen-ip
127.0.0.1 --listen-port N`). Switches the real server lacks, for tests (flags or environment):
  --fake-latency SECONDS    (FAKE_SD_LATENCY)   sleep this long per image
  --fake-fail MODE[:ARG]    (FAKE_SD_FAIL, comma-separated), repeatable:
      down            exit (status 1) right after printing the listening line
      500             generation fails: sdapi answers 500, native jobs end `failed`
      garbage         every JSON endpoint answers 200 with a body that is not JSON
      wrong-count     one image fewer than asked for
      slow-start:S    listen only after S seconds
      die-after:N     N generations succeed, the process exits when the next one starts
  --fake-job-ttl SECONDS    (FAKE_SD_JOB_TTL)   native job results expire after this (600)
Control endpoints (paths sd-server never has): GET /__fake__/state, POST /__fake__/reset,
POST /__fake__/mode {"fail": MODE|null, "latency": s, "hold": bool, "job_ttl": s}; `hold` keeps
generation waiting (the job stays `generating`) until it is released.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python tests/fakes/sd_server.py): find `tests.fakes`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes import sd_server_requests as rules
from tests.fakes.sd_server_jobs import (
    FakeState,
    GenerationFailed,
    JobManager,
    capabilities,
)
from tests.fakes.sd_server_output import ModelFiles

_VALUE_FLAGS = {
    "-m": "model",
    "--model": "model",
    "--diffusion-model": "diffusion_model",
    "--clip_l": "clip_l",
    "--clip_g": "clip_g",
    "--t5xxl": "t5xxl",
    "--llm": "llm",
    "--vae": "vae",
    "--lora-model-dir": "lora_model_dir",
    "--listen-ip": "listen_ip",
    "--listen-port": "listen_port",
    "--steps": "steps",
    "--cfg-scale": "cfg_scale",
    "--sampling-method": "sampling_method",
    "--scheduler": "scheduler",
    "--clip-skip": "clip_skip",
    "--guidance": "guidance",
    "-s": "seed",
    "--seed": "seed",
    "-W": "width",
    "--width": "width",
    "-H": "height",
    "--height": "height",
    "--fake-latency": "fake_latency",
    "--fake-fail": "fake_fail",
    "--fake-job-ttl": "fake_job_ttl",
}
# Flags sd-server accepts that change nothing a client can see here.
_IGNORED_VALUE_FLAGS = (  # noqa: SIM905 (a word list reads best as words)
    "-t --threads --embd-dir --taesd --control-net --hires-upscalers-dir --upscale-model "
    "--type --rng --sampler-rng --prediction --lora-apply-mode --tensor-type-rules "
    "--photo-maker --serve-html-path --img-cfg-scale --eta --slg-scale --skip-layers "
    "--skip-layer-start --skip-layer-end --vae-tile-size --vae-relative-tile-size "
    "--vae-tile-overlap --flow-shift --timestep-shift --cache-mode --cache-option "
    "--clip_vision --high-noise-diffusion-model"
).split()
_BOOL_FLAGS = (  # noqa: SIM905 (a word list reads best as words)
    "-v --verbose --color --eager-load --disable-image-metadata --vae-tiling "
    "--offload-to-cpu --clip-on-cpu --vae-on-cpu --control-net-cpu --diffusion-fa "
    "--diffusion-conv-direct --vae-conv-direct --mmap --circular --circularx --circulary "
    "--force-sdxl-vae-conv-scale"
).split()
_GARBAGE = b'{"images": ["iVBORw0KGgoAAAANSUhEUgAA'
_JOB_PATH = re.compile(r"/sdcpp/v1/jobs/([A-Za-z0-9_\-]+)(/cancel)?")


def _usage_error(message: str) -> None:
    sys.stderr.write(f"error: {message}\nusage: sd-server -m MODEL [options] (see --help)\n")
    raise SystemExit(1)


def parse_flags(argv: list[str]) -> argparse.Namespace:
    """sd-server's command line (plus the --fake-* switches); unknown flags are an error."""
    parser = argparse.ArgumentParser(prog="sd-server", add_help=True, allow_abbrev=False)
    for flag in {*_VALUE_FLAGS, *_IGNORED_VALUE_FLAGS}:
        name = _VALUE_FLAGS.get(flag)
        kwargs: dict[str, Any] = {"dest": name} if name else {"dest": None, "help": "(ignored)"}
        if name == "fake_fail":
            kwargs["action"] = "append"
        if not name:
            kwargs["dest"] = "ignored_" + flag.lstrip("-").replace("-", "_")
        parser.add_argument(flag, **kwargs)
    for flag in _BOOL_FLAGS:
        parser.add_argument(flag, action="store_true", dest=flag.lstrip("-").replace("-", "_"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _usage_error(f"unknown argument: {unknown[0]}")
    if not args.model and not args.diffusion_model:
        _usage_error("the following arguments are required: model_path/diffusion_model")
    if args.sampling_method and args.sampling_method not in rules.SAMPLERS:
        _usage_error(f"invalid sample method: {args.sampling_method}")
    if args.scheduler and not rules.scheduler_from_name(args.scheduler):
        _usage_error(f"invalid scheduler: {args.scheduler}")
    return args


def _fail_modes(args: argparse.Namespace) -> dict[str, float | None]:
    raw = list(args.fake_fail or [])
    if not raw and os.environ.get("FAKE_SD_FAIL"):
        raw = os.environ["FAKE_SD_FAIL"].split(",")
    modes: dict[str, float | None] = {}
    for item in raw:
        name, _, arg = item.strip().replace("=", ":").partition(":")
        if name not in ("down", "500", "garbage", "wrong-count", "slow-start", "die-after"):
            _usage_error(f"unknown --fake-fail mode: {item}")
        modes[name] = float(arg) if arg else None
    return modes


class FakeHttpServer(ThreadingHTTPServer):
    """The listening server; handlers reach the shared state through `self.fake`."""

    daemon_threads = True
    fake: FakeState
    jobs: JobManager
    stopped_by_down = False


class SdServerHandler(BaseHTTPRequestHandler):
    """Routes sd-server's endpoints; unknown path or method → 404 with an empty body."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY each answer waits ~40 ms.
    disable_nagle_algorithm = True
    server: FakeHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Log like a server: one line per request on stderr (the backend manager shows it)."""
        self.server.fake.log("INFO ", f"{self.client_address[0]} {format % args}")

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", "*")
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        self._send(status, body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_OPTIONS(self) -> None:
        """CORS pre-flight: sd-server allows everything."""
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """Discovery, job polling, readiness and the fake's own state."""
        self._dispatch("GET", b"")

    def do_POST(self) -> None:
        """Generation, job submission and cancel, and the fake's own controls."""
        self._dispatch("POST", self._body())

    def do_PUT(self) -> None:
        """Not an sd-server method: 404."""
        self._dispatch("PUT", self._body())

    def do_DELETE(self) -> None:
        """Not an sd-server method: 404."""
        self._dispatch("DELETE", self._body())

    def do_PATCH(self) -> None:
        """Not an sd-server method: 404."""
        self._dispatch("PATCH", self._body())

    def _dispatch(self, method: str, body: bytes) -> None:
        path = self.path.split("?", 1)[0]
        fake = self.server.fake
        fake.record(method, path)
        if fake.verbose and body:
            fake.log("DEBUG", f"{method} {path} body: {body[:300].decode(errors='replace')}")
        try:
            if path.startswith("/__fake__/"):
                self._control(method, path, body)
            elif method == "GET" and path == "/":
                self._send(200, b"Stable Diffusion Server is running", "text/plain")
            elif fake.fail == "garbage" and path.startswith(("/sdapi/", "/sdcpp/", "/v1/")):
                self._send(200, _GARBAGE)
            else:
                self._api(method, path, body)
        except rules.HttpError as error:
            self._json(error.status, error.body)
        except Exception as error:  # like sd-server's catch-all: 500, and the server lives on
            fake.log("ERROR", f"{method} {path} failed: {error!r}")
            self._json(500, {"error": "server_error", "message": str(error)})

    def _api(self, method: str, path: str, body: bytes) -> None:
        fake, jobs = self.server.fake, self.server.jobs
        job = _JOB_PATH.fullmatch(path)
        if method == "GET" and path in _DISCOVERY:
            self._json(200, _DISCOVERY[path](fake))
        elif method == "GET" and job and not job.group(2):
            self._json(200, jobs.describe(job.group(1)))
        elif method == "POST" and job and job.group(2):
            self._json(200, jobs.cancel(job.group(1)))
        elif method == "POST" and path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            self._sdapi(body, img2img=path.endswith("img2img"))
        elif method == "POST" and path == "/sdcpp/v1/img_gen":
            if not body:
                raise rules.HttpError(400, {"error": "empty body"})
            request = rules.parse_json(body, native=True)
            gen = rules.parse_native(request, fake.defaults, fake.lora_table)
            self._json(202, jobs.submit(gen))
        elif method == "POST" and path == "/v1/images/generations":
            gen = rules.parse_openai(rules.parse_json(body, native=False), fake.defaults)
            images = self._generate(gen)
            data = [{"b64_json": base64.b64encode(image).decode()} for image in images]
            self._json(200, {"created": int(time.time()), "data": data})
        else:
            self._send(404, b"")

    def _sdapi(self, body: bytes, *, img2img: bool) -> None:
        if not body:
            raise rules.HttpError(400, {"error": "empty body"})
        fake = self.server.fake
        request = rules.parse_json(body, native=False)
        gen = rules.parse_sdapi(request, fake.defaults, fake.lora_table, img2img=img2img)
        images = self._generate(gen)
        texts = [fake.infotext(gen, gen.seed + i) for i in range(len(images))]
        self._json(
            200,
            {
                "images": [base64.b64encode(image).decode() for image in images],
                "parameters": request,
                "info": fake.info(gen, texts),
            },
        )

    def _generate(self, gen: Any) -> list[bytes]:
        try:
            return self.server.fake.generate(gen)
        except GenerationFailed as error:
            raise rules.HttpError(500, {"error": str(error)}) from None

    def _control(self, method: str, path: str, body: bytes) -> None:
        fake = self.server.fake
        if method == "GET" and path == "/__fake__/state":
            self._json(200, fake.state())
        elif method == "POST" and path == "/__fake__/reset":
            fake.reset()
            self._json(200, fake.state())
        elif method == "POST" and path == "/__fake__/mode":
            try:
                change = json.loads(body or b"{}")
            except ValueError:
                raise rules.HttpError(400, {"error": "mode must be a JSON object"}) from None
            if change.get("fail") == "down":
                self._json(200, {"going": "down"})
                self.server.stopped_by_down = True
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return
            try:
                fake.set_mode(change)
            except ValueError as error:
                raise rules.HttpError(400, {"error": str(error)}) from None
            self._json(200, fake.state())
        else:
            self._send(404, b"")


_DISCOVERY = {
    "/sdapi/v1/loras": lambda fake: fake.refresh_loras(),
    "/sdapi/v1/samplers": lambda fake: [
        {"name": name, "aliases": [name], "options": {}} for name in ["default", *rules.SAMPLERS]
    ],
    "/sdapi/v1/schedulers": lambda fake: [
        {"name": name, "label": name} for name in ["default", *rules.SCHEDULERS]
    ],
    "/sdapi/v1/options": lambda fake: {
        "samples_format": "png",
        "sd_model_checkpoint": Path(fake.files.display_path).stem,
    },
    "/sdapi/v1/sd-models": lambda fake: [
        {
            "title": Path(fake.files.display_path).stem,
            "model_name": Path(fake.files.display_path).stem,
            "filename": Path(fake.files.display_path).name,
            "hash": "8888888888",
            "sha256": "8" * 64,
            "config": None,
        }
    ],
    "/sdcpp/v1/capabilities": capabilities,
}


@dataclass
class RunningFake:
    """A fake served from a thread of this process (for callers that import it)."""

    server: FakeHttpServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:40123."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop listening and wait for the serving thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def build_server(argv: list[str]) -> tuple[FakeHttpServer, dict[str, float | None]]:
    """Parse the flags, bind the socket and wire the state (not serving yet)."""
    args = parse_flags(argv)
    modes = _fail_modes(args)
    defaults = rules.ServerDefaults(
        steps=int(args.steps or 20),
        cfg_scale=rules.f32(float(args.cfg_scale or 7.0)),
        guidance=rules.f32(float(args.guidance or 3.5)),
        sampler=args.sampling_method or None,
        scheduler=rules.scheduler_from_name(args.scheduler or ""),
        clip_skip=int(args.clip_skip) if args.clip_skip else -1,
        seed=int(args.seed) if args.seed is not None else 42,
        width=int(args.width or -1),
        height=int(args.height or -1),
        embed_metadata=not args.disable_image_metadata,
    )
    files = ModelFiles(
        **{
            key: getattr(args, key) or ""
            for key in ("model", "diffusion_model", "clip_l", "clip_g", "t5xxl", "llm", "vae")
        }
    )
    fake = FakeState(
        files=files,
        defaults=defaults,
        lora_dir=Path(args.lora_model_dir) if args.lora_model_dir else None,
        latency=float(args.fake_latency or os.environ.get("FAKE_SD_LATENCY") or 0),
        job_ttl=float(args.fake_job_ttl or os.environ.get("FAKE_SD_JOB_TTL") or 600),
        fail="500" if "500" in modes else ("garbage" if "garbage" in modes else None),
        wrong_count="wrong-count" in modes,
        die_after=int(modes["die-after"] or 0) if "die-after" in modes else None,
        verbose=bool(args.v or args.verbose),
    )
    if modes.get("slow-start"):
        fake.log("INFO ", f"slow start: listening in {modes['slow-start']} s")
        time.sleep(float(modes["slow-start"] or 0))
    host, port = args.listen_ip or "127.0.0.1", int(args.listen_port or 1234)
    try:
        server = FakeHttpServer((host, port), SdServerHandler)
    except OSError as error:
        fake.log("ERROR", f"failed to listen on {host}:{port}: {error.strerror}")
        raise SystemExit(1) from None
    server.fake = fake
    server.jobs = JobManager(fake)
    return server, modes


def _warm_up() -> None:
    """Import Pillow in the background so the first image is not slowed by it."""
    import PIL.Image
    import PIL.ImageDraw
    import PIL.ImageOps
    import PIL.PngImagePlugin  # noqa: F401


def start_in_thread(argv: list[str]) -> RunningFake:
    """Serve a fake from a background thread of this process (use port 0 for a free one)."""
    server, _ = build_server(argv)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return RunningFake(server, thread)


def main(argv: list[str] | None = None) -> int:
    """Run like sd-server until interrupted (or until a fault mode ends it)."""
    server, modes = build_server(sys.argv[1:] if argv is None else argv)
    host, port = server.server_address[:2]
    sys.stdout.write(f"listening on: http://{host!s}:{port}\n")
    sys.stdout.flush()
    if "down" in modes:
        server.fake.log("ERROR", "fake fault 'down': exiting right after listening")
        server.server_close()
        return 1
    threading.Thread(target=_warm_up, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if server.stopped_by_down:
        server.fake.log("ERROR", "fake fault 'down': stopped listening on request")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
