"""Import a folder of PNGs (A1111, sd.cpp or tsr parameters) into the gallery, skipping copies."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsr import paths
from tsr.db.database import db
from tsr.db.images import GalleryImage
from tsr.errors import BadRequest
from tsr.gallery.png import PngError, read_chunks, text_of
from tsr.gallery.records import fields_from_texts
from tsr.schemas.images import ImportProblem, ImportReport, LoraUse

if TYPE_CHECKING:
    from tsr.gallery.store import GalleryStore


def read_image(path: Path) -> tuple[bytes, dict[str, Any], list[LoraUse]]:
    """A PNG file's bytes, row fields and LoRAs; PngError or OSError when it cannot be used."""
    data = path.read_bytes()
    chunks = read_chunks(data)
    fields, loras = fields_from_texts(text_of(chunks))
    return data, fields, loras


def file_time(path: Path) -> datetime:
    """When a file was last written (UTC): an imported image's creation time."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def holds_sha256(digest: str) -> bool:
    """Whether the gallery already has a file with exactly these bytes."""
    with db.connection_context():
        return bool(GalleryImage.select().where(GalleryImage.sha256 == digest).exists())


def _candidates(folder: Path, skip: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirs, files in os.walk(folder):
        here = Path(directory)
        subdirs[:] = sorted(name for name in subdirs if not paths.is_within(here / name, skip))
        found.extend(here / name for name in sorted(files))
    return found


def import_folder(store: GalleryStore, folder: Path, *, move: bool = False) -> ImportReport:
    """Copy (or, with `move`, move) every PNG under `folder` into the gallery.

    Each file keeps its bytes (and so its own metadata); its fields come from the `parameters`
    text. Files the gallery already holds are skipped; unreadable ones are reported, not fatal.
    """
    folder = folder.expanduser()
    if not folder.is_dir():
        raise BadRequest(f"{folder} is not a folder; give the folder of PNGs to import")
    if paths.is_within(folder, store.root):
        raise BadRequest(f"{folder} is inside the gallery already; run a reconcile instead")
    # one connection for the whole import (each save would otherwise open and close its own)
    with db.connection_context():
        return _import_files(store, _candidates(folder, store.root), move)


def _import_files(store: GalleryStore, files: list[Path], move: bool) -> ImportReport:
    report = ImportReport()
    for path in files:
        if path.suffix.lower() != ".png" or not path.is_file():
            report.ignored += 1
            continue
        try:
            data, fields, loras = read_image(path)
        except PngError as exc:
            report.failed.append(ImportProblem(file=str(path), reason=str(exc)))
            continue
        except OSError as exc:
            reason = f"cannot read it: {exc.strerror or exc}"
            report.failed.append(ImportProblem(file=str(path), reason=reason))
            continue
        if holds_sha256(hashlib.sha256(data).hexdigest()):
            report.duplicates.append(str(path))
            continue
        image_id = store.add_file(data, fields, loras, moment=file_time(path))
        report.imported.append(image_id)
        if move:
            path.unlink(missing_ok=True)
    return report
