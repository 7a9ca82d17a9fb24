"""Files as tsr sees them: rows as wire models, the family decision, overrides, lookup."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import peewee

from tsr.db.database import db
from tsr.db.models import CachedModel, CachedVersion, FileLink, FileOverride, LocalFile
from tsr.db.sql import CHUNK, chunked, placeholders
from tsr.detect import detect_family
from tsr.errors import BadRequest, NotFound
from tsr.families import all_families
from tsr.schemas.models import CivitaiRef, ModelFile
from tsr.schemas.models import FileOverride as OverrideInfo

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def dict_rows(query: peewee.ModelSelect[Any]) -> Iterator[dict[str, Any]]:
    """The rows of a select as dicts (the stubs type every row as the model)."""
    yield from cast(Iterable[dict[str, Any]], query.dicts())


def tuple_rows(query: peewee.ModelSelect[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of a select as tuples."""
    yield from cast(Iterable[tuple[Any, ...]], query.tuples())


def file_select() -> peewee.ModelSelect[LocalFile]:
    """Files with their override and CivitAI link; read rows with `dict_rows`."""
    return (
        LocalFile.select(
            LocalFile,
            FileOverride.hidden.alias("o_hidden"),
            CachedVersion.id.alias("v_id"),
            CachedVersion.name.alias("v_name"),
            CachedVersion.base_model.alias("v_base_model"),
            CachedModel.id.alias("m_id"),
            CachedModel.name.alias("m_name"),
            CachedModel.type.alias("m_type"),
        )
        .join(FileOverride, peewee.JOIN.LEFT_OUTER, on=FileOverride.file == LocalFile.id)
        .switch(LocalFile)
        .join(FileLink, peewee.JOIN.LEFT_OUTER, on=FileLink.file == LocalFile.id)
        .join(CachedVersion, peewee.JOIN.LEFT_OUTER, on=CachedVersion.id == FileLink.version)
        .join(CachedModel, peewee.JOIN.LEFT_OUTER, on=CachedModel.id == CachedVersion.model)
    )


def timestamp(seconds: float) -> datetime:
    """A stored epoch time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def to_model_file(row: dict[str, Any]) -> ModelFile:
    """One `file_select` row as the wire model."""
    civitai = None
    if row.get("v_id") is not None:
        civitai = CivitaiRef(
            model_id=row["m_id"],
            version_id=row["v_id"],
            model_name=row["m_name"],
            version_name=row["v_name"],
            base_model=row["v_base_model"],
            model_type=row["m_type"],
        )
    return ModelFile(
        id=row["id"],
        path=row["path"],
        name=row["name"],
        root=row["root"],
        size=row["size"],
        sha256=row["sha256"],
        autov2=row["autov2"],
        kind=row["kind"],
        format=row["format"],
        architecture=row["architecture"],
        family=row["family"],
        family_signal=row["family_signal"],
        tensor_count=row["tensor_count"],
        missing=bool(row["missing"]),
        hidden=bool(row.get("o_hidden")),
        error=row["last_error"],
        first_seen=timestamp(row["first_seen"]),
        last_seen=timestamp(row["last_seen"]),
        civitai=civitai,
    )


def get_file(file_id: int) -> ModelFile:
    """One file by id (NotFound when there is none)."""
    row = next(dict_rows(file_select().where(LocalFile.id == file_id)), None)
    if row is None:
        raise NotFound(f"there is no model file with id {file_id} in the database")
    return to_model_file(row)


def decide_family(
    override: str | None, base_model: str | None, detected: str | None, signal: str | None
) -> tuple[str | None, str | None]:
    """The family in force and why: the user's override, CivitAI's baseModel, then the header."""
    # the header-side answer was decided at scan time (it needs the tensors); the two signals
    # that outrank it are decided here, worded as tsr.detect words them
    decision = detect_family(
        architecture=None,
        architecture_signal=None,
        metadata={},
        file_name="",
        civitai_base_model=base_model,
        override=override,
    )
    if decision.value is not None:
        return decision.value, decision.signal
    return detected, signal


def refresh_families(file_ids: Iterable[int]) -> None:
    """Recompute the family of these files after a scan, link or override changed an input."""
    changes: list[tuple[str | None, str | None, int]] = []
    for chunk in chunked(sorted(set(file_ids))):
        rows = db.execute_sql(
            "SELECT f.id, f.family, f.family_signal, f.detected_family, f.detected_signal, "
            "o.family, v.base_model FROM local_file f "
            "LEFT JOIN file_override o ON o.file_id = f.id "
            "LEFT JOIN file_link l ON l.file_id = f.id "
            "LEFT JOIN civitai_version v ON v.id = l.version_id "
            f"WHERE f.id IN ({placeholders(len(chunk))})",
            chunk,
        )
        for file_id, family, signal, detected, detected_signal, override, base_model in rows:
            decided = decide_family(override, base_model, detected, detected_signal)
            if decided != (family, signal):
                changes.append((decided[0], decided[1], file_id))
    db.cursor().executemany(
        "UPDATE local_file SET family = ?, family_signal = ? WHERE id = ?", changes
    )


def get_override(file_id: int) -> OverrideInfo:
    """The user's override of a file (defaults when there is none)."""
    found = FileOverride.get_or_none(FileOverride.file == file_id)
    if found is None:
        return OverrideInfo()
    return OverrideInfo(family=found.family, hidden=found.hidden, notes=found.notes)


def set_override(
    file_id: int,
    *,
    family: str | None = None,
    clear_family: bool = False,
    hidden: bool | None = None,
    notes: str | None = None,
) -> ModelFile:
    """Change what the user decided about a file; `notes=""` clears the notes."""
    get_file(file_id)
    if family is not None and family not in all_families():
        known = ", ".join(all_families())
        raise BadRequest(f"{family!r} is not a model family; choose one of {known}")
    with db.atomic("IMMEDIATE"):
        current = get_override(file_id)
        values = {
            "family": None if clear_family else (family or current.family),
            "hidden": current.hidden if hidden is None else hidden,
            "notes": current.notes if notes is None else (notes or None),
        }
        FileOverride.insert(file=file_id, updated_at=time.time(), **values).on_conflict(
            conflict_target=[FileOverride.file],
            preserve=[
                FileOverride.family,
                FileOverride.hidden,
                FileOverride.notes,
                FileOverride.updated_at,
            ],
        ).execute()
        refresh_families([file_id])
    return get_file(file_id)


def resolve_file(ref: str | int) -> ModelFile:
    """Find one file by id, path, SHA256 (or a prefix of 8+ hex, e.g. AutoV2), or file name."""
    text = str(ref).strip()
    if not text:
        raise BadRequest("name a model file by id, path, hash or file name")
    query = file_select().order_by(LocalFile.missing, LocalFile.id)
    if text.isascii() and text.isdigit() and len(text) < 8:
        return get_file(int(text))
    if _HEX.match(text) and 8 <= len(text) <= 64:
        row = next(dict_rows(query.where(LocalFile.sha256.startswith(text.lower()))), None)
        if row is not None:
            return to_model_file(row)
    if os.sep in text or text.startswith("."):
        path = os.path.abspath(os.path.expanduser(text))
        row = next(dict_rows(query.where(LocalFile.path == path)), None)
        if row is None:
            resolved = str(Path(path).resolve())
            row = next(dict_rows(query.where(LocalFile.path == resolved)), None)
        if row is not None:
            return to_model_file(row)
        raise NotFound(f"{text} is not in the models database; run `tsr db scan` first")
    folded = text.casefold()
    rows = [
        r
        for r in dict_rows(query.where(LocalFile.name.contains(text)))
        if r["name"].casefold() == folded or Path(r["name"]).stem.casefold() == folded
    ]
    present = [r for r in rows if not r["missing"]] or rows
    if len(present) == 1:
        return to_model_file(present[0])
    if not present:
        raise NotFound(f"no model file is named {text!r}; try `tsr db search {text}`")
    listed = ", ".join(f"#{r['id']} {r['path']}" for r in present[:5])
    raise BadRequest(f"several files are named {text!r} ({listed}); use the id or the path")


def file_ids_with_sha256(sha256s: Iterable[str]) -> dict[str, list[int]]:
    """Present files grouped by content hash."""
    found: dict[str, list[int]] = {}
    for chunk in chunked(sorted(set(sha256s)), CHUNK):
        marks = placeholders(len(chunk))
        for file_id, sha in db.execute_sql(
            f"SELECT id, sha256 FROM local_file WHERE missing = 0 AND sha256 IN ({marks})", chunk
        ):
            found.setdefault(sha, []).append(file_id)
    return found
