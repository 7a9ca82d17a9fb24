"""The checkpoints and LoRAs a generation can use, as the models API lists them.

Sync code: call it from a worker thread (plain `def` endpoints), it opens its own connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import peewee

from tsr.db.database import db
from tsr.db.files import dict_rows, file_select, to_model_file, tuple_rows
from tsr.db.models import CachedModel, CachedVersion, FileOverride, LocalFile, Trigger
from tsr.errors import BadRequest
from tsr.families import Family, all_families, family_for_base_model
from tsr.schemas.generation_api import CheckpointOut, CheckpointPage, LoraOut, LoraPage
from tsr.schemas.models import TRIGGER_SOURCES, ModelFile

#: trigger words shown with each LoRA in a listing
TRIGGER_PREVIEW = 5


@dataclass(frozen=True)
class LoadedModel:
    """What one backend holds: a local path when tsr knows it, else the name sd-server reports."""

    backend: str
    path: str | None
    name: str | None


def checked_family(name: str) -> Family:
    """The named family; BadRequest listing the known ones otherwise."""
    families = all_families()
    if name not in families:
        raise BadRequest(f"{name!r} is not a model family; choose one of {', '.join(families)}")
    return families[name]


def _visible(
    query: peewee.ModelSelect[LocalFile], kind: str, include_hidden: bool, text: str | None
) -> peewee.ModelSelect[LocalFile]:
    query = query.where((LocalFile.kind == kind) & (LocalFile.missing == False))  # noqa: E712
    if not include_hidden:
        query = query.where(FileOverride.hidden.is_null(True) | (FileOverride.hidden == False))  # noqa: E712
    if text and text.strip():
        # the file name or the CivitAI model's name (LIKE ignores ASCII case)
        words = text.strip()
        query = query.where(LocalFile.name.contains(words) | CachedModel.name.contains(words))
    return query


def list_checkpoints(
    loaded: Sequence[LoadedModel],
    *,
    kind: str = "checkpoint",
    family: str | None = None,
    text: str | None = None,
    include_hidden: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> CheckpointPage:
    """A page of present model files of `kind` by name, each with the backends holding it."""
    if family:
        checked_family(family)
    with db.connection_context():
        query = _visible(file_select(), kind, include_hidden, text)
        if family:
            query = query.where(LocalFile.family == family)
        total = query.count()
        ordered = query.order_by(LocalFile.name.collate("NOCASE"), LocalFile.id)
        files = [to_model_file(row) for row in dict_rows(ordered.offset(offset).limit(limit))]
    items = [
        CheckpointOut(**found.model_dump(), loaded_on=loaded_on(found, loaded)) for found in files
    ]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return CheckpointPage(
        items=items, total=total, offset=offset, limit=limit, next_offset=next_offset
    )


def loaded_on(found: ModelFile, loaded: Sequence[LoadedModel]) -> list[str]:
    """The backends that hold this file: the same file, or the same stem when only a name is
    known (an external sd-server whose model the database cannot place)."""
    names = []
    path = Path(found.path)
    for model in loaded:
        if model.path is not None:
            held = Path(model.path)
            # resolving costs a system call: only for the files with the right name
            if held.name == path.name and held.resolve() == path.resolve():
                names.append(model.backend)
        elif model.name and model.name in (path.stem, path.name):
            names.append(model.backend)
    return names


def files_at(paths: Iterable[str]) -> dict[str, ModelFile]:
    """The database entries of the files at these paths (those it knows), by the path asked."""
    # the database keeps paths as scanned; a backend may know the same file by its real path
    spellings = {path: (path, str(Path(path).resolve())) for path in paths}
    wanted = sorted({name for names in spellings.values() for name in names})
    if not wanted:
        return {}
    with db.connection_context():
        rows = dict_rows(file_select().where(LocalFile.path.in_(wanted)))
        found = {row["path"]: to_model_file(row) for row in rows}
    matches = {
        path: next((found[n] for n in names if n in found), None)
        for path, names in spellings.items()
    }
    return {path: match for path, match in matches.items() if match is not None}


def lora_fit(
    lora_family: str | None, architecture: str | None, base_model: str | None, family: Family
) -> tuple[bool, str | None]:
    """Whether a LoRA suits checkpoints of `family`, and a note on why (not) or what to expect.

    The same rule as the generation guard: another architecture is refused (unless forced),
    another family of the same architecture works with a warning, an unknown one is let through.
    """
    known = all_families().get(lora_family or family_for_base_model(base_model) or "")
    architecture = known.architecture if known else architecture
    if architecture is None:
        return True, "its base model is unknown, so it was not checked"
    made_for = known.label if known else architecture
    if architecture != family.architecture:
        return False, (
            f"made for {made_for} ({architecture}); {family.label} checkpoints are "
            f"{family.architecture}"
        )
    if known and known.name != family.name:
        return (
            True,
            f"trained on {made_for}; same architecture as {family.label}, results may differ",
        )
    return True, None


def list_loras(
    family: str | None,
    *,
    show_all: bool = False,
    text: str | None = None,
    include_hidden: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> LoraPage:
    """A page of present LoRAs by name: those that suit `family` (all, marked, with
    `show_all`), each with a preview of its trigger words."""
    target = checked_family(family) if family else None
    with db.connection_context():
        query = _visible(file_select(), "lora", include_hidden, text)
        # the fit is decided on four columns of every LoRA; whole rows are read for a page only
        light = query.select(
            LocalFile.id, LocalFile.family, LocalFile.architecture, CachedVersion.base_model
        ).order_by(LocalFile.name.collate("NOCASE"), LocalFile.id)
        fits: dict[int, tuple[bool | None, str | None]] = {}
        for file_id, lora_family, architecture, base_model in tuple_rows(light):
            fit = (
                lora_fit(lora_family, architecture, base_model, target) if target else (None, None)
            )
            if fit[0] is not False or show_all:
                fits[file_id] = fit
        chosen = list(fits)[offset : offset + limit]
        rows = dict_rows(file_select().where(LocalFile.id.in_(chosen)))
        files = {row["id"]: to_model_file(row) for row in rows}
    previews = trigger_preview(chosen)
    page = [
        LoraOut(
            **files[file_id].model_dump(),
            compatible=fits[file_id][0],
            note=fits[file_id][1],
            triggers=previews.get(file_id, []),
        )
        for file_id in chosen
        if file_id in files  # gone since the first query
    ]
    total = len(fits)
    next_offset = offset + len(page) if offset + len(page) < total else None
    return LoraPage(
        family=target.name if target else None,
        architecture=target.architecture if target else None,
        items=page,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=next_offset,
    )


def trigger_preview(file_ids: Sequence[int], count: int = TRIGGER_PREVIEW) -> dict[int, list[str]]:
    """The first `count` trigger words of each file: CivitAI's, then the user's, then training
    tags; whole CivitAI entries rather than their split parts; none the user removed."""
    if not file_ids:
        return {}
    priority = {source: index for index, source in enumerate(TRIGGER_SOURCES)}
    query = Trigger.select(Trigger.file, Trigger.word, Trigger.source, Trigger.rank).where(
        Trigger.file.in_(list(file_ids))
        & (Trigger.hidden == False)  # noqa: E712
        & Trigger.part_of.is_null(True)
    )
    with db.connection_context():
        rows = list(tuple_rows(query))
    rows.sort(key=lambda row: (row[0], priority.get(row[2], len(priority)), row[3]))
    words: dict[int, list[str]] = {}
    seen: dict[int, set[str]] = {}
    for file_id, word, _, _ in rows:
        chosen = words.setdefault(file_id, [])
        folded = word.casefold()
        if len(chosen) < count and folded not in seen.setdefault(file_id, set()):
            seen[file_id].add(folded)
            chosen.append(word)
    return words
