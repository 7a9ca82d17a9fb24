"""Test helpers for the gallery: real PNGs made with Pillow, recorded sd-server PNGs, parameters."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, PngImagePlugin

from tsr.schemas.images import ImageParams, LoraUse

#: PNGs exactly as a real sd-server returned them (from /work/shared/docs/sd-server-samples:
#: txt2img-lora image 1, seed 1235; txt2img-unknown-sampler image 0, sampler NONE)
DATA = Path(__file__).resolve().parent / "data"


def make_png(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 64), text: str = ""
) -> bytes:
    """A real PNG; `text` becomes its `parameters` chunk."""
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def sdcpp_png(name: str = "sdcpp-lora.png") -> bytes:
    """A PNG as a real sd-server wrote it, with its sd.cpp `parameters` infotext."""
    return (DATA / name).read_bytes()


def params(**changes: object) -> ImageParams:
    """Typical parameters of a generated image, with `changes` applied."""
    values: dict[str, object] = {
        "checkpoint": "dreamshaper_8",
        "checkpoint_sha256": "1a2b3c4d5e" + "0" * 54,
        "loras": [LoraUse(name="add_detail", weight=0.8, sha256="0123456789ab" + "f" * 52)],
        "prompt": "a red cube on a table",
        "negative": "blurry",
        "steps": 25,
        "cfg": 7.0,
        "sampler": "DPM++ 2M",
        "scheduler": "Karras",
        "seed": 1234,
        "clip_skip": 2,
        "backend": "gpu0",
        "job": "job-1",
        "batch_index": 0,
    }
    values.update(changes)
    return ImageParams.model_validate(values)
