"""Real data for TUI tests, benchmarks and screenshots: model files scanned, PNGs in the gallery.

Everything is written before the `local` server starts, through tsr's own storage code (the
model scan and the gallery's import), so what the TUI shows comes from the server as it would on
a user's machine. Images get fixed file times, so their creation times (and the snapshots that
show them) are the same on every run.
"""

from __future__ import annotations

import colorsys
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from tests import modelfiles
from tsr.config import Config
from tsr.db.database import init_database
from tsr.db.scan import scan_roots
from tsr.gallery.store import GalleryStore

#: the newest seeded image; the others are a minute apart, older
NEWEST = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SUBJECTS = (
    "a lighthouse on a cliff at dusk, crashing waves",
    "a red fox in fresh snow, morning light",
    "a tiny robot watering a bonsai tree",
    "an old library with floating candles",
    "a neon street market in the rain",
    "a mountain lake with a wooden canoe",
)
SIZES = ((1024, 1024), (832, 1216), (1216, 832))
CHECKPOINTS = ("ponyDiffusionV6XL", "juggernautXL_v9", "dreamshaper_8")


@dataclass(frozen=True)
class Seeded:
    """What a seeded data dir holds."""

    image_ids: list[int]
    checkpoints: list[str]
    loras: list[str]


def parameters_text(index: int) -> str:
    """An A1111 `parameters` text for the `index`-th seeded image."""
    width, height = SIZES[index % len(SIZES)]
    checkpoint = CHECKPOINTS[index % len(CHECKPOINTS)]
    lora = " <lora:mychar:0.8>" if index % 2 else ""
    return (
        f"score_9, {SUBJECTS[index % len(SUBJECTS)]}, picture {index}{lora}\n"
        "Negative prompt: worst quality, low quality\n"
        f"Steps: 25, Sampler: Euler a, Schedule type: Simple, CFG scale: 6, Seed: {1000 + index}, "
        f"Size: {width}x{height}, Model: {checkpoint}, Version: tsr 0.1.0"
    )


def write_png(path: Path, index: int, scale: int = 1) -> Path:
    """A small, recognisable PNG (a disc on a coloured ground) carrying its parameters."""
    width, height = (side // scale for side in SIZES[index % len(SIZES)])
    hue = (index * 0.137) % 1.0
    ground = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.85))
    disc = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.7, 0.95))
    image = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.2, height * 0.25, width * 0.8, height * 0.75), fill=disc)
    draw.rectangle((0, height * 0.85, width, height), fill=(25, 25, 45))
    info = PngInfo()
    info.add_text("parameters", parameters_text(index))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG", pnginfo=info)
    return path


def seed_gallery(config: Config, count: int, scale: int = 1) -> list[int]:
    """Import `count` PNGs into the gallery a minute apart; their ids, newest first."""
    init_database(config.db_path())
    with tempfile.TemporaryDirectory() as folder:
        for index in range(count):
            path = write_png(Path(folder) / f"{index:05d}.png", index, scale)
            moment = (NEWEST - timedelta(minutes=index)).timestamp()
            os.utime(path, (moment, moment))
        report = GalleryStore(config.gallery_dir()).import_folder(Path(folder))
    assert not report.failed, report.failed
    return sorted(report.imported, reverse=True)


def seed_models(config: Config) -> tuple[list[str], list[str]]:
    """Write tiny real checkpoints and LoRAs into the model roots and scan them."""
    roots = config.model_roots()
    checkpoints = roots["checkpoints"][0]
    loras = roots["loras"][0]
    modelfiles.write_pony_checkpoint(checkpoints / "ponyDiffusionV6XL.safetensors")
    modelfiles.write_sdxl_checkpoint(checkpoints / "juggernautXL_v9.safetensors")
    modelfiles.write_sd15_checkpoint(checkpoints / "dreamshaper_8.safetensors")
    modelfiles.write_pony_lora(loras / "mychar.safetensors")
    modelfiles.write_sdxl_lora(loras / "detail_tweaker_xl.safetensors")
    modelfiles.write_sd15_lora(loras / "ink_sketch_sd15.safetensors")
    for root in roots.values():
        root[0].mkdir(parents=True, exist_ok=True)
    init_database(config.db_path())
    scan_roots(model_roots=roots)
    return (
        ["ponyDiffusionV6XL", "juggernautXL_v9", "dreamshaper_8"],
        ["mychar", "detail_tweaker_xl", "ink_sketch_sd15"],
    )


def seed_home(config: Config, images: int = 30) -> Seeded:
    """Models and gallery images for one data dir."""
    checkpoints, loras = seed_models(config)
    return Seeded(seed_gallery(config, images), checkpoints, loras)
