"""The A1111-compatible front, `/sdapi/v1/...`: existing A1111 clients and scripts work unchanged.

It speaks A1111's dialect (WebUI sampler labels, `<lora:name:w>` prompt tags, `override_settings`,
A1111's `info` keys) and turns it into tsr's: every generation goes through the job queue, so the
queue order holds and every image is filed into the gallery with its full parameters. Auth: the
token as a Bearer token, or as the password of HTTP Basic (what A1111 clients send).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from tsr import __version__
from tsr.config import Config
from tsr.errors import BadRequest, JobFailed, TsrError
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageOut
from tsr.schemas.jobs import JobOut
from tsr.server.a1111.backend_model import current_options, switch_active
from tsr.server.a1111.catalog import find_checkpoint, load_files
from tsr.server.a1111.front import HISTORY, front_of, progress_report, unfinished_jobs
from tsr.server.a1111.models import (
    A1111Generation,
    ImageResponse,
    Img2ImgRequest,
    LoraItem,
    MemoryResponse,
    ProgressResponse,
    SamplerItem,
    SchedulerItem,
    ScriptsList,
    SdModelItem,
    Txt2ImgRequest,
)
from tsr.server.a1111.names import sampler_names, scheduler_names
from tsr.server.a1111.rescan import scan_work
from tsr.server.a1111.translate import (
    build_info,
    clip_skip_setting,
    echo_parameters,
    plan_generation,
)
from tsr.server.deps import ConfigDep, StateDep, service
from tsr.server.jobs import JobQueue
from tsr.server.routers.models import ManagerDep, QueueDep
from tsr.server.tasks import TaskRunner

router = APIRouter(prefix="/sdapi/v1", tags=["a1111"])
CAPABILITIES = ("a1111",)

GalleryDep = Annotated[GalleryStore, Depends(service(GalleryStore))]
TasksDep = Annotated[TaskRunner, Depends(service(TaskRunner))]
#: seconds between looks at a refresh scan's task
SCAN_POLL = 0.05


# ---- generation --------------------------------------------------------------------------


@router.post("/txt2img", response_model=ImageResponse)
async def txt2img(
    body: Txt2ImgRequest, state: StateDep, queue: QueueDep, gallery: GalleryDep
) -> ImageResponse:
    """Generate as A1111 does, through tsr's job queue; images are filed into the gallery.

    `<lora:name:w>` tags become LoRAs (an unknown name answers 404 with close names),
    `sampler_name` takes WebUI labels and legacy ones like "DPM++ 2M Karras",
    `override_settings.sd_model_checkpoint` switches the model first, `n_iter` queues that many
    jobs. Fields left out take the checkpoint family's defaults.
    """
    return await _generate(body, state, queue, gallery)


@router.post("/img2img", response_model=ImageResponse)
async def img2img(
    body: Img2ImgRequest, state: StateDep, queue: QueueDep, gallery: GalleryDep
) -> ImageResponse:
    """img2img as A1111 does it, through the job queue: one init image (its size is the output
    size; a different `width`/`height` resizes it per `resize_mode` 0 or 1) and
    `denoising_strength`; the rest as for txt2img. Inpainting masks are refused."""
    return await _generate(body, state, queue, gallery)


async def _generate(
    body: A1111Generation, state: StateDep, queue: JobQueue, gallery: GalleryStore
) -> ImageResponse:
    front = front_of(state)
    plan = await asyncio.to_thread(plan_generation, body, state.config, front.clip_skip)
    submitted: list[JobOut] = []
    key = front.track()
    try:
        try:
            for request in plan.requests:
                submitted.append(await queue.submit(request))
                front.add(key, submitted[-1].id)
        except TsrError:
            for job in submitted:  # all of the request or nothing
                with contextlib.suppress(TsrError):
                    await queue.cancel(job.id)
            raise
        finished = [await queue.wait(job.id) for job in submitted]
    finally:
        front.untrack(key)
    failed = [job for job in finished if job.state == "failed"]
    if failed:
        raise JobFailed(f"generation failed (tsr job {failed[0].id}): {failed[0].error}")
    image_ids = [image_id for job in finished for image_id in job.image_ids]
    images, pngs = await asyncio.to_thread(_read_images, gallery, image_ids)
    return ImageResponse(
        images=[base64.b64encode(png).decode() for png in pngs] if body.send_images else [],
        parameters=echo_parameters(body),
        info=build_info(body, plan, finished, images),
    )


def _read_images(gallery: GalleryStore, image_ids: list[int]) -> tuple[list[ImageOut], list[bytes]]:
    # the saved files: they carry tsr's A1111 `parameters` text, as A1111's answers do
    images = [gallery.get(image_id) for image_id in image_ids]
    return images, [gallery.path_of(image_id).read_bytes() for image_id in image_ids]


# ---- progress, interrupt, skip -----------------------------------------------------------


@router.get("/progress", response_model=ProgressResponse)
async def progress(state: StateDep, queue: QueueDep) -> ProgressResponse:
    """A1111's progress for tsr's job queue: the job running now (from any front end), the jobs
    left, and an estimate (sd-server reports no steps); `current_image` is always null."""
    recent = queue.list("done")[-HISTORY:]
    return progress_report(unfinished_jobs(queue), recent, front_of(state))


@router.post("/interrupt")
async def interrupt(state: StateDep, queue: QueueDep) -> dict[str, Any]:
    """Cancel the jobs of the A1111 requests in flight that have not reached sd-server; one
    already generating there runs to its end (sd-server cannot interrupt). Answers `{}`."""
    await front_of(state).interrupt(queue)
    return {}


@router.post("/skip")
async def skip(state: StateDep, queue: QueueDep) -> None:
    """Cancel the next unfinished job of the A1111 requests in flight, if it has not reached
    sd-server yet; the request answers with the other images. Answers null."""
    await front_of(state).skip(queue)


# ---- models, samplers, schedulers ----------------------------------------------------------


@router.get("/sd-models", response_model=list[SdModelItem])
def sd_models(config: ConfigDep) -> list[SdModelItem]:
    """Checkpoints under the checkpoint roots, from tsr's models database (real hashes)."""
    return [
        SdModelItem(
            title=f.title,
            model_name=f.model_name,
            hash=f.short_hash,
            sha256=f.sha256,
            filename=str(f.path),
            config=None,
        )
        for f in load_files(config, "checkpoint")
        if not f.hidden
    ]


@router.get("/loras", response_model=list[LoraItem])
def loras(config: ConfigDep) -> list[LoraItem]:
    """LoRAs under the LoRA roots: the names `<lora:name:w>` tags use, with training metadata."""
    return [
        LoraItem(name=f.stem, alias=f.alias, path=str(f.path), metadata=f.metadata)
        for f in load_files(config, "lora")
        if not f.hidden
    ]


@router.get("/samplers", response_model=list[SamplerItem])
async def samplers() -> list[SamplerItem]:
    """The samplers tsr accepts: WebUI labels (with A1111's and sd.cpp's names as aliases),
    then sd.cpp methods without a WebUI label."""
    return [
        SamplerItem(name=s.name, aliases=list(s.aliases), options=s.options)
        for s in sampler_names()
    ]


@router.get("/schedulers", response_model=list[SchedulerItem])
async def schedulers() -> list[SchedulerItem]:
    """The schedulers tsr accepts, A1111's names and labels first, then sd.cpp's own."""
    return [
        SchedulerItem(
            name=s.name,
            label=s.label,
            aliases=list(s.aliases) if s.aliases is not None else None,
            default_rho=s.default_rho,
            need_inner_model=s.need_inner_model,
        )
        for s in scheduler_names()
    ]


@router.post("/refresh-checkpoints")
async def refresh_checkpoints(config: ConfigDep, tasks: TasksDep) -> None:
    """Rescan the checkpoint roots into the models database and answer once the scan is done
    (it runs as a `scan` task, shown by `GET /api/db/tasks`)."""
    await _rescan(config, tasks, "checkpoints")


@router.post("/refresh-loras")
async def refresh_loras(config: ConfigDep, tasks: TasksDep) -> None:
    """Rescan the LoRA roots into the models database and answer once the scan is done."""
    await _rescan(config, tasks, "loras")


async def _rescan(config: Config, tasks: TaskRunner, kind: str) -> None:
    model_roots = config.model_roots()
    # a root on a slow mount must not hold up the event loop
    roots = await asyncio.to_thread(lambda: [r for r in model_roots[kind] if r.is_dir()])
    if not roots:
        return
    task = tasks.submit(
        "scan", {"roots": [str(r) for r in roots]}, scan_work(roots, model_roots), queue=True
    )
    while not task.finished_state:
        await asyncio.sleep(SCAN_POLL)
        task = tasks.get(task.id)
    if task.state == "failed":
        raise JobFailed(f"the rescan of the {kind} roots failed: {task.error}")


# ---- options and server facts ----------------------------------------------------------------


@router.get("/options")
async def get_options(state: StateDep, manager: ManagerDep) -> dict[str, Any]:
    """`sd_model_checkpoint` (the title of the model tsr generates with when a request names
    none) and a few A1111 settings with the values tsr works with."""
    return await current_options(manager, state.config, front_of(state))


@router.post("/options")
async def set_options(
    body: Annotated[dict[str, Any], Body()], state: StateDep, queue: QueueDep
) -> None:
    """`sd_model_checkpoint` switches the model (a switch job, waited for);
    `CLIP_stop_at_last_layers` becomes the clip skip of later A1111 requests; other keys are
    accepted and ignored."""
    front = front_of(state)
    clip_skip = None
    if "CLIP_stop_at_last_layers" in body:
        clip_skip = clip_skip_setting(body["CLIP_stop_at_last_layers"])
    wanted = body.get("sd_model_checkpoint")
    if wanted is not None:
        if not isinstance(wanted, str) or not wanted.strip():
            raise BadRequest("sd_model_checkpoint must name a checkpoint")
        files = await asyncio.to_thread(load_files, state.config, "checkpoint")
        await switch_active(queue, queue.manager, find_checkpoint(files, wanted))
    if clip_skip is not None:
        front.clip_skip = clip_skip


@router.get("/cmd-flags")
async def cmd_flags() -> dict[str, Any]:
    """A few of A1111's command-line flags, as tsr stands (no credentials, ever)."""
    return {
        "api": True,
        "nowebui": True,
        "api_log": False,
        "lowvram": False,
        "medvram": False,
        "skip_version_check": True,
        "tsr_version": __version__,
    }


@router.get("/memory", response_model=MemoryResponse)
async def memory() -> MemoryResponse:
    """The tsr host's RAM; the GPU belongs to sd-server, which reports no memory figures."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        free = os.sysconf("SC_AVPHYS_PAGES") * page
        ram: dict[str, Any] = {"free": free, "used": total - free, "total": total}
    except (ValueError, OSError) as exc:  # a system without these figures
        ram = {"error": f"this system does not report its memory ({exc})"}
    return MemoryResponse(
        ram=ram,
        cuda={"error": "tsr does not see the GPU: sd-server reports no memory figures"},
    )


@router.get("/sd-vae")
async def sd_vae() -> list[dict[str, Any]]:
    """No separate VAEs: sd-server uses the one its backend was started with."""
    return []


@router.get("/prompt-styles")
async def prompt_styles() -> list[dict[str, Any]]:
    """tsr has no prompt styles."""
    return []


@router.get("/upscalers")
async def upscalers() -> list[dict[str, Any]]:
    """No upscalers (tsr offers no hires fix); A1111's "None" entry only."""
    return [{"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 4}]


@router.get("/scripts", response_model=ScriptsList)
async def scripts() -> ScriptsList:
    """tsr runs no A1111 scripts."""
    return ScriptsList()


@router.get("/embeddings")
async def embeddings() -> dict[str, Any]:
    """tsr loads no textual-inversion embeddings through this front."""
    return {"loaded": {}, "skipped": {}}
