"""Where a generation runs: its checkpoint (default: the active one) and the backend for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tsr.errors import Conflict
from tsr.schemas.jobs import GenerateRequest, ResolvedGeneration
from tsr.server.backends import Backend, BackendManager
from tsr.server.generation import Checkpoint, InvalidRequest, ModelResolver, fill_defaults

#: the model a backend will hold once the jobs queued on it have run
PlannedModel = Callable[[Backend], Path | None]
#: how busy a backend is (jobs running and queued on it)
Load = Callable[[Backend], int]


@dataclass(frozen=True)
class Placement:
    """Where a request runs and everything it was resolved to."""

    backend: Backend
    checkpoint: Checkpoint
    resolved: ResolvedGeneration
    warnings: list[str]


async def place_request(
    manager: BackendManager,
    resolver: ModelResolver,
    request: GenerateRequest,
    planned: PlannedModel,
    load: Load,
) -> Placement:
    """Resolve the checkpoint and LoRAs, choose the backend, fill in the family defaults;
    every refusal raises here, before anything is queued."""
    if request.checkpoint is not None:
        checkpoint = await asyncio.to_thread(resolver.checkpoint, request.checkpoint)
        backend = choose_backend(manager, checkpoint, request.backend, planned, load)
    else:
        backend, checkpoint = await _active_checkpoint(manager, resolver, request.backend, planned)
    # a managed sd-server is started with the first LoRA root as its --lora-model-dir
    lora_dir = resolver.lora_roots[0] if backend.is_managed() else None

    def resolve() -> tuple[ResolvedGeneration, list[str]]:
        loras = [(resolver.lora(ref), ref.weight) for ref in request.loras]
        return fill_defaults(request, checkpoint, loras, lora_dir)

    resolved, warnings = await asyncio.to_thread(resolve)
    return Placement(backend, checkpoint, resolved, warnings)


def choose_backend(
    manager: BackendManager,
    checkpoint: Checkpoint,
    requested: str | None,
    planned: PlannedModel,
    load: Load,
) -> Backend:
    """The backend asked for, else one that holds (or will hold) the checkpoint, else the least
    busy one that can switch to it; Conflict when none can."""

    def holds(backend: Backend) -> bool:
        target = planned(backend)
        if target is not None and checkpoint.path is not None:
            return target.resolve() == checkpoint.path.resolve()
        # an external sd-server whose model the DB does not know: compare file stems
        return target is None and backend.model_name == checkpoint.name

    name, family = checkpoint.name, checkpoint.family
    if requested is not None:
        backend = manager.get(requested)
        if not backend.serves_family(family):
            allowed = ", ".join(backend.config.families)
            raise Conflict(f"backend {backend.name} serves only {allowed}; {name} is {family}")
        if not holds(backend):
            manager.check_switchable(backend, checkpoint.path)
        return backend
    candidates = [b for b in manager.backends if b.serves_family(family)]
    if not candidates:
        raise Conflict(f"no backend serves {family} checkpoints like {name}")
    holders = [b for b in candidates if holds(b)]
    if holders:
        return min(holders, key=load)
    switchable = [b for b in candidates if b.can_switch()]
    if not switchable:
        names = ", ".join(b.name for b in candidates)
        raise Conflict(
            f"no backend holds {name} and none can switch to it ({names}: external without "
            "switch_command); load it on one yourself or configure switch_command"
        )
    return min(switchable, key=lambda b: (load(b), b.state != "ready"))


async def _active_checkpoint(
    manager: BackendManager,
    resolver: ModelResolver,
    requested: str | None,
    planned: PlannedModel,
) -> tuple[Backend, Checkpoint]:
    if requested is not None:
        backend = manager.get(requested)
    else:
        holding = [b for b in manager.backends if planned(b) is not None or b.model_name]
        ready = [b for b in holding if b.state == "ready"]
        backend = (ready or holding or [manager.get(None)])[0]
    path = planned(backend)
    if path is None and not backend.is_managed() and not backend.model_name:
        # an external sd-server not asked yet: it may well hold a model
        await manager.refresh(backend.name)
        path = backend.model
    if path is not None:
        found = await asyncio.to_thread(resolver.checkpoint_at, path)
        if found.family is None and path == backend.model:
            found = Checkpoint(found.name, found.path, found.sha256, backend.family)
        return backend, found
    if backend.model_name:
        return backend, Checkpoint(backend.model_name, None, None, backend.family)
    raise InvalidRequest(
        "checkpoint", f"none given and backend {backend.name} has no model loaded; name one"
    )
