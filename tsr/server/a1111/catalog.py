"""Checkpoints and LoRAs as A1111 names them (titles, hashes, tag names), found in the models DB.

A1111 clients name a checkpoint by its title (`sub/name.safetensors [autov2]`), its file name,
its model name, or a hash, and a LoRA by the stem used in `<lora:stem:w>` tags. Only files the
database knows, that are present, and that lie under the configured roots of their kind are
offered: the same files the job queue would accept.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from tsr.config import Config
from tsr.db.database import db
from tsr.db.files import dict_rows, file_select
from tsr.db.models import LocalFile
from tsr.errors import BadRequest, NotFound
from tsr.paths import is_within

#: how many close names an error suggests
CLOSE_NAMES = 5
#: file extensions of model files, left out when names are compared
MODEL_SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".sft", ".bin")
_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")
#: a title's trailing ` [hash]`
_TITLE_HASH = re.compile(r"^(?P<name>.+?)\s*\[(?P<hash>[0-9a-fA-F]{8,64})\]$")


@dataclass(frozen=True)
class CatalogFile:
    """A model file with the names A1111 gives it."""

    id: int
    path: Path
    #: the path below its root, `/`-separated, with the extension (A1111's `name`)
    relative: str
    sha256: str | None
    family: str | None
    hidden: bool
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def stem(self) -> str:
        """The file name without its extension (what `<lora:stem:w>` tags use)."""
        return self.path.stem

    @property
    def short_hash(self) -> str | None:
        """AutoV2: the first 10 hex digits of the SHA256."""
        return self.sha256[:10] if self.sha256 else None

    @property
    def title(self) -> str:
        """A1111's checkpoint title: `sub/name.safetensors [autov2]`."""
        return f"{self.relative} [{self.short_hash}]" if self.short_hash else self.relative

    @property
    def model_name(self) -> str:
        """A1111's model name: the relative path without extension, separators as `_`."""
        return str(PurePath(self.relative).with_suffix("")).replace("/", "_")

    @property
    def alias(self) -> str:
        """A1111's LoRA alias: the name it was trained under (`ss_output_name`), else the stem."""
        trained = self.metadata.get("ss_output_name")
        return trained if isinstance(trained, str) and trained else self.stem


def load_files(config: Config, kind: str) -> list[CatalogFile]:
    """Present `checkpoint` or `lora` files under that kind's roots, by relative path (sync)."""
    roots = config.model_roots()["checkpoints" if kind == "checkpoint" else "loras"]
    query = file_select().where((LocalFile.kind == kind) & (LocalFile.missing == False))  # noqa: E712
    found: list[CatalogFile] = []
    with db.connection_context():
        rows = list(dict_rows(query))
    for row in rows:
        path = Path(row["path"])
        root = next((r for r in roots if is_within(path, r)), None)
        if root is None:
            continue
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:  # a symlinked root: the DB path is the resolved one
            relative = path.name
        found.append(
            CatalogFile(
                id=row["id"],
                path=path,
                relative=relative,
                sha256=row["sha256"],
                family=row["family"],
                hidden=bool(row.get("o_hidden")),
                metadata=_metadata(row.get("header_metadata")) if kind == "lora" else {},
            )
        )
    found.sort(key=lambda f: (f.relative.casefold(), f.id))
    return found


def _metadata(text: str | None) -> dict[str, Any]:
    # A1111 shows training metadata with JSON-looking values parsed (ss_tag_frequency...)
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    parsed: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str) and value[:1] == "{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        parsed[str(key)] = value
    return parsed


def find_checkpoint(files: list[CatalogFile], ref: str) -> CatalogFile:
    """The checkpoint a title, file name, model name, stem or hash names; NotFound with close
    names, or BadRequest when the name fits several files."""
    text = ref.strip()
    titled = _TITLE_HASH.match(text)
    if titled:
        by_hash = _by_hash(files, titled.group("hash"))
        if by_hash is not None:
            return by_hash
        text = titled.group("name")
    elif _HASH.match(text):
        by_hash = _by_hash(files, text)
        if by_hash is not None:
            return by_hash

    def names(entry: CatalogFile) -> list[str]:
        return [
            entry.relative,
            entry.path.name,
            entry.model_name,
            entry.stem,
            str(PurePath(entry.relative).with_suffix("")),
        ]

    return _pick(files, text, names, "checkpoint", "GET /sdapi/v1/sd-models")


def find_lora(files: list[CatalogFile], name: str) -> CatalogFile:
    """The LoRA a `<lora:name:w>` tag names (stem, relative path, or training alias)."""

    def names(entry: CatalogFile) -> list[str]:
        return [
            entry.stem,
            entry.path.name,
            str(PurePath(entry.relative).with_suffix("")),
            entry.relative,
            entry.alias,
        ]

    return _pick(files, name.strip(), names, "LoRA", "GET /sdapi/v1/loras")


def _by_hash(files: list[CatalogFile], digest: str) -> CatalogFile | None:
    digest = digest.lower()
    hits = [f for f in files if f.sha256 and f.sha256.startswith(digest)]
    return hits[0] if len(hits) == 1 else None


def _pick(
    files: list[CatalogFile],
    text: str,
    names: Callable[[CatalogFile], list[str]],
    what: str,
    listing: str,
) -> CatalogFile:
    # exact spelling first, then ignoring case; within each, the earlier kinds of names win
    # (a stem beats another file's training alias)
    table = [names(f) for f in files]
    for fold in (False, True):
        wanted = text.casefold() if fold else text
        for tier in range(len(table[0]) if table else 0):
            hits = [f for f, n in zip(files, table, strict=True) if _same(n[tier], wanted, fold)]
            unique = list({f.id: f for f in hits}.values())
            if len(unique) == 1:
                return unique[0]
            if len(unique) > 1:
                listed = ", ".join(f.relative for f in unique[:CLOSE_NAMES])
                raise BadRequest(
                    f"several {what} files are named {text!r} ({listed}); name one by its "
                    "path below its root"
                )
    suggestions = [f.stem if what == "LoRA" else f.relative for f in files]
    close = close_names(text, suggestions)
    hint = f"; close names: {', '.join(close)}" if close else ""
    raise NotFound(
        f"there is no {what} named {text!r} in tsr's models database{hint} ({listing} lists "
        f"them; after adding files, POST /sdapi/v1/refresh-{_refresh(what)})"
    )


def _same(name: str, wanted: str, fold: bool) -> bool:
    return (name.casefold() if fold else name) == wanted


def _refresh(what: str) -> str:
    return "loras" if what == "LoRA" else "checkpoints"


def close_names(text: str, candidates: list[str]) -> list[str]:
    """Up to CLOSE_NAMES candidates that look like `text` (spelling, or containing it); a
    candidate's file extension does not count."""
    keys: dict[str, str] = {}
    for candidate in candidates:
        keys.setdefault(_without_extension(candidate).casefold(), candidate)
    needle = _without_extension(text).casefold()
    close = difflib.get_close_matches(needle, list(keys), n=CLOSE_NAMES, cutoff=0.6)
    found = [keys[key] for key in close]
    for key, candidate in keys.items():
        if len(found) >= CLOSE_NAMES:
            break
        if needle and needle in key and candidate not in found:
            found.append(candidate)
    return found


def _without_extension(name: str) -> str:
    suffix = PurePath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in MODEL_SUFFIXES else name
