"""A1111's one "loaded model" mapped onto tsr's backends: which backend A1111 requests without
a checkpoint run on, what it holds, and switching it (a job queued behind its work)."""

from __future__ import annotations

import asyncio
from typing import Any

from tsr.config import Config
from tsr.errors import JobFailed
from tsr.families import get_family
from tsr.server.a1111.catalog import CatalogFile, load_files
from tsr.server.a1111.front import A1111Front
from tsr.server.backends import Backend, BackendManager
from tsr.server.jobs import JobQueue


async def active_backend(manager: BackendManager) -> Backend:
    """The backend a request without a checkpoint runs on: the first ready one holding a model
    (as the job queue chooses), else the first holding one, else the first configured."""
    first = manager.get(None)
    if not first.is_managed() and first.model is None and not first.model_name:
        # an external sd-server not asked yet: it may well hold a model
        await manager.refresh(first.name)
    holding = [b for b in manager.backends if b.model is not None or b.model_name]
    ready = [b for b in holding if b.state == "ready"]
    return (ready or holding or [first])[0]


def loaded_file(backend: Backend, files: list[CatalogFile]) -> CatalogFile | None:
    """The models-database entry of the checkpoint a backend holds, if tsr knows it."""
    if backend.model is None:
        return None
    wanted = backend.model.resolve()
    return next((f for f in files if f.path.resolve() == wanted), None)


async def current_options(
    manager: BackendManager, config: Config, front: A1111Front
) -> dict[str, Any]:
    """GET /sdapi/v1/options: the active backend's model as A1111 names it, and a few of
    A1111's settings with the values tsr works with."""
    backend = await active_backend(manager)
    files = await asyncio.to_thread(load_files, config, "checkpoint")
    loaded = loaded_file(backend, files)
    title = loaded.title if loaded else (backend.model_name or "")
    clip_skip = front.clip_skip or get_family(backend.family).clip_skip or 1
    return {
        "sd_model_checkpoint": title,
        "sd_checkpoint_hash": loaded.sha256 if loaded else None,
        "sd_checkpoints_limit": 1,
        "sd_vae": "Automatic",
        "CLIP_stop_at_last_layers": clip_skip,
        "samples_format": "png",
        "samples_save": True,
        "save_images_add_number": True,
        "grid_save": False,
        "return_grid": False,
        "enable_pnginfo": True,
        "eta_noise_seed_delta": 0,
        "live_previews_enable": False,
        "show_progress_every_n_steps": -1,
        "sd_lora": "None",
        "lora_preferred_name": "Filename",
        # beyond A1111: which tsr backend these describe
        "tsr_backend": backend.name,
    }


async def switch_active(queue: JobQueue, manager: BackendManager, checkpoint: CatalogFile) -> None:
    """Make the active backend hold `checkpoint`: a switch job queued behind its work, waited
    for; nothing happens when it holds it already."""
    backend = await active_backend(manager)
    if backend.model is not None and backend.model.resolve() == checkpoint.path.resolve():
        return
    job = await queue.submit_switch(checkpoint.path, backend.name)
    done = await queue.wait(job.id)
    if done.state != "done":
        raise JobFailed(
            f"switching backend {backend.name} to {checkpoint.relative} {done.state}: "
            f"{done.error or 'no reason given'}"
        )
