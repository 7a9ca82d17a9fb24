"""Checks a generation request before it reaches sd-server, which would silently change it."""

from __future__ import annotations

import base64
import binascii
import difflib
import io
import math
from collections.abc import Collection
from typing import Any

from tsr.errors import BadRequest
from tsr.samplers import resolve_sampling
from tsr.sdapi.models import Capabilities, GenerationParams, Limits, LoraRef

#: the files sd-server lists as LoRAs (/sdapi/v1/loras)
LORA_EXTENSIONS = (".safetensors", ".gguf", ".pt", ".pth")
#: image formats sd-server's decoder (stb_image) reads; others are re-encoded as PNG
_SENT_AS_IS = ("PNG", "JPEG", "BMP")
STEPS_RANGE = (1, 100)


def _nearest_multiples(value: int, low: int, high: int) -> str:
    below, above = value // 64 * 64, value // 64 * 64 + 64
    options = sorted({min(max(size, low), high) for size in (below, above)} - {0})
    return " or ".join(str(option) for option in options)


def check_size(name: str, value: int, low: int, high: int) -> None:
    """A size sd-server keeps as is: a multiple of 64 within its limits, else BadRequest."""
    if value < low:
        raise BadRequest(f"{name} {value} is below sd-server's minimum of {low}; use {low}")
    if value > high:
        raise BadRequest(f"{name} {value} is above sd-server's maximum of {high}; use {high}")
    if value % 64:
        raise BadRequest(
            f"{name} {value} is not a multiple of 64 (sd-server would silently change it); "
            f"use {_nearest_multiples(value, low, high)}"
        )


def check_init_image(data: bytes) -> tuple[bytes, int, int]:
    """Decode the init image with Pillow: (bytes to send, width, height), or BadRequest.

    sd-server turns an undecodable init image into a plain 512x512 txt2img without a word.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            image_format = image.format or ""
            if image_format not in _SENT_AS_IS:
                converted = io.BytesIO()
                image.convert("RGBA" if "A" in image.getbands() else "RGB").save(converted, "PNG")
                data = converted.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadRequest(
            f"the init image cannot be read as an image ({error}); use a PNG or JPEG file"
        ) from None
    return data, width, height


def check_loras(loras: list[LoraRef], known: Collection[str]) -> None:
    """Every LoRA path carries an extension, is listed by sd-server and is given once."""
    seen: set[str] = set()
    for lora in loras:
        if not lora.path.lower().endswith(LORA_EXTENSIONS):
            raise BadRequest(
                f"LoRA {lora.path!r} has no file extension; give its path as sd-server lists it, "
                f"e.g. {lora.path + '.safetensors'!r}"
            )
        if lora.path not in known:
            close = difflib.get_close_matches(lora.path, list(known), n=3, cutoff=0.4)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise BadRequest(
                f"sd-server has no LoRA {lora.path!r} in its LoRA folder "
                f"({len(known)} LoRAs listed){hint}"
            )
        if lora.path in seen:
            raise BadRequest(
                f"LoRA {lora.path!r} is listed twice (sd-server would add the weights); "
                "give it once with the weight you want"
            )
        if not math.isfinite(lora.multiplier):
            raise BadRequest(f"LoRA {lora.path!r} has weight {lora.multiplier}; use a number")
        seen.add(lora.path)


def _check_numbers(params: GenerationParams, limits: Limits) -> None:
    if not params.prompt.strip():
        raise BadRequest("the prompt is empty; describe the image to generate")
    if params.steps is not None and not STEPS_RANGE[0] <= params.steps <= STEPS_RANGE[1]:
        raise BadRequest(f"steps {params.steps} is outside 1..100; sd-server would clamp it")
    if not 1 <= params.batch_count <= limits.max_batch_count:
        raise BadRequest(
            f"batch count {params.batch_count} is outside 1..{limits.max_batch_count}; "
            "sd-server would clamp it"
        )
    for name, number in (("CFG scale", params.cfg_scale), ("guidance", params.guidance)):
        if number is not None and (not math.isfinite(number) or number < 0):
            raise BadRequest(f"{name} {number} is invalid; use a number of 0 or more")
    if params.seed < -1:
        raise BadRequest(f"seed {params.seed} is invalid; use -1 for random or a number >= 0")
    if params.clip_skip is not None and not -1 <= params.clip_skip <= 12:
        raise BadRequest(f"clip skip {params.clip_skip} is outside 0..12")
    if params.init_image is not None and not 0.0 <= params.strength <= 1.0:
        raise BadRequest(f"strength {params.strength} is outside 0..1")


def _check_sampling(params: GenerationParams, caps: Capabilities) -> tuple[str | None, str | None]:
    sampler, scheduler = resolve_sampling(params.sampler, params.scheduler)
    if sampler not in (None, "default") and caps.samplers and sampler not in caps.samplers:
        raise BadRequest(
            f"this sd-server has no sampler {sampler!r}; it offers: {', '.join(caps.samplers)}"
        )
    if scheduler not in (None, "default") and caps.schedulers and scheduler not in caps.schedulers:
        raise BadRequest(
            f"this sd-server has no scheduler {scheduler!r}; "
            f"it offers: {', '.join(caps.schedulers)}"
        )
    # "default" means the server's own choice: leaving the field out says exactly that.
    return (
        None if sampler == "default" else sampler,
        None if scheduler == "default" else scheduler,
    )


def build_native_request(
    params: GenerationParams, caps: Capabilities, known_loras: Collection[str]
) -> dict[str, Any]:
    """The POST /sdcpp/v1/img_gen body for `params`, or BadRequest naming what is wrong."""
    limits = caps.limits
    _check_numbers(params, limits)
    sampler, scheduler = _check_sampling(params, caps)
    check_loras(params.loras, known_loras)
    body: dict[str, Any] = {
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt,
        "seed": params.seed,
        "batch_count": params.batch_count,
        "output_format": "png",
        # Every PNG then carries sd.cpp's parameters text: the only place a random seed shows.
        "embed_image_metadata": True,
    }
    width, height = params.width, params.height
    if params.init_image is not None:
        image, image_width, image_height = check_init_image(params.init_image)
        asked = (width or image_width, height or image_height)
        if asked != (image_width, image_height):
            raise BadRequest(
                f"the init image is {image_width}x{image_height} but {asked[0]}x{asked[1]} was "
                "asked for; resize the image or ask for its size"
            )
        check_size("init image width", image_width, limits.min_width, limits.max_width)
        check_size("init image height", image_height, limits.min_height, limits.max_height)
        width, height = image_width, image_height
        body["init_image"] = base64.b64encode(image).decode("ascii")
        body["strength"] = params.strength
    width, height = width or 512, height or 512
    check_size("width", width, limits.min_width, limits.max_width)
    check_size("height", height, limits.min_height, limits.max_height)
    body["width"], body["height"] = width, height
    sample: dict[str, Any] = {}
    if params.steps is not None:
        sample["sample_steps"] = params.steps
    if sampler:
        sample["sample_method"] = sampler
    if scheduler:
        sample["scheduler"] = scheduler
    guidance: dict[str, float] = {}
    if params.cfg_scale is not None:
        guidance["txt_cfg"] = params.cfg_scale
    if params.guidance is not None:
        guidance["distilled_guidance"] = params.guidance
    if guidance:
        sample["guidance"] = guidance
    if sample:
        body["sample_params"] = sample
    if params.clip_skip is not None and params.clip_skip > 0:
        body["clip_skip"] = params.clip_skip
    if params.loras:
        body["lora"] = [{"path": lora.path, "multiplier": lora.multiplier} for lora in params.loras]
    return body


def check_sdapi_init_images(payload: dict[str, Any]) -> None:
    """sd-server silently turns an unreadable init image into a 512x512 txt2img: refuse it."""
    images = payload.get("init_images")
    if not isinstance(images, list) or not images or not isinstance(images[0], str):
        return
    encoded = images[0].split(",", 1)[-1]  # a data: URL prefix is allowed, as sd-server does
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "the init image is not valid base64; send the image file's bytes"
        ) from None
    check_init_image(data)
