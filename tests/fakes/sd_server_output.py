"""What the fake sd-server produces: deterministic PNGs, sd.cpp's infotext and the sdapi `info`."""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

#: sd.cpp stores weights and factors as float32; its JSON shows them widened to double
FLOAT32_DEFAULTS = {
    "control_strength": 0.8999999761581421,
    "slg_end": 0.20000000298023224,
    "slg_start": 0.009999999776482582,
}
# Above this many pixels the picture is a flat colour with shapes (no gradient): stays cheap.
_GRADIENT_MAX_PIXELS = 1024 * 1024


def f32(value: float) -> float:
    """Round a number the way a C float holds it (0.8 -> 0.800000011920929)."""
    if not math.isfinite(value):
        return value
    return float(struct.unpack("f", struct.pack("f", value))[0])


def round_up_64(size: int) -> int:
    """sd.cpp's silent rounding of a requested size up to a multiple of 64."""
    return -(-size // 64) * 64


@dataclass
class ModelFiles:
    """The files the fake was started with (only their names show up in outputs)."""

    model: str = ""
    diffusion_model: str = ""
    clip_l: str = ""
    clip_g: str = ""
    t5xxl: str = ""
    llm: str = ""
    vae: str = ""

    @property
    def display_path(self) -> str:
        """The model sd-server names in capabilities/options: -m, else --diffusion-model."""
        return self.model or self.diffusion_model

    @property
    def sd_model_name(self) -> str:
        """`info.sd_model_name`: the diffusion model's file name if given, else the model's."""
        return Path(self.diffusion_model or self.model).name


@dataclass
class Generation:
    """One resolved generation request (after sd.cpp's defaults, clamps and random seed)."""

    prompt: str
    negative_prompt: str = ""
    width: int = -1
    height: int = -1
    steps: int = 20
    cfg_scale: float = 7.0
    guidance: float = 3.5
    eta: float = math.inf
    seed: int = 42
    batch_count: int = 1
    clip_skip: int = -1
    sampler: str | None = None
    scheduler: str | None = None
    loras: dict[str, float] = field(default_factory=dict)
    strength: float = 0.75
    init_image_digest: str | None = None
    img2img: bool = False
    embed_metadata: bool = True
    output_format: str = "png"

    @property
    def resolved_width(self) -> int:
        """The width sd.cpp reports (requested, or 512 when unset)."""
        return self.width if self.width > 0 else 512

    @property
    def resolved_height(self) -> int:
        """The height sd.cpp reports (requested, or 512 when unset)."""
        return self.height if self.height > 0 else 512


def _sdcpp_json(files: ModelFiles, gen: Generation, seed: int) -> str:
    sampling: dict[str, object] = {
        "custom_sigmas": [],
        "eta": gen.eta if math.isfinite(gen.eta) else None,
        "extra_sample_args": "",
        "flow_shift": None,
        "guidance": {
            "distilled_guidance": gen.guidance,
            "img_cfg": None,
            "slg": {
                "end": FLOAT32_DEFAULTS["slg_end"],
                "layers": [7, 8, 9],
                "scale": 0.0,
                "start": FLOAT32_DEFAULTS["slg_start"],
            },
            "txt_cfg": gen.cfg_scale,
        },
        "shifted_timestep": 0,
        "steps": gen.steps,
    }
    if gen.sampler:
        sampling["method"] = gen.sampler
    if gen.scheduler:
        sampling["scheduler"] = gen.scheduler
    models = {"model": Path(files.model).name} if files.model else {}
    for key in ("diffusion_model", "clip_l", "clip_g", "t5xxl", "llm", "vae"):
        if getattr(files, key):
            models[key] = Path(getattr(files, key)).name
    data: dict[str, object] = {
        "auto_resize_ref_image": True,
        "clip_skip": gen.clip_skip,
        "control_strength": FLOAT32_DEFAULTS["control_strength"],
        "generator": {"commit": "unknown", "name": "stable-diffusion.cpp", "version": "unknown"},
        "height": gen.resolved_height,
        "increase_ref_index": False,
        "ip_adapter_strength": 1.0,
        "mode": "img_gen",
        "models": models,
        "prompt": {"negative": gen.negative_prompt, "positive": gen.prompt},
        "rng": "cuda",
        "sampling": sampling,
        "schema": "sdcpp.image.params/v1",
        "seed": seed,
        "strength": gen.strength,
        "width": gen.resolved_width,
    }
    if gen.loras:
        data["loras"] = [
            {"is_high_noise": False, "multiplier": weight, "name": Path(path).name}
            for path, weight in sorted(gen.loras.items())
        ]
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def infotext(files: ModelFiles, gen: Generation, seed: int) -> str:
    """The `parameters` text sd.cpp writes into each PNG (and into `info.infotexts`)."""
    text = gen.prompt + "\n"
    if gen.negative_prompt:
        text += f"Negative prompt: {gen.negative_prompt}\n"
    eta = f"{gen.eta:.6f}" if math.isfinite(gen.eta) else "inf"
    sampler = gen.sampler or "NONE"
    if gen.scheduler:
        sampler += " " + gen.scheduler
    text += (
        f"Steps: {gen.steps}, CFG scale: {gen.cfg_scale:.6f}, Guidance: {gen.guidance:.6f}, "
        f"Eta: {eta}, Seed: {seed}, Size: {gen.resolved_width}x{gen.resolved_height}, "
        f"Model: {Path(files.model).name if files.model else ''}, RNG: cuda, Sampler: {sampler}, "
    )
    for encoder in (files.clip_l, files.clip_g, files.t5xxl, files.llm):
        if encoder:
            text += f"TE: {Path(encoder).name}, "
    if files.diffusion_model:
        text += f"Unet: {Path(files.diffusion_model).name}, "
    if files.vae:
        text += f"VAE: {Path(files.vae).name}, "
    if gen.clip_skip != -1:
        text += f"Clip skip: {gen.clip_skip}, "
    return text + "Version: stable-diffusion.cpp, SDCPP: " + _sdcpp_json(files, gen, seed)


def sdapi_info(files: ModelFiles, gen: Generation, texts: list[str]) -> str:
    """The sdapi response's `info`: a JSON *string*, keys sorted as sd-server's nlohmann does."""
    info: dict[str, object] = {
        "prompt": gen.prompt,
        "seed": gen.seed,
        "cfg_scale": gen.cfg_scale,
        "width": gen.resolved_width,
        "height": gen.resolved_height,
        "steps": gen.steps,
        "sampler_name": gen.sampler or "NONE",
        "sd_model_name": files.sd_model_name,
        "version": "stable-diffusion.cpp",
        "infotexts": texts,
        "all_prompts": [gen.prompt] * len(texts),
        "all_negative_prompts": [gen.negative_prompt] * len(texts),
        "all_seeds": [gen.seed + i for i in range(len(texts))],
    }
    if gen.negative_prompt:
        info["negative_prompt"] = gen.negative_prompt
    if gen.clip_skip != -1:
        info["clip_skip"] = gen.clip_skip
    if gen.scheduler:
        info["extra_generation_params"] = {"Schedule type": gen.scheduler}
    if gen.img2img:
        info["denoising_strength"] = gen.strength
    if files.vae:
        info["sd_vae_name"] = Path(files.vae).name
    return json.dumps(info, sort_keys=True, separators=(",", ":"))


def _pixel_key(files: ModelFiles, gen: Generation, seed: int) -> bytes:
    """Everything that changes the picture: same request, same bytes."""
    parts = [
        files.sd_model_name,
        gen.prompt,
        gen.negative_prompt,
        str(seed),
        f"{gen.resolved_width}x{gen.resolved_height}",
        str(gen.steps),
        repr(gen.cfg_scale),
        str(gen.sampler),
        str(gen.scheduler),
        repr(sorted(gen.loras.items())),
        str(gen.init_image_digest),
        repr(gen.strength) if gen.img2img else "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def render_image(files: ModelFiles, gen: Generation, seed: int) -> bytes:
    """One encoded image (PNG with a `parameters` tEXt chunk, or JPEG) for image `seed`."""
    from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

    digest = _pixel_key(files, gen, seed)
    width, height = round_up_64(gen.resolved_width), round_up_64(gen.resolved_height)
    first, second = tuple(digest[0:3]), tuple(digest[3:6])
    if width * height <= _GRADIENT_MAX_PIXELS:
        ramp = Image.linear_gradient("L")
        if digest[6] & 1:
            ramp = ramp.transpose(Image.Transpose.ROTATE_90)
        image = ImageOps.colorize(ramp.resize((width, height)), first, second)
    else:
        image = Image.new("RGB", (width, height), first)
    draw = ImageDraw.Draw(image)
    for shape in range(3):
        b = digest[8 + shape * 7 : 15 + shape * 7]
        left, top = b[0] * width // 256, b[1] * height // 256
        box = (left, top, left + (b[2] + 32) * width // 512, top + (b[3] + 32) * height // 512)
        colour = (b[4], b[5], b[6])
        (draw.ellipse if shape % 2 else draw.rectangle)(box, fill=colour)
    out = io.BytesIO()
    if gen.output_format == "jpeg":
        image.save(out, "JPEG", quality=90)
        return out.getvalue()
    meta = PngImagePlugin.PngInfo()
    if gen.embed_metadata:
        # sd.cpp writes the text as raw UTF-8 in a tEXt chunk (not iTXt), so do the same.
        meta.add(b"tEXt", b"parameters\x00" + infotext(files, gen, seed).encode("utf-8"))
    image.save(out, "PNG", pnginfo=meta)
    return out.getvalue()
