"""The fake sd-server's state: fault switches, the LoRA list, serialized generation, native jobs."""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.sd_server_output import (
    Generation,
    ModelFiles,
    infotext,
    render_image,
    sdapi_info,
)
from tests.fakes.sd_server_requests import (
    LORA_EXTENSIONS,
    SAMPLERS,
    SCHEDULERS,
    HttpError,
    LoraTable,
    ServerDefaults,
)

MAX_PENDING_JOBS = 64
FAIL_MODES = ("500", "garbage", "wrong-count", "die-after")


class GenerationFailed(Exception):
    """sd.cpp produced no image (the `500` fault)."""


@dataclass
class FakeState:
    """Everything the handlers share; switches can change while the fake runs."""

    files: ModelFiles
    defaults: ServerDefaults
    lora_dir: Path | None
    latency: float = 0.0
    job_ttl: float = 600.0
    fail: str | None = None
    wrong_count: bool = False
    die_after: int | None = None
    verbose: bool = False
    generations: int = 0
    # sd-server validates `lora` paths against the list as of the last GET /sdapi/v1/loras:
    # right after start that list is empty.
    lora_table: LoraTable = field(default_factory=LoraTable)
    cached_loras: list[dict[str, str]] = field(default_factory=list)
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=2000))
    released: threading.Event = field(default_factory=threading.Event)
    generation_lock: threading.Lock = field(default_factory=threading.Lock)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.released.set()
        self.start_job_ttl = self.job_ttl

    def log(self, level: str, message: str) -> None:
        """One server-log line on stderr."""
        sys.stderr.write(f"[{level}] {message}\n")
        sys.stderr.flush()

    def record(self, method: str, path: str) -> None:
        """Remember a request (tests check what reached the server)."""
        if not path.startswith("/__fake__/"):
            self.requests.append((method, path))

    def scan_loras(self) -> list[dict[str, str]]:
        """Recursive scan of --lora-model-dir: name = stem, path relative with its extension."""
        if self.lora_dir is None or not self.lora_dir.is_dir():
            return []
        found = [
            path
            for path in self.lora_dir.rglob("*")
            if path.suffix.lower() in LORA_EXTENSIONS and path.is_file()
        ]
        return [
            {"name": path.stem, "path": path.relative_to(self.lora_dir).as_posix()}
            for path in sorted(found)
        ]

    def refresh_loras(self) -> list[dict[str, str]]:
        """GET /sdapi/v1/loras: answer the scan and make it the list requests are checked with."""
        entries = self.scan_loras()
        self.lora_table.paths = {entry["path"] for entry in entries}
        self.cached_loras = entries
        return entries

    def infotext(self, gen: Generation, seed: int) -> str:
        """The `parameters` text of image `seed`."""
        return infotext(self.files, gen, seed)

    def info(self, gen: Generation, texts: list[str]) -> str:
        """The sdapi `info` JSON string."""
        return sdapi_info(self.files, gen, texts)

    def generate(self, gen: Generation) -> list[bytes]:
        """Make the images, one generation at a time (sd-server's one lock)."""
        with self.generation_lock:
            if self.die_after is not None and self.generations >= self.die_after:
                self.log("ERROR", f"fake fault 'die-after {self.die_after}': process exits now")
                os._exit(1)
            self.generations += 1
            self.log(
                "INFO ",
                f"generating {gen.batch_count} image(s) {gen.resolved_width}x"
                f"{gen.resolved_height}, {gen.steps} steps, seed {gen.seed}",
            )
            started = time.monotonic()
            while not self.released.wait(0.05):
                pass
            if self.fail == "500":
                self.log("ERROR", "generate_image failed (fake fault '500')")
                raise GenerationFailed("generate_image returned no results")
            count = gen.batch_count - 1 if self.wrong_count else gen.batch_count
            images = []
            for index in range(count):
                if self.latency:
                    time.sleep(self.latency)
                images.append(render_image(self.files, gen, gen.seed + index))
            self.log("INFO ", f"generate_image completed in {time.monotonic() - started:.2f}s")
            return images

    def set_mode(self, change: dict[str, Any]) -> None:
        """POST /__fake__/mode: switch faults, latency, hold and job expiry while running."""
        if "fail" in change:
            mode = change["fail"]
            name, _, arg = str(mode or "").replace("=", ":").partition(":")
            if mode is not None and name not in FAIL_MODES:
                raise ValueError(f"unknown fake fault mode: {mode}")
            self.fail = name if name in ("500", "garbage") else None
            self.wrong_count = name == "wrong-count"
            self.die_after = int(arg or 0) + self.generations if name == "die-after" else None
        if "latency" in change:
            self.latency = float(change["latency"])
        if "job_ttl" in change:
            self.job_ttl = float(change["job_ttl"])
        if "hold" in change:
            (self.released.clear if change["hold"] else self.released.set)()

    def reset(self) -> None:
        """As if freshly started: no faults, no latency, no hold, LoRA list and log emptied."""
        self.set_mode({"fail": None, "latency": 0.0, "hold": False, "job_ttl": self.start_job_ttl})
        self.lora_table.paths = set()
        self.cached_loras = []
        self.requests.clear()

    def state(self) -> dict[str, Any]:
        """GET /__fake__/state."""
        return {
            "fail": "wrong-count" if self.wrong_count else self.fail,
            "die_after": self.die_after,
            "latency": self.latency,
            "hold": not self.released.is_set(),
            "job_ttl": self.job_ttl,
            "generations": self.generations,
            "lora_list": sorted(self.lora_table.paths),
            "requests": [list(item) for item in self.requests],
        }


@dataclass
class Job:
    """One native async job."""

    id: str
    gen: Generation
    created: int
    status: str = "queued"
    started: int = 0
    completed: int = 0
    completed_at: float = 0.0
    images: list[bytes] = field(default_factory=list)
    error_code: str = ""
    error_message: str = ""


class JobManager:
    """The native job queue (POST /sdcpp/v1/img_gen) and its one worker thread."""

    def __init__(self, fake: FakeState) -> None:
        self.fake = fake
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.expired: dict[str, float] = {}
        self.next_id = 0
        self.changed = threading.Condition()
        threading.Thread(target=self._work, name="jobs", daemon=True).start()

    def _purge(self) -> None:
        now = time.monotonic()
        self.expired = {job_id: until for job_id, until in self.expired.items() if until > now}
        ttl = self.fake.job_ttl
        for job_id, job in list(self.jobs.items()):
            if job.completed_at and now - job.completed_at >= ttl:
                # sd-server answers 410 for an expired id for max(ttl, 60 s), then 404.
                self.expired[job_id] = now + max(ttl, 60.0)
                del self.jobs[job_id]

    def _find(self, job_id: str) -> Job:
        self._purge()
        if job_id in self.jobs:
            return self.jobs[job_id]
        if job_id in self.expired:
            raise HttpError(410, {"error": "job expired"})
        raise HttpError(404, {"error": "job not found"})

    def _json(self, job: Job) -> dict[str, Any]:
        position = self.queue.index(job.id) + 1 if job.status == "queued" else 0
        data: dict[str, Any] = {
            "id": job.id,
            "kind": "img_gen",
            "status": job.status,
            "created": job.created,
            "started": job.started or None,
            "completed": job.completed or None,
            "queue_position": position,
            "result": None,
            "error": None,
        }
        if job.status == "completed":
            images = [
                {"index": index, "b64_json": base64.b64encode(image).decode()}
                for index, image in enumerate(job.images)
            ]
            data["result"] = {"output_format": job.gen.output_format, "images": images}
        elif job.status in ("failed", "cancelled"):
            data["error"] = {"code": job.error_code, "message": job.error_message}
        return data

    def submit(self, gen: Generation) -> dict[str, Any]:
        """Queue a job: 202 body, or 429 when 64 are pending."""
        with self.changed:
            self._purge()
            pending = sum(job.status in ("queued", "generating") for job in self.jobs.values())
            if pending >= MAX_PENDING_JOBS:
                raise HttpError(429, {"error": "job queue is full"})
            now = int(time.time())
            job = Job(id=f"job_{now:x}_{self.next_id:08x}", gen=gen, created=now)
            self.next_id += 1
            self.jobs[job.id] = job
            self.queue.append(job.id)
            self.changed.notify()
        return {
            "id": job.id,
            "kind": "img_gen",
            "status": "queued",
            "created": job.created,
            "poll_url": f"/sdcpp/v1/jobs/{job.id}",
        }

    def describe(self, job_id: str) -> dict[str, Any]:
        """GET /sdcpp/v1/jobs/{id}."""
        with self.changed:
            return self._json(self._find(job_id))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """POST /sdcpp/v1/jobs/{id}/cancel: queued → cancelled; generating → 409."""
        with self.changed:
            job = self._find(job_id)
            if job.status == "generating":
                raise HttpError(
                    409, {"error": "job is currently generating and cannot be interrupted yet"}
                )
            if job.status == "queued":
                self.queue.remove(job.id)
                job.status, job.completed = "cancelled", int(time.time())
                job.completed_at = time.monotonic()
                job.error_code, job.error_message = "cancelled", "job cancelled by client"
            return self._json(job)

    def _work(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: bool(self.queue))
                job = self.jobs[self.queue.popleft()]
                job.status, job.started = "generating", int(time.time())
            try:
                images, error = self.fake.generate(job.gen), ""
            except GenerationFailed as failure:
                images, error = [], str(failure)
            with self.changed:
                job.completed, job.completed_at = int(time.time()), time.monotonic()
                if error:
                    job.status, job.error_code, job.error_message = (
                        "failed",
                        "generation_failed",
                        error,
                    )
                else:
                    job.status, job.images = "completed", images


def capabilities(fake: FakeState) -> dict[str, Any]:
    """GET /sdcpp/v1/capabilities, shaped like the recorded answer."""
    d = fake.defaults
    defaults = {
        "auto_resize_ref_image": True,
        "batch_count": 1,
        "cache_mode": "",
        "cache_option": "",
        "clip_skip": d.clip_skip,
        "control_strength": 0.8999999761581421,
        "height": d.height if d.height > 0 else 512,
        "hires": {
            "custom_sigmas": [],
            "denoising_strength": 0.699999988079071,
            "enabled": False,
            "scale": 2.0,
            "steps": 0,
            "target_height": 0,
            "target_width": 0,
            "upscale_tile_size": 128,
            "upscaler": "Latent",
        },
        "increase_ref_index": False,
        "ip_adapter_strength": 1.0,
        "negative_prompt": "",
        "output_compression": 100,
        "output_format": "png",
        "prompt": "",
        "qwen_image_layers": 3,
        "sample_params": {
            "eta": None,
            "flow_shift": None,
            "guidance": {
                "distilled_guidance": d.guidance,
                "img_cfg": None,
                "slg": {
                    "layer_end": 0.20000000298023224,
                    "layer_start": 0.009999999776482582,
                    "layers": [7, 8, 9],
                    "scale": 0.0,
                },
                "txt_cfg": d.cfg_scale,
            },
            "sample_method": d.sampler or "default",
            "sample_steps": d.steps,
            "scheduler": d.scheduler or "default",
            "shifted_timestep": 0,
        },
        "scm_mask": "",
        "scm_policy_dynamic": True,
        "seed": d.seed,
        "strength": 0.75,
        "vae_tiling_params": {
            "enabled": False,
            "extra_tiling_args": "",
            "rel_size_x": 0.0,
            "rel_size_y": 0.0,
            "target_overlap": 0.5,
            "temporal_tiling": False,
            "tile_size_x": 0,
            "tile_size_y": 0,
        },
        "width": d.width if d.width > 0 else 512,
    }
    features = {
        name: name != "cancel_generating"
        for name in [
            "cache",
            "cancel_generating",
            "cancel_queued",
            "control_image",
            "hires",
            "init_image",
            "ip_adapter_image",
            "lora",
            "mask_image",
            "ref_images",
            "vae_tiling",
        ]
    }
    model = Path(fake.files.display_path)
    upscalers = ["None", "Lanczos", "Nearest", "Latent", "Latent (nearest)"]
    upscalers += ["Latent (nearest-exact)", "Latent (antialiased)", "Latent (bicubic)"]
    upscalers += ["Latent (bicubic antialiased)"]
    return {
        "current_mode": "img_gen",
        "defaults": defaults,
        "defaults_by_mode": {"img_gen": defaults},
        "features": features,
        "features_by_mode": {"img_gen": features},
        "limits": {
            "max_batch_count": 8,
            "max_height": 4096,
            "max_queue_size": MAX_PENDING_JOBS,
            "max_width": 4096,
            "min_height": 64,
            "min_width": 64,
        },
        "loras": list(fake.cached_loras),
        "model": {"name": model.name, "stem": model.stem, "path": str(model)},
        "output_formats": ["png", "jpeg"],
        "output_formats_by_mode": {"img_gen": ["png", "jpeg"]},
        "samplers": list(SAMPLERS),
        "schedulers": list(SCHEDULERS),
        "supported_modes": ["img_gen"],
        "upscalers": [{"name": name} for name in upscalers],
    }
