"""Generation routes: queue a generation, list and follow jobs, the images a job made, cancel.

Jobs run in the job queue's workers, never in a request: `POST /api/generate` answers 202 with
the queued job at once; clients follow it through `GET /api/events` (topic `job`) or by polling
`GET /api/jobs/{id}`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from tsr.errors import NotFound
from tsr.gallery import GalleryStore
from tsr.schemas.generation_api import JobImage
from tsr.schemas.jobs import JobOut, JobState
from tsr.server.deps import service
from tsr.server.routers.models import QueueDep

router = APIRouter(prefix="/api", tags=["generate"])
CAPABILITIES = ("generate", "jobs")

GalleryDep = Annotated[GalleryStore, Depends(service(GalleryStore))]
JobId = Annotated[
    str, Path(max_length=64, pattern=r"^[0-9A-Za-z_-]+$", description="The job's id.")
]
#: a generation request; validated by the queue, so a bad field answers 400 naming it
GenerateBody = Annotated[
    dict[str, Any],
    Body(
        description="A GenerateRequest: `prompt` and any of checkpoint, loras, negative, "
        "width, height, steps, cfg, sampler, scheduler, seed, batch, clip_skip, backend, force, "
        "family_prompt; fields left out come from the checkpoint family's defaults.",
        examples=[{"prompt": "a lighthouse at dusk", "loras": [{"name": "ink", "weight": 0.8}]}],
    ),
]


@router.post("/generate", response_model=JobOut, status_code=202)
async def generate(body: GenerateBody, queue: QueueDep) -> JobOut:
    """Queue a generation on the backend for its checkpoint (switching first if needed).

    Every refusal (bad field, unknown model, a LoRA for another architecture without `force`)
    answers here, before anything is queued.
    """
    return await queue.submit(body)


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    queue: QueueDep,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    backend: Annotated[str | None, Query(max_length=64, description="Only this backend's.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The most recent this many.")] = 100,
) -> list[JobOut]:
    """Jobs queued, running and recently finished, oldest first (kept in memory only)."""
    if backend is not None:
        queue.manager.get(backend)  # an unknown name answers 404 listing the known ones
    return queue.list(state, backend)[-limit:]


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: JobId, queue: QueueDep) -> JobOut:
    """One job: state, place in the queue, progress, error, image ids and seeds."""
    return queue.get(job_id)


@router.get("/jobs/{job_id}/images", response_model=list[JobImage])
async def get_job_images(job_id: JobId, queue: QueueDep, gallery: GalleryDep) -> list[JobImage]:
    """The images a job saved, with their paths on the server and real seeds."""
    job = queue.get(job_id)
    return await asyncio.to_thread(_images, gallery, job.image_ids)


def _images(gallery: GalleryStore, image_ids: list[int]) -> list[JobImage]:
    found = []
    for image_id in image_ids:
        try:
            image = gallery.get(image_id)
            path = gallery.path_of(image_id)
        except NotFound:
            continue  # purged since the job made it
        found.append(
            JobImage(
                id=image.id,
                path=str(path),
                file=image.file,
                seed=image.seed,
                width=image.width,
                height=image.height,
            )
        )
    return found


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: JobId, queue: QueueDep) -> JobOut:
    """Cancel a queued job (409 with the reason when it is generating or has finished)."""
    return await queue.cancel(job_id)
