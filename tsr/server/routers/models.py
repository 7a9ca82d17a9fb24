"""Models routes: checkpoints to generate with, the backends' models, switching, LoRAs by family,
and the sampler, scheduler and family names a generation form offers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tsr.errors import Conflict
from tsr.families import Family, all_families
from tsr.samplers import SAMPLER_LABELS, SCHEDULER_LABELS, SDCPP_SAMPLERS, SDCPP_SCHEDULERS
from tsr.schemas.db_api import is_path_ref
from tsr.schemas.generation_api import (
    ActiveBackend,
    CheckpointPage,
    LoraPage,
    SamplingChoice,
    SwitchRequest,
)
from tsr.schemas.jobs import JobOut
from tsr.server.backends import BackendManager
from tsr.server.catalog import LoadedModel, files_at, list_checkpoints, list_loras
from tsr.server.deps import StateDep, service
from tsr.server.generation import Checkpoint
from tsr.server.jobs import JobQueue

router = APIRouter(prefix="/api", tags=["models"])
CAPABILITIES = ("models",)

ManagerDep = Annotated[BackendManager, Depends(service(BackendManager))]
QueueDep = Annotated[JobQueue, Depends(service(JobQueue))]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, description="`next_offset` of the last page.")]
Text = Annotated[
    str | None, Query(max_length=200, description="Text in the file or CivitAI model name.")
]
FamilyName = Annotated[str | None, Query(max_length=64, description="sd15, sdxl, pony, ...")]


# the backends live on the event loop: these dependencies read them there, endpoints that
# touch the database then run in a worker thread
async def loaded_models(state: StateDep) -> list[LoadedModel]:
    """What each backend holds now (none without a backend manager)."""
    manager = state.find(BackendManager)
    if manager is None:
        return []
    return [
        LoadedModel(b.name, str(b.model) if b.model else None, b.model_name)
        for b in manager.backends
        if b.model or b.model_name
    ]


async def active_family(state: StateDep) -> str | None:
    """The family of the checkpoint a request without one would use (as placement picks it)."""
    manager = state.find(BackendManager)
    if manager is None:
        return None
    holding = [b for b in manager.backends if b.model or b.model_name]
    ready = [b for b in holding if b.state == "ready"]
    chosen = (ready or holding)[:1]
    return chosen[0].family if chosen else None


LoadedDep = Annotated[list[LoadedModel], Depends(loaded_models)]
ActiveFamilyDep = Annotated[str | None, Depends(active_family)]


@router.get("/models", response_model=CheckpointPage)
def get_models(
    loaded: LoadedDep,
    family: FamilyName = None,
    q: Text = None,
    kind: Annotated[
        str, Query(max_length=32, description="checkpoint (default), vae, embedding, lora...")
    ] = "checkpoint",
    hidden: Annotated[bool, Query(description="Include the files the user hid.")] = False,
    limit: Limit = 200,
    offset: Offset = 0,
) -> CheckpointPage:
    """Checkpoints present on disk, by name, with family, CivitAI link and `loaded_on`."""
    return list_checkpoints(
        loaded,
        kind=kind,
        family=family,
        text=q,
        include_hidden=hidden,
        limit=limit,
        offset=offset,
    )


@router.get("/models/active", response_model=list[ActiveBackend])
async def get_active(
    manager: ManagerDep,
    refresh: Annotated[
        bool, Query(description="Ask each sd-server what it holds before answering.")
    ] = False,
) -> list[ActiveBackend]:
    """Every backend: its state, the checkpoint it holds, that file's database entry, family."""
    if refresh:
        await asyncio.gather(*(manager.refresh(b.name) for b in manager.backends))
    backends = manager.status()
    files = await asyncio.to_thread(files_at, [b.model for b in backends if b.model])
    return [
        ActiveBackend(**b.model_dump(), file=files.get(b.model) if b.model else None)
        for b in backends
    ]


@router.post("/models/switch", response_model=JobOut, status_code=202)
async def switch_model(body: SwitchRequest, queue: QueueDep) -> JobOut:
    """Queue a switch job: the backend (default: the first) loads the checkpoint once the jobs
    queued before it have run. Checkpoints outside the model roots are refused (403)."""
    target = queue.manager.get(body.backend)
    checkpoint = await asyncio.to_thread(_checkpoint_for, queue, body.model)
    assert checkpoint.path is not None
    if checkpoint.family is not None and not target.serves_family(checkpoint.family):
        allowed = ", ".join(target.config.families)
        raise Conflict(
            f"backend {target.name} serves only {allowed}; {checkpoint.name} is {checkpoint.family}"
        )
    return await queue.submit_switch(checkpoint.path, target.name)


def _checkpoint_for(queue: JobQueue, ref: int | str) -> Checkpoint:
    # a path must lie in a checkpoint root before anything else is done with it
    if isinstance(ref, str) and is_path_ref(ref):
        return queue.resolver.checkpoint_at(queue.manager.check_model(Path(ref)))
    return queue.resolver.checkpoint(ref)


@router.get("/models/loras", response_model=LoraPage)
def get_loras(
    active: ActiveFamilyDep,
    family: Annotated[
        str | None,
        Query(max_length=64, description="Check against this family (default: the active one)."),
    ] = None,
    show_all: Annotated[
        bool, Query(alias="all", description="Also list the LoRAs that do not fit, marked.")
    ] = False,
    q: Text = None,
    hidden: Annotated[bool, Query(description="Include the files the user hid.")] = False,
    limit: Limit = 200,
    offset: Offset = 0,
) -> LoraPage:
    """LoRAs for a family's architecture, with CivitAI names and a trigger-word preview."""
    return list_loras(
        family or active,
        show_all=show_all,
        text=q,
        include_hidden=hidden,
        limit=limit,
        offset=offset,
    )


def _choices(labels: dict[str, str], names: tuple[str, ...]) -> list[SamplingChoice]:
    # the labelled ones first (in WebUI order), then the sd.cpp names without a label
    label_of = {name: label for label, name in labels.items()}
    named = [SamplingChoice(name=name, label=label) for label, name in labels.items()]
    return named + [SamplingChoice(name=name) for name in names if name not in label_of]


@router.get("/samplers", response_model=list[SamplingChoice])
async def get_samplers() -> list[SamplingChoice]:
    """Samplers a request may name: sd.cpp names, with WebUI labels where they have one."""
    return _choices(SAMPLER_LABELS, SDCPP_SAMPLERS)


@router.get("/schedulers", response_model=list[SamplingChoice])
async def get_schedulers() -> list[SamplingChoice]:
    """Schedulers a request may name: sd.cpp names, with WebUI labels where they have one."""
    return _choices(SCHEDULER_LABELS, SDCPP_SCHEDULERS)


@router.get("/families", response_model=list[Family])
async def get_families() -> list[Family]:
    """Every model family with its generation defaults (sizes, steps, cfg, sampler, prompts)."""
    return list(all_families().values())
