"""Generation requests: validation, checkpoint and LoRA resolution, family defaults, the LoRA guard.

The LoRA guard compares architectures, not families. A LoRA trained for another architecture
(an SD 1.5 LoRA on an SDXL checkpoint) cannot work and is refused unless the request sets `force`.
Families that share one architecture (sdxl, pony, illustrious) accept each other's LoRAs with a
warning on the job, because such LoRAs usually work, only less well.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tsr.config import Config
from tsr.db.database import db
from tsr.db.files import resolve_file
from tsr.errors import BadRequest, JobFailed, NotFound, RootViolation, TsrError
from tsr.families import (
    FALLBACK_FAMILY,
    Family,
    all_families,
    family_for_base_model,
    get_family,
)
from tsr.gallery import GalleryStore
from tsr.gallery.png import image_size, read_chunks
from tsr.paths import is_within
from tsr.samplers import (
    resolve_sampling,
    sampler_label,
    scheduler_label,
    to_sdcpp_sampler,
    to_sdcpp_scheduler,
)
from tsr.schemas.images import ImageOut, ImageParams, LoraUse
from tsr.schemas.jobs import (
    MAX_SIZE,
    MIN_SIZE,
    SIZE_STEP,
    GenerateRequest,
    LoraRef,
    ResolvedGeneration,
    ResolvedLora,
)
from tsr.schemas.models import ModelFile
from tsr.sdapi.models import GenerationParams, GenerationResult
from tsr.sdapi.validation import check_init_image


class InvalidRequest(BadRequest):
    """A generation request with a bad field; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_request(data: GenerateRequest | dict[str, Any]) -> GenerateRequest:
    """A validated request; the first bad field raises InvalidRequest naming it."""
    if isinstance(data, GenerateRequest):
        return data
    try:
        return GenerateRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "request"
        if error["type"] == "extra_forbidden":
            raise InvalidRequest(field, "is not a field of a generation request") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidRequest(field, message) from None


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint a job runs on: its file when tsr knows it, its stem, hash and family."""

    name: str
    path: Path | None
    sha256: str | None
    family: str | None


@dataclass(frozen=True)
class LoraFile:
    """A LoRA file under a LoRA root, with what the DB knows of it."""

    name: str
    path: Path
    root: Path
    sha256: str | None
    family: str | None
    architecture: str | None


class ModelResolver:
    """Turns names, ids and hashes into files under the model roots (sync; DB in the caller's
    thread, so call it from a worker thread)."""

    def __init__(self, config: Config) -> None:
        roots = config.model_roots()
        self.checkpoint_roots = roots["checkpoints"]
        self.lora_roots = roots["loras"]

    def checkpoint(self, ref: int | str) -> Checkpoint:
        """The checkpoint named by DB id, name or hash (NotFound, RootViolation, BadRequest)."""
        with db.connection_context():
            found = _lookup(ref, "checkpoint")
        path = Path(found.path)
        if not any(is_within(path, root) for root in self.checkpoint_roots):
            raise RootViolation(f"checkpoint {found.name} lies outside the checkpoint roots")
        if found.missing or not path.is_file():
            raise NotFound(f"checkpoint {found.name} is no longer at {path}; run `tsr db scan`")
        return Checkpoint(path.stem, path.resolve(), found.sha256, found.family)

    def checkpoint_at(self, path: Path) -> Checkpoint:
        """What the DB knows of the checkpoint at `path` (just its stem when nothing)."""
        with db.connection_context():
            try:
                found = resolve_file(str(path))
            except (NotFound, BadRequest):
                return Checkpoint(path.stem, path, None, None)
        return Checkpoint(path.stem, path, found.sha256, found.family)

    def family_of(self, path: Path) -> str | None:
        """The family the DB records for the checkpoint at `path` (None when unknown)."""
        return self.checkpoint_at(path).family

    def match_loaded(self, name: str | None, path: str | None) -> tuple[Path, str | None] | None:
        """The local checkpoint an sd-server reports holding, by its path, else by its stem."""
        with db.connection_context():
            for ref in (path, name):
                if not ref:
                    continue
                try:
                    found = _lookup(ref, "checkpoint")
                except (NotFound, BadRequest):
                    continue
                if not found.missing:
                    return Path(found.path), found.family
        return None

    def lora(self, ref: LoraRef) -> LoraFile:
        """The LoRA file a reference names; it must lie under a LoRA root."""
        if ref.path is not None:
            path = Path(ref.path).expanduser()
            if not path.is_absolute():
                path = self.lora_roots[0] / path
            root = next((r for r in self.lora_roots if is_within(path, r)), None)
            if root is None:
                raise RootViolation(f"LoRA {ref.path} lies outside the LoRA roots; not using it")
            if not path.is_file():
                raise NotFound(f"LoRA {ref.path} does not exist")
            with db.connection_context():
                try:
                    found: ModelFile | None = resolve_file(str(path.absolute()))
                except (NotFound, BadRequest):
                    found = None
        else:
            with db.connection_context():
                found = _lookup(ref.id if ref.id is not None else str(ref.name), "lora")
            path = Path(found.path)
            root = next((r for r in self.lora_roots if is_within(path, r)), None)
            if root is None:
                raise RootViolation(f"LoRA {found.name} lies outside the LoRA roots")
            if found.missing or not path.is_file():
                raise NotFound(f"LoRA {found.name} is no longer at {path}; run `tsr db scan`")
        if found is None:
            return LoraFile(path.stem, path, root, None, None, None)
        base_model = found.civitai.base_model if found.civitai else None
        family = found.family or family_for_base_model(base_model)
        return LoraFile(path.stem, path, root, found.sha256, family, found.architecture)


def _lookup(ref: int | str, kind: str) -> ModelFile:
    found = resolve_file(ref)
    if found.kind != kind:
        raise BadRequest(f"{found.name} is a {found.kind} file, not a {kind}")
    return found


def lora_guard(lora: LoraFile, checkpoint: Checkpoint, force: bool) -> str | None:
    """Refuse a LoRA of another architecture (unless forced); a warning for a near miss."""
    families = all_families()
    if checkpoint.family not in families:
        return f"LoRA {lora.name} was not checked: the family of {checkpoint.name} is unknown"
    target = families[checkpoint.family]
    known = families.get(lora.family or "")
    architecture = known.architecture if known else lora.architecture
    if architecture is None:
        return f"LoRA {lora.name} was not checked: its base model is unknown"
    made_for = known.label if known else architecture
    if architecture != target.architecture:
        message = (
            f"LoRA {lora.name} is made for {made_for} ({architecture}) but checkpoint "
            f"{checkpoint.name} is {target.label} ({target.architecture})"
        )
        if not force:
            raise BadRequest(f"{message}; choose a matching LoRA or set force to use it anyway")
        return message + "; used anyway (force)"
    if known and known.name != target.name:
        return (
            f"LoRA {lora.name} was trained on {made_for}, checkpoint {checkpoint.name} is "
            f"{target.label} (same architecture; results may differ)"
        )
    return None


def server_lora_path(lora: LoraFile, lora_dir: Path | None) -> str:
    """The LoRA's path as sd-server's `/sdapi/v1/loras` lists it: relative to its LoRA dir."""
    base = lora_dir or lora.root
    if not is_within(lora.path, base):
        raise BadRequest(
            f"LoRA {lora.name} lies in {lora.root}, but this backend only sees LoRAs under {base}"
        )
    try:
        relative = lora.path.absolute().relative_to(base.absolute())
    except ValueError:  # a symlink on the way: compare where both really are
        relative = lora.path.resolve().relative_to(base.resolve())
    return relative.as_posix()


def fill_defaults(
    request: GenerateRequest,
    checkpoint: Checkpoint,
    loras: list[tuple[LoraFile, float]],
    lora_dir: Path | None,
) -> tuple[ResolvedGeneration, list[str]]:
    """Every field decided: the request's values, else the checkpoint family's defaults."""
    warnings: list[str] = []
    family: Family = get_family(checkpoint.family)
    if checkpoint.family is None:
        warnings.append(f"the family of {checkpoint.name} is unknown; used {FALLBACK_FAMILY}")
    elif checkpoint.family != family.name:
        warnings.append(f"family {checkpoint.family} has no defaults; used {family.name}")
    sampler, scheduler = _sampling(request)
    sampler = sampler or to_sdcpp_sampler(family.sampler)
    scheduler = scheduler or to_sdcpp_scheduler(family.scheduler)
    resolved_loras = []
    seen: set[Path] = set()
    for lora, weight in loras:
        if lora.path.resolve() in seen:
            raise InvalidRequest(
                "loras", f"LoRA {lora.name} is listed twice; give it once with the weight you want"
            )
        seen.add(lora.path.resolve())
        warning = lora_guard(lora, checkpoint, request.force)
        if warning:
            warnings.append(warning)
        resolved_loras.append(
            ResolvedLora(
                name=lora.name,
                path=str(lora.path),
                server_path=server_lora_path(lora, lora_dir),
                weight=weight,
                sha256=lora.sha256,
                family=lora.family,
            )
        )
    prompt = request.prompt.strip()
    prefix = family.prompt_prefix
    if request.family_prompt and prefix and not prompt.startswith(prefix):
        prompt = f"{prefix}, {prompt}"
    negative = request.negative
    if negative is None:
        negative = family.negative if request.family_prompt else ""
    width, height = family.default_size
    init = _init_image(request)
    if init is not None:
        width, height = init[1], init[2]
    resolved = ResolvedGeneration(
        checkpoint=checkpoint.name,
        checkpoint_path=str(checkpoint.path) if checkpoint.path else None,
        checkpoint_sha256=checkpoint.sha256,
        family=family.name,
        prompt=prompt,
        negative=negative,
        width=request.width or width,
        height=request.height or height,
        steps=request.steps or family.steps,
        cfg=family.cfg if request.cfg is None else request.cfg,
        sampler=sampler_label(sampler),
        scheduler=scheduler_label(scheduler),
        seed=request.seed,
        batch=request.batch,
        clip_skip=family.clip_skip if request.clip_skip is None else request.clip_skip,
        loras=resolved_loras,
        init_image=init[0] if init else None,
        strength=(0.75 if request.strength is None else request.strength) if init else None,
    )
    return resolved, warnings


def _init_image(request: GenerateRequest) -> tuple[bytes, int, int] | None:
    """The decoded init image and its size; it must be what sd-server keeps as is."""
    if request.init_image is None:
        return None
    encoded = request.init_image.split(",", 1)[-1]  # a data: URL prefix is allowed
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "init_image", "is not valid base64; send the image file's bytes"
        ) from None
    try:
        image, width, height = check_init_image(data)
    except BadRequest as exc:
        raise InvalidRequest("init_image", str(exc)) from None
    for name, size in (("width", width), ("height", height)):
        if size % SIZE_STEP or not MIN_SIZE <= size <= MAX_SIZE:
            raise InvalidRequest(
                "init_image",
                f"its {name} is {size}; sd-server needs a multiple of {SIZE_STEP} from "
                f"{MIN_SIZE} to {MAX_SIZE}: resize the image",
            )
    for name, asked, size in (("width", request.width, width), ("height", request.height, height)):
        if asked is not None and asked != size:
            raise InvalidRequest(
                name, f"{asked} differs from the init image's {size}; leave it out"
            )
    return image, width, height


def _sampling(request: GenerateRequest) -> tuple[str | None, str | None]:
    # sd-server silently ignores names it does not know, so unknown ones are refused here
    if request.scheduler is not None:
        try:
            to_sdcpp_scheduler(request.scheduler)
        except BadRequest as exc:
            raise InvalidRequest("scheduler", str(exc)) from None
    try:
        return resolve_sampling(request.sampler, request.scheduler)
    except BadRequest as exc:
        raise InvalidRequest("sampler", str(exc)) from None


def generation_params(resolved: ResolvedGeneration) -> GenerationParams:
    """The request sd-server gets (sd.cpp sampler names, LoRA paths below its LoRA dir)."""
    return GenerationParams(
        prompt=resolved.prompt,
        negative_prompt=resolved.negative,
        width=resolved.width,
        height=resolved.height,
        steps=resolved.steps,
        cfg_scale=resolved.cfg,
        sampler=to_sdcpp_sampler(resolved.sampler),
        scheduler=to_sdcpp_scheduler(resolved.scheduler),
        seed=resolved.seed,
        batch_count=resolved.batch,
        clip_skip=resolved.clip_skip or None,
        loras=[(lora.server_path, lora.weight) for lora in resolved.loras],
        init_image=resolved.init_image,
        strength=0.75 if resolved.strength is None else resolved.strength,
    )


def check_images(result: GenerationResult, resolved: ResolvedGeneration) -> list[bytes]:
    """The batch's PNGs once all of them are there and well formed; JobFailed otherwise."""
    pngs = result.pngs
    if len(pngs) != resolved.batch:
        raise JobFailed(
            f"sd-server returned {len(pngs)} image(s) for a batch of {resolved.batch}; "
            "nothing was saved"
        )
    for index, png in enumerate(pngs):
        try:
            size = image_size(read_chunks(png))
        except BadRequest as exc:
            raise JobFailed(
                f"image {index + 1} from sd-server is unusable ({exc}); nothing was saved"
            ) from None
        if size != (resolved.width, resolved.height):
            raise JobFailed(
                f"sd-server returned a {size[0]}x{size[1]} image for a "
                f"{resolved.width}x{resolved.height} request; nothing was saved"
            )
    return pngs


def save_images(
    gallery: GalleryStore,
    pngs: list[bytes],
    seeds: list[int],
    resolved: ResolvedGeneration,
    job_id: str,
    backend: str,
) -> list[ImageOut]:
    """Save a checked batch to the gallery; if one save fails, the ones before are removed."""
    loras = [LoraUse(name=x.name, weight=x.weight, sha256=x.sha256) for x in resolved.loras]
    saved: list[ImageOut] = []
    for index, (png, seed) in enumerate(zip(pngs, seeds, strict=True)):
        params = ImageParams(
            checkpoint=resolved.checkpoint,
            checkpoint_sha256=resolved.checkpoint_sha256,
            loras=loras,
            prompt=resolved.prompt,
            negative=resolved.negative,
            width=resolved.width,
            height=resolved.height,
            steps=resolved.steps,
            cfg=resolved.cfg,
            sampler=resolved.sampler,
            scheduler=resolved.scheduler,
            seed=seed,
            clip_skip=resolved.clip_skip or None,
            backend=backend,
            job=job_id,
            batch_index=index,
            extra={} if resolved.strength is None else {"Denoising strength": resolved.strength},
        )
        try:
            saved.append(gallery.save(png, params))
        except (TsrError, OSError) as exc:
            if saved:
                ids = [image.id for image in saved]
                gallery.trash(ids)
                gallery.purge(ids)
            raise JobFailed(
                f"saving image {index + 1} of {len(pngs)} failed ({exc}); nothing was kept"
            ) from None
    return saved
