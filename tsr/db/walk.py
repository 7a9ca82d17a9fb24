"""List the model files under the roots (scandir, stat only), staying inside the allowed roots."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tsr.errors import RootViolation
from tsr.paths import is_within

#: the suffixes a scan picks up (lower case)
MODEL_SUFFIXES = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth")
#: config root kinds and the file kind they suggest when the header says nothing
ROOT_KINDS = {"checkpoints": "checkpoint", "loras": "lora", "vae": "vae", "embeddings": "embedding"}


@dataclass(frozen=True)
class SeenFile:
    """A model file found on disk, with the stat fields that tell whether it changed."""

    path: str
    root: str
    kind_hint: str | None
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class ScanRoot:
    """A folder to scan, the configured root it belongs to, and that root's kind."""

    path: str
    root: str
    kind_hint: str | None


def plan_roots(
    roots: Sequence[Path] | None, model_roots: Mapping[str, Sequence[Path]] | None
) -> list[ScanRoot]:
    """The folders to scan: `roots` (each inside a configured root) or every configured root."""
    configured: list[tuple[str, str | None]] = []
    for kind, paths in (model_roots or {}).items():
        for path in paths:
            configured.append((_absolute(path), ROOT_KINDS.get(kind)))
    # the most specific configured root wins when roots nest
    configured.sort(key=lambda item: -len(item[0]))
    wanted = [_absolute(p) for p in roots] if roots else [folder for folder, _ in configured]
    planned: dict[str, ScanRoot] = {}
    for folder in wanted:
        if model_roots is None:
            planned.setdefault(folder, ScanRoot(folder, folder, None))
            continue
        owner = next((c for c in configured if is_within(Path(folder), Path(c[0]))), None)
        if owner is None:
            raise RootViolation(
                f"{folder} is not inside a configured model root; add it under [paths] in the "
                "config (see `tsr config show`)"
            )
        planned.setdefault(folder, ScanRoot(folder, owner[0], owner[1]))
    return list(planned.values())


def _absolute(path: Path | str) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


def walk(scan_root: ScanRoot, allowed: Sequence[str]) -> Iterator[SeenFile]:
    """Every model file under `scan_root` (or that file); symlinks only lead into allowed roots."""
    if os.path.isfile(scan_root.path):
        # one file named on the command line
        if scan_root.path.lower().endswith(MODEL_SUFFIXES):
            stat = os.stat(scan_root.path)
            yield SeenFile(
                scan_root.path, scan_root.root, scan_root.kind_hint, stat.st_size,
                stat.st_mtime_ns, stat.st_ino,
            )  # fmt: skip
        return
    visited: set[tuple[int, int]] = set()
    stack = [scan_root.path]
    while stack:
        folder = stack.pop()
        try:
            folder_stat = os.stat(folder)
            key = (folder_stat.st_dev, folder_stat.st_ino)
            if key in visited:
                continue  # a symlink loop, or two links to one folder
            visited.add(key)
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable folders are skipped; their files count as not seen
        for entry in entries:
            try:
                linked = entry.is_symlink()
                if linked and not _allowed_target(entry.path, allowed):
                    continue
                if entry.is_dir():
                    stack.append(entry.path)
                    continue
                if not entry.name.lower().endswith(MODEL_SUFFIXES) or not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue
            yield SeenFile(
                path=entry.path,
                root=scan_root.root,
                kind_hint=scan_root.kind_hint,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                inode=stat.st_ino,
            )


def _allowed_target(path: str, allowed: Sequence[str]) -> bool:
    return any(is_within(Path(path), Path(root)) for root in allowed)
