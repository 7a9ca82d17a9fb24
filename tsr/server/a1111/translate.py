"""An A1111 txt2img or img2img request in tsr's terms (generation requests for the job
queue), and the A1111 `info` built from the finished jobs and their gallery images."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tsr import __version__
from tsr.config import Config
from tsr.errors import BadRequest
from tsr.schemas.images import ImageOut
from tsr.schemas.jobs import MAX_SEED, GenerateRequest, JobOut, LoraRef
from tsr.server.a1111.catalog import CatalogFile, find_checkpoint, find_lora, load_files
from tsr.server.a1111.init_image import prepare_init_image
from tsr.server.a1111.models import A1111Generation, Img2ImgRequest
from tsr.server.a1111.names import resolve_a1111_sampling, split_lora_tags
from tsr.server.generation import InvalidRequest, parse_request

#: what tsr's own field names are called in A1111 requests, for error messages
_A1111_FIELD = {
    "cfg": "cfg_scale",
    "batch": "batch_size",
    "negative": "negative_prompt",
    "sampler": "sampler_name",
    "checkpoint": "override_settings.sd_model_checkpoint",
    "clip_skip": "override_settings.CLIP_stop_at_last_layers",
    "loras": "prompt",
    "init_image": "init_images",
    "strength": "denoising_strength",
}


@dataclass
class Plan:
    """What an A1111 request becomes: one generation request per iteration (`n_iter`)."""

    requests: list[GenerateRequest]
    #: the prompt as the client sent it (LoRA tags included), as A1111 reports it back
    prompt: str
    checkpoint: CatalogFile | None = None
    loras: list[tuple[CatalogFile, float]] = field(default_factory=list)


def clip_skip_setting(value: Any, name: str = "CLIP_stop_at_last_layers") -> int:
    """A `CLIP_stop_at_last_layers` value (1 = the last layer, no skip)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise BadRequest(f"{name} must be a whole number from 1 to 12, not {value!r}")
    if not 1 <= int(value) <= 12:
        raise BadRequest(f"{name} must be from 1 to 12, not {value}")
    return int(value)


def plan_generation(body: A1111Generation, config: Config, clip_skip: int | None = None) -> Plan:
    """Translate an A1111 request (sync: reads the models database).

    Args:
        body: the validated A1111 request.
        config: the server's config (model roots).
        clip_skip: `CLIP_stop_at_last_layers` set through POST /sdapi/v1/options, if any.
    """
    prompt, tags = split_lora_tags(body.prompt)
    if not prompt:
        raise BadRequest("prompt: it holds only LoRA tags; describe the image as well")
    plan = Plan(requests=[], prompt=body.prompt)
    overrides = body.override_settings or {}
    wanted = overrides.get("sd_model_checkpoint")
    if wanted is not None:
        if not isinstance(wanted, str) or not wanted.strip():
            raise BadRequest("override_settings.sd_model_checkpoint must name a checkpoint")
        plan.checkpoint = find_checkpoint(load_files(config, "checkpoint"), wanted)
    if "CLIP_stop_at_last_layers" in overrides:
        clip_skip = clip_skip_setting(overrides["CLIP_stop_at_last_layers"])
    if tags:
        files = load_files(config, "lora")
        weights: dict[int, tuple[CatalogFile, float]] = {}
        for tag in tags:
            found = find_lora(files, tag.name)
            # the same LoRA twice adds up, as sd-server adds the multipliers of a repeated path
            _, before = weights.get(found.id, (found, 0.0))
            weights[found.id] = (found, before + tag.weight)
        plan.loras = list(weights.values())
    image: dict[str, Any] = {}
    if isinstance(body, Img2ImgRequest):
        image = {
            "init_image": prepare_init_image(
                body.init_images, body.width, body.height, body.resize_mode
            ),
            "strength": body.denoising_strength,
        }
    sampler_name = body.sampler_name or body.sampler_index
    sampler, scheduler = resolve_a1111_sampling(sampler_name, body.scheduler)
    seed = -1 if body.seed is None else body.seed
    batch = body.batch_size or 1
    iterations = body.n_iter or 1
    if seed != -1 and seed + iterations * batch - 1 > MAX_SEED:
        raise BadRequest(f"seed: {seed} leaves no room for {iterations * batch} images' seeds")
    for iteration in range(iterations):
        fields: dict[str, Any] = {
            "checkpoint": plan.checkpoint.id if plan.checkpoint else None,
            "loras": [LoraRef(id=f.id, weight=w) for f, w in plan.loras],
            "prompt": prompt,
            "negative": body.negative_prompt,
            "width": body.width,
            "height": body.height,
            "steps": body.steps,
            "cfg": body.cfg_scale,
            "sampler": sampler,
            "scheduler": scheduler,
            # A1111 gives image i of the whole request the seed `seed + i`
            "seed": seed if seed == -1 else seed + iteration * batch,
            "batch": batch,
            "clip_skip": clip_skip,
            # A1111 clients expect their prompt and negative verbatim
            "family_prompt": False,
            **image,
        }
        plan.requests.append(_generate_request(fields))
    return plan


def _generate_request(fields: dict[str, Any]) -> GenerateRequest:
    try:
        return parse_request(fields)
    except InvalidRequest as exc:
        name = exc.field.split(".")[0]
        message = str(exc).removeprefix(f"{exc.field}: ")
        raise BadRequest(f"{_A1111_FIELD.get(name, name)}: {message}") from None
    except ValidationError as exc:  # a LoRA weight outside -10..10
        raise BadRequest(f"prompt: {exc.errors()[0]['msg']}") from None


def echo_parameters(body: A1111Generation) -> dict[str, Any]:
    """The request as A1111 echoes it in `parameters` (init images only if asked for)."""
    echoed = body.model_dump()
    if "init_images" in echoed and not echoed.get("include_init_images"):
        echoed["init_images"] = None
        echoed["mask"] = None
    return echoed


def build_info(
    body: A1111Generation, plan: Plan, jobs: list[JobOut], images: list[ImageOut]
) -> str:
    """A1111's `info`: a JSON string with the keys of `Processed.js()`, from what was made."""
    resolved = next((job.resolved for job in jobs if job.resolved is not None), None)
    seeds = [seed for job in jobs if job.state == "done" for seed in job.seeds]
    count = len(seeds)
    subseed = body.subseed if body.subseed is not None else -1
    extra: dict[str, Any] = {}
    if resolved is not None:
        extra["Schedule type"] = resolved.scheduler
        hashes = [f"{x.name}: {x.sha256[:12]}" for x in resolved.loras if x.sha256]
        if hashes:
            extra["Lora hashes"] = ", ".join(hashes)
    negative = resolved.negative if resolved else (body.negative_prompt or "")
    created = min((job.created for job in jobs), default=None)
    sha256 = resolved.checkpoint_sha256 if resolved else None
    info: dict[str, Any] = {
        "prompt": plan.prompt,
        "all_prompts": [plan.prompt] * count,
        "negative_prompt": negative,
        "all_negative_prompts": [negative] * count,
        "seed": seeds[0] if seeds else (body.seed if body.seed is not None else -1),
        "all_seeds": seeds,
        "subseed": subseed,
        "all_subseeds": [subseed] * count,
        "subseed_strength": 0,
        "width": resolved.width if resolved else body.width,
        "height": resolved.height if resolved else body.height,
        "sampler_name": resolved.sampler if resolved else None,
        "cfg_scale": resolved.cfg if resolved else body.cfg_scale,
        "steps": resolved.steps if resolved else body.steps,
        "batch_size": resolved.batch if resolved else (body.batch_size or 1),
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": resolved.checkpoint if resolved else None,
        "sd_model_hash": sha256[:10] if sha256 else None,
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": body.seed_resize_from_w if body.seed_resize_from_w else -1,
        "seed_resize_from_h": body.seed_resize_from_h if body.seed_resize_from_h else -1,
        "denoising_strength": resolved.strength if resolved else body.denoising_strength,
        "extra_generation_params": extra,
        "index_of_first_image": 0,
        "infotexts": [image.parameters for image in images],
        # tsr has no prompt styles: none were applied
        "styles": [],
        "job_timestamp": created.strftime("%Y%m%d%H%M%S") if created else "",
        "clip_skip": resolved.clip_skip if resolved else None,
        "is_using_inpainting_conditioning": False,
        "version": f"tsr {__version__}",
        # beyond A1111: where the images went, for clients that know tsr
        "tsr": {
            "jobs": [job.id for job in jobs],
            "image_ids": [image.id for image in images],
            "warnings": [w for job in jobs for w in job.warnings],
        },
    }
    return json.dumps(info)
