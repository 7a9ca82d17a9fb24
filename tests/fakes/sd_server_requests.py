"""How the fake sd-server reads request bodies: sd-server's field rules, defaults and quirks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from tests.fakes.sd_server_output import Generation, f32

#: sd.cpp's sample methods, in its enum order (GET /sdapi/v1/samplers adds "default" first)
SAMPLERS = (  # noqa: SIM905 (a word list reads best as words)
    "euler euler_a heun dpm2 dpm++2s_a dpm++2m dpm++2mv2 ipndm ipndm_v lcm ddim_trailing "
    "tcd res_multistep res_2s er_sde euler_cfg_pp euler_a_cfg_pp euler_ge dpm++2m_sde "
    "dpm++2m_sde_bt lms"
).split()
#: sd.cpp's schedulers, in its enum order ("normal" is listed right after "discrete")
SCHEDULERS = (  # noqa: SIM905 (a word list reads best as words)
    "discrete normal karras exponential ays gits sgm_uniform simple smoothstep kl_optimal "
    "lcm bong_tangent ltx2 logit_normal flux2 flux beta"
).split()
#: the WebUI aliases sd-server's sdapi accepts for `sampler_name` (case-insensitive)
SAMPLER_ALIASES = {
    "euler a": "euler_a",
    "k_euler_a": "euler_a",
    "euler": "euler",
    "k_euler": "euler",
    "heun": "heun",
    "k_heun": "heun",
    "dpm2": "dpm2",
    "k_dpm_2": "dpm2",
    "lcm": "lcm",
    "ddim": "ddim_trailing",
    "dpm++ 2m": "dpm++2m",
    "k_dpmpp_2m": "dpm++2m",
    "dpm++ 2m sde": "dpm++2m_sde",
    "k_dpmpp_2m_sde": "dpm++2m_sde",
    "dpm++ 2m sde gpu": "dpm++2m_sde_bt",
    "k_dpmpp_2m_sde_gpu": "dpm++2m_sde_bt",
    "res multistep": "res_multistep",
    "k_res_multistep": "res_multistep",
    "res 2s": "res_2s",
    "k_res_2s": "res_2s",
}
LORA_EXTENSIONS = (".safetensors", ".gguf", ".pt", ".pth")
_EXTRA_ARGS = re.compile(r"<sd_cpp_extra_args>(.*?)</sd_cpp_extra_args>", re.DOTALL)
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]*")


class HttpError(Exception):
    """An answer other than success: status code and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


@dataclass
class ServerDefaults:
    """The generation defaults sd-server takes from its own flags."""

    steps: int = 20
    cfg_scale: float = 7.0
    guidance: float = 3.5
    sampler: str | None = None
    scheduler: str | None = None
    clip_skip: int = -1
    seed: int = 42
    width: int = -1
    height: int = -1
    embed_metadata: bool = True


@dataclass
class Decoded:
    """An image sent by a client, decoded (what the fake keeps of it)."""

    width: int
    height: int
    digest: str


@dataclass
class LoraTable:
    """The LoRA list that `lora` paths are validated against (refreshed by GET /sdapi/v1/loras)."""

    paths: set[str] = field(default_factory=set)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_value(obj: object, key: str, default: Any, kind: type) -> Any:
    """nlohmann's `j.value(key, default)`: a wrong type throws (sd-server then answers 500)."""
    if not isinstance(obj, dict):
        raise HttpError(
            500,
            {
                "error": "server_error",
                "message": f"[json.exception.type_error.306] cannot use value() with "
                f"{_type_name(obj)}",
            },
        )
    if key not in obj:
        return default
    value = obj[key]
    wanted = {str: "string", bool: "boolean"}.get(kind, "number")
    if _type_name(value) != wanted:
        raise HttpError(
            500,
            {
                "error": "server_error",
                "message": f"[json.exception.type_error.302] type must be {wanted}, "
                f"but is {_type_name(value)}",
            },
        )
    return kind(value)


def parse_json(body: bytes, *, native: bool) -> Any:
    """Parse a body like sd-server: malformed JSON is 500 on sdapi, 400 on the native API."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        line, column = getattr(error, "lineno", 1), getattr(error, "colno", 1)
        reason = getattr(error, "msg", str(error))
        message = (
            f"[json.exception.parse_error.101] parse error at line {line}, column {column}: "
            f"syntax error while parsing value - {reason}"
        )
        if native:
            raise HttpError(400, {"error": "invalid json", "message": message}) from None
        raise HttpError(500, {"error": "server_error", "message": message}) from None


def decode_image(encoded: str) -> Decoded | None:
    """sd.cpp's lenient base64 + image decoding: anything unreadable gives None."""
    from PIL import Image

    text = encoded.split(",", 1)[1] if "," in encoded else encoded
    chars = _BASE64_CHARS.match(text)
    data = chars.group(0) if chars else ""
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4))
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            size = image.size
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        return None
    if not raw:
        return None
    return Decoded(size[0], size[1], hashlib.sha256(raw).hexdigest())


def sampler_from_sdapi(name: str) -> str | None:
    """sd-server's sdapi sampler lookup: an sd.cpp name, else a WebUI alias; None if unknown."""
    if name in SAMPLERS:
        return name
    return SAMPLER_ALIASES.get(name.lower())


def scheduler_from_name(name: str) -> str | None:
    """Exact lower-case sd.cpp scheduler name; anything else is unknown (None)."""
    return name if name in SCHEDULERS else None


def finish(gen: Generation) -> Generation:
    """sd.cpp's resolve_and_validate (strict): random seed, clamps, then the checks."""
    seed = gen.seed if gen.seed >= 0 else random.randint(0, 2**31 - 1)
    gen = replace(
        gen,
        seed=seed,
        batch_count=min(max(gen.batch_count, 1), 8),
        steps=min(max(gen.steps, 1), 100),
    )
    if not 0.0 <= gen.strength <= 1.0 or gen.cfg_scale < 0:
        raise ValueError("invalid params")
    return gen


def _load_native_fields(gen: Generation, body: dict[str, Any]) -> Generation:
    """The native schema: wrong types are ignored silently (sd.cpp's load_if_exists)."""
    changes: dict[str, Any] = {}

    def take(key: str, target: str, kind: str, source: dict[str, Any] = body) -> None:
        if key not in source:
            return
        value = source[key]
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
        }[kind]
        if ok:
            changes[target] = f32(value) if kind == "float" else value

    for key in ("prompt", "negative_prompt"):
        take(key, key, "str")
    for key, target in (("clip_skip", "clip_skip"), ("width", "width"), ("height", "height")):
        take(key, target, "int")
    take("batch_count", "batch_count", "int")
    take("seed", "seed", "int")
    take("strength", "strength", "float")
    take("embed_image_metadata", "embed_metadata", "bool")
    sample = body.get("sample_params")
    if isinstance(sample, dict):
        take("sample_steps", "steps", "int", sample)
        take("eta", "eta", "float", sample)
        method, scheduler = sample.get("sample_method"), sample.get("scheduler")
        if isinstance(method, str) and method in SAMPLERS:
            changes["sampler"] = method
        if isinstance(scheduler, str) and scheduler_from_name(scheduler):
            changes["scheduler"] = scheduler
        guidance = sample.get("guidance")
        if isinstance(guidance, dict):
            take("txt_cfg", "cfg_scale", "float", guidance)
            take("distilled_guidance", "guidance", "float", guidance)
    return replace(gen, **changes)


def _take_extra_args(gen: Generation) -> Generation:
    """Apply and strip `<sd_cpp_extra_args>{json}</sd_cpp_extra_args>` from the prompt."""
    match = _EXTRA_ARGS.search(gen.prompt)
    if not match:
        return gen
    gen = replace(gen, prompt=_EXTRA_ARGS.sub("", gen.prompt))
    try:
        extra = json.loads(match.group(1))
    except ValueError:
        raise HttpError(400, {"error": "invalid sd_cpp_extra_args"}) from None
    return _load_native_fields(gen, extra) if isinstance(extra, dict) else gen


def parse_sdapi(
    body: Any, defaults: ServerDefaults, loras: LoraTable, *, img2img: bool
) -> Generation:
    """POST /sdapi/v1/txt2img|img2img: sd-server's rules, quirks included."""
    prompt = json_value(body, "prompt", "", str)
    negative = json_value(body, "negative_prompt", "", str)
    width = json_value(body, "width", 512, int)
    height = json_value(body, "height", 512, int)
    steps = json_value(body, "steps", defaults.steps, int)
    cfg = json_value(body, "cfg_scale", defaults.cfg_scale, float)
    seed = json_value(body, "seed", -1, int)
    batch = json_value(body, "batch_size", 1, int)
    clip_skip = json_value(body, "clip_skip", -1, int)
    sampler_name = json_value(body, "sampler_name", "", str)
    scheduler_name = json_value(body, "scheduler", "", str)
    if width <= 0 or height <= 0:
        raise HttpError(400, {"error": "width and height must be positive"})
    if not prompt:
        raise HttpError(400, {"error": "prompt required"})
    gen = Generation(
        prompt=prompt,
        negative_prompt=negative,
        # an omitted size stays unset: 512 for txt2img, the init image's size for img2img
        width=width if "width" in body else -1,
        height=height if "height" in body else -1,
        steps=steps,
        cfg_scale=f32(cfg),
        guidance=defaults.guidance,
        seed=seed,
        batch_count=batch,
        clip_skip=clip_skip if clip_skip > 0 else defaults.clip_skip,
        sampler=sampler_from_sdapi(sampler_name) or defaults.sampler,
        scheduler=scheduler_from_name(scheduler_name) or defaults.scheduler,
        img2img=img2img,
        embed_metadata=defaults.embed_metadata,
    )
    if not img2img and json_value(body, "enable_hr", False, bool):
        json_value(body, "hr_scale", 2.0, float)
        json_value(body, "hr_steps", 0, int)
        json_value(body, "hr_upscaler", "Latent", str)
    gen = _take_extra_args(gen)
    if isinstance(body.get("lora"), list):
        gen = replace(gen, loras=_sdapi_loras(body["lora"], loras))
    if img2img:
        gen = _sdapi_init_image(body, gen)
    try:
        return finish(gen)
    except ValueError:
        raise HttpError(400, {"error": "invalid params"}) from None


def _sdapi_loras(items: list[Any], loras: LoraTable) -> dict[str, float]:
    chosen: dict[str, float] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        path = json_value(item, "path", "", str)
        weight = f32(json_value(item, "multiplier", 1.0, float))
        json_value(item, "is_high_noise", False, bool)
        if not path:
            raise HttpError(400, {"error": "lora.path required"})
        if path not in loras.paths:
            raise HttpError(400, {"error": f"invalid lora path: {path}"})
        chosen[path] = f32(chosen.get(path, 0.0) + weight)  # the same path twice: weights add
    return chosen


def _sdapi_init_image(body: dict[str, Any], gen: Generation) -> Generation:
    images = body.get("init_images")
    if isinstance(images, list) and images:
        first = images[0]
        if not isinstance(first, str):
            raise HttpError(
                500,
                {
                    "error": "server_error",
                    "message": "[json.exception.type_error.302] type must be string, but is "
                    + _type_name(first),
                },
            )
        decoded = decode_image(first)  # undecodable: silently a plain txt2img
        if decoded is not None:
            gen = replace(gen, init_image_digest=decoded.digest)
            if gen.width <= 0 or gen.height <= 0:
                gen = replace(gen, width=decoded.width, height=decoded.height)
    if isinstance(body.get("mask"), str):
        decode_image(body["mask"])
    strength = json_value(body, "denoising_strength", -1.0, float)
    if strength >= 0:
        gen = replace(gen, strength=f32(min(strength, 1.0)))
    return gen


def parse_native(body: Any, defaults: ServerDefaults, loras: LoraTable) -> Generation:
    """POST /sdcpp/v1/img_gen: the native schema; any invalid part is one generic 400."""
    invalid = HttpError(400, {"error": "invalid generation parameters"})
    gen = Generation(
        prompt="",
        width=defaults.width,
        height=defaults.height,
        steps=defaults.steps,
        cfg_scale=defaults.cfg_scale,
        guidance=defaults.guidance,
        seed=defaults.seed,
        clip_skip=defaults.clip_skip,
        sampler=defaults.sampler,
        scheduler=defaults.scheduler,
        embed_metadata=defaults.embed_metadata,
    )
    if not isinstance(body, dict):
        body = {}
    gen = _load_native_fields(gen, body)
    if "lora" in body:
        if not isinstance(body["lora"], list):
            raise invalid
        chosen: dict[str, float] = {}
        for item in body["lora"]:
            path = item.get("path", "") if isinstance(item, dict) else ""
            if not isinstance(path, str) or path not in loras.paths:
                raise invalid
            weight = item.get("multiplier", 1.0)
            weight = weight if isinstance(weight, int | float) else 1.0
            chosen[path] = f32(chosen.get(path, 0.0) + f32(weight))
        gen = replace(gen, loras=chosen)
    for key in ("init_image", "mask_image"):
        value = body.get(key)
        if value is None:
            continue
        decoded = decode_image(value) if isinstance(value, str) else None
        if decoded is None:
            raise invalid
        if key == "init_image":
            gen = replace(gen, init_image_digest=decoded.digest, img2img=True)
            if gen.width <= 0 or gen.height <= 0:
                gen = replace(gen, width=decoded.width, height=decoded.height)
    output_format = json_value(body, "output_format", "png", str)
    if output_format not in ("png", "jpeg"):
        raise HttpError(400, {"error": f"invalid output_format: {output_format}"})
    gen = replace(gen, output_format=output_format)
    try:
        return finish(gen)
    except ValueError:
        raise invalid from None


def parse_openai(body: Any, defaults: ServerDefaults) -> Generation:
    """POST /v1/images/generations: prompt, n, size "WxH"; the seed is the server's --seed."""
    prompt = json_value(body, "prompt", "", str)
    count = json_value(body, "n", 1, int)
    size = json_value(body, "size", "512x512", str)
    output_format = json_value(body, "output_format", "png", str)
    if not prompt:
        raise HttpError(400, {"error": "prompt required"})
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if not match:
        raise HttpError(400, {"error": "invalid size"})
    gen = Generation(
        prompt=prompt,
        width=int(match.group(1)),
        height=int(match.group(2)),
        steps=defaults.steps,
        cfg_scale=defaults.cfg_scale,
        guidance=defaults.guidance,
        seed=defaults.seed,
        batch_count=count,
        clip_skip=defaults.clip_skip,
        sampler=defaults.sampler,
        scheduler=defaults.scheduler,
        embed_metadata=defaults.embed_metadata,
        output_format="jpeg" if output_format == "jpeg" else "png",
    )
    try:
        return finish(_take_extra_args(gen))
    except ValueError:
        raise HttpError(400, {"error": "invalid params"}) from None
