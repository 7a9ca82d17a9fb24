"""Test helpers for the gallery: real PNGs made with Pillow, recorded sd-server PNGs, parameters."""

from __future__ import annotations

import io
import os
import time
from datetime import datetime
from pathlib import Path

from PIL import Image, PngImagePlugin

from tsr.gallery import GalleryStore
from tsr.gallery.png import read_chunks, text_of
from tsr.gallery.records import fields_from_texts
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


def add_on_day(store: GalleryStore, moment: datetime, prompt: str, seed: int = 1) -> int:
    """An image made at `moment` (its file in that day's folder), as an import would add it."""
    text = f"{prompt}\nSteps: 5, Sampler: Euler, CFG scale: 7, Seed: {seed}, Size: 64x64"
    data = make_png((seed % 256, 90, 160), (64, 64), text)
    fields, loras = fields_from_texts(text_of(read_chunks(data)))
    return store.add_file(data, fields, loras, moment=moment)


def age_folders(*bases: Path, days: float = 1.0) -> None:
    """Date every folder under `bases` `days` ago, as in a gallery whose folders changed long
    ago (a folder stamped within seconds of a reconcile is not trusted by the next one)."""
    moment = time.time() - days * 86_400
    for base in bases:
        if not base.is_dir():
            continue
        for folder, _subfolders, _files in os.walk(base):
            os.utime(folder, (moment, moment))
