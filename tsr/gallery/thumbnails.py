"""Thumbnails: WebP files made on first request from the image, cached by image id and size."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tsr.errors import BadRequest, TsrError
from tsr.gallery.files import write_atomic

MIN_SIZE, MAX_SIZE = 16, 1024
DEFAULT_SIZE = 256
#: WebP is about a sixth of a JPEG of the same look at this size; method 2 encodes in ~1 ms
_WEBP_OPTIONS = {"quality": 80, "method": 2}


def check_size(size: int) -> int:
    """A thumbnail size (the longer side, in pixels) within the allowed range."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise BadRequest(f"thumbnail size {size} is out of range; use {MIN_SIZE} to {MAX_SIZE}")
    return size


def thumbnail_path(thumbs_dir: Path, image_id: int, size: int) -> Path:
    """Where the thumbnail of an image at a size is cached."""
    return thumbs_dir / str(size) / f"{image_id}.webp"


def render(source: Path, size: int) -> bytes:
    """Scale an image file to fit `size` x `size` and encode it as WebP."""
    try:
        with Image.open(source) as image:
            # draft() lets JPEG decode at a fraction of full size; reducing_gap=1 makes
            # thumbnail() shrink by the largest whole factor first (a box filter: an exact area
            # average, and the fastest), then resample what is left (1024 -> 256: nothing)
            image.draft("RGB", (size, size))
            image.thumbnail((size, size), reducing_gap=1.0)
            scaled: Image.Image = image
            if scaled.mode not in ("RGB", "RGBA"):
                scaled = scaled.convert("RGBA" if "A" in scaled.getbands() else "RGB")
            buffer = io.BytesIO()
            scaled.save(buffer, "WEBP", **_WEBP_OPTIONS)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise TsrError(f"cannot make a thumbnail of {source.name}: {exc}") from None
    return buffer.getvalue()


def ensure_thumbnail(source: Path, target: Path, size: int) -> Path:
    """The cached thumbnail at `target`, made from `source` first if it is not there yet."""
    if not target.exists():
        # a cache: atomic (never a half file) but not fsynced, it can always be made again
        write_atomic(target, render(source, size), durable=False)
    return target


def remove_thumbnails(thumbs_dir: Path, image_id: int) -> None:
    """Delete an image's thumbnails at every size."""
    if not thumbs_dir.is_dir():
        return
    for size_dir in thumbs_dir.iterdir():
        if size_dir.is_dir():
            (size_dir / f"{image_id}.webp").unlink(missing_ok=True)
