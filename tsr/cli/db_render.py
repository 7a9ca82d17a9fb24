"""How `tsr db` shows things: tables, summaries, and progress bars that follow a server task."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsr.cli.output import human_size, print_table, warn

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from tsr.client import Client
    from tsr.schemas.models import (
        CacheResult,
        DbStats,
        DuplicateGroup,
        FileDetail,
        FileTriggers,
        LinkedFile,
        LinkResult,
        ModelFile,
        ScanResult,
    )
    from tsr.schemas.tasks import TaskOut

#: how long an interrupted command waits to see its cancelled task end
CANCEL_WAIT_SECONDS = 2.0


# ---- following a task -------------------------------------------------------------------------


def progress_bar(unit: str = "bytes") -> Progress | None:
    """A rich progress bar on stderr (files, bytes, rate, ETA), or None if it is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich import progress as bars
    from rich.console import Console

    amounts = (
        [bars.DownloadColumn(), bars.TransferSpeedColumn()]
        if unit == "bytes"
        else [bars.MofNCompleteColumn()]
    )
    return bars.Progress(
        bars.TextColumn("{task.description}"),
        bars.BarColumn(),
        bars.TextColumn("{task.fields[files]}"),
        *amounts,
        bars.TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _show(bar: Progress, row: TaskID, task: TaskOut) -> None:
    progress = task.progress
    if task.kind == "scan":
        hashing = progress.phase == "hash"
        bar.update(
            row,
            description="hashing" if hashing else "listing files",
            total=progress.bytes_total or None,
            completed=progress.bytes_done,
            files=f"{progress.done}/{progress.total} files" if hashing else "",
        )
    else:
        bar.update(row, total=progress.total, completed=progress.done)


def start(kind: str, starter: Callable[[], TaskOut]) -> TaskOut:
    """Start a server task; Ctrl-C before the server answered says what is known."""
    try:
        return starter()
    except KeyboardInterrupt:
        warn(f"interrupted while starting the {kind}; `tsr db tasks` shows whether it runs")
        raise SystemExit(130) from None  # told the user already


def follow(client: Client, task: TaskOut, *, show_bar: bool, interrupted: str) -> TaskOut:
    """Wait for a server task (a bar on a terminal); Ctrl-C cancels it there and says so.

    `interrupted` is what the user is told after a cancel (what was kept, how to go on).
    """
    bar = progress_bar("bytes" if task.kind == "scan" else "files") if show_bar else None
    label = {"scan": "listing files", "link": "linking"}.get(task.kind, f"{task.kind}ing")
    row = bar.add_task(label, total=None, files="") if bar is not None else None

    def update(current: TaskOut) -> None:
        if bar is not None and row is not None:
            _show(bar, row, current)

    try:
        with bar or nullcontext():
            return client.db.wait(task, progress=update)
    except KeyboardInterrupt:
        _cancel(client, task, interrupted)
        raise SystemExit(130) from None  # told the user already


def _cancel(client: Client, task: TaskOut, interrupted: str) -> None:
    from tsr.errors import Conflict

    where = f"task #{task.id} on {client.remote}"
    try:
        stopped = client.db.cancel(task.id)
    except Conflict as exc:
        warn(f"{exc}; it goes on ({where})")
        return
    # it stops at its next step; the server keeps what it did
    with contextlib.suppress(TimeoutError):
        stopped = client.db.wait(stopped, timeout=CANCEL_WAIT_SECONDS)
    if stopped.state == "done":
        warn(f"the {task.kind} had finished already ({where})")
        return
    warn(f"{task.kind} cancelled ({where}); {interrupted}")


# ---- results of tasks -------------------------------------------------------------------------


def print_scan(result: ScanResult, roots_given: bool) -> None:
    """A scan's summary, the roots that do not exist, and the files it could not read."""
    for root in result.missing_roots:
        # configured roots nobody created yet are normal; a root given by hand is not
        if roots_given or result.vanished:
            warn(f"{root} does not exist (files known under it count as missing)")
    print(
        f"{result.seen} files under {len(result.roots)} root(s): {result.unchanged} unchanged, "
        f"{result.new} new, {result.changed} changed, {result.moved} moved, "
        f"{result.vanished} now missing, {len(result.errors)} with errors"
    )
    if result.hashed_bytes:
        rate = result.hashed_bytes / max(result.seconds, 1e-6)
        print(
            f"hashed {human_size(result.hashed_bytes)} in {result.seconds:.1f} s "
            f"({human_size(rate)}/s)"
        )
    for issue in result.errors:
        named = Path(issue.path).name in issue.error
        warn(
            f"{Path(issue.path).parent}/{issue.error}" if named else f"{issue.path}: {issue.error}"
        )


def linked_rows(linked: list[LinkedFile]) -> None:
    """Files a link or cache run tied to CivitAI versions."""
    print_table(
        ["ID", "FILE", "CIVITAI MODEL", "VERSION", "BASE MODEL"],
        [
            (e.file_id, Path(e.path).name, e.civitai.model_name, e.civitai.version_name,
             e.civitai.base_model or "-")
            for e in linked
        ],
    )  # fmt: skip


def print_link(result: LinkResult) -> None:
    """A link run's summary and the files it linked."""
    from_cache = sum(1 for entry in result.linked if entry.via == "cache")
    print(
        f"linked {len(result.linked)} of {result.checked} unlinked files "
        f"({from_cache} from the cache, {len(result.linked) - from_cache} from CivitAI) "
        f"in {result.requests} request(s)"
    )
    if result.misses or result.skipped_known_misses:
        print(
            f"{result.misses + result.skipped_known_misses} file(s) unknown to CivitAI "
            "(remembered; --retry-misses asks again)"
        )
    if result.linked:
        linked_rows(result.linked)


def print_cache(result: CacheResult) -> None:
    """What caching one CivitAI model stored and linked."""
    print(
        f"cached model {result.model_id} {result.name!r} ({result.type or 'unknown type'}): "
        f"{result.versions} version(s), {result.files} file(s), "
        f"{result.trained_words} trained word(s); linked {len(result.linked)} local file(s)"
    )
    if result.linked:
        linked_rows(result.linked)


def print_refresh(results: list[CacheResult]) -> None:
    """The models a refresh fetched again."""
    print(f"refreshed {len(results)} model(s)")
    for result in results:
        print(f"  {result.model_id}  {result.name}  ({result.versions} version(s))")


def print_tasks(tasks: list[TaskOut]) -> None:
    """The server's recent tasks."""
    if not tasks:
        print("no tasks since the server started")
        return
    print_table(
        ["ID", "KIND", "STATE", "PROGRESS", "STARTED", "ERROR"],
        [
            (
                t.id,
                t.kind,
                t.state + (" (cancelling)" if t.cancel_requested and not t.finished_state else ""),
                f"{t.progress.done}/{t.progress.total} {t.progress.unit}"
                if t.progress.total is not None
                else "-",
                t.started.astimezone().strftime("%H:%M:%S") if t.started else "-",
                t.error or "",
            )
            for t in tasks
        ],
    )


# ---- files ------------------------------------------------------------------------------------


def _state(file: ModelFile) -> str:
    flags = [
        flag
        for flag, on in (("missing", file.missing), ("hidden", file.hidden), ("error", file.error))
        if on
    ]
    return ",".join(flags) or "ok"


def file_rows(files: list[ModelFile]) -> None:
    """Files as a table: id, name, kind, family, size, CivitAI link, state."""
    print_table(
        ["ID", "NAME", "KIND", "FAMILY", "SIZE", "CIVITAI", "STATE"],
        [
            (
                f.id,
                f.name,
                f.kind,
                f.family or "-",
                human_size(f.size),
                f"{f.civitai.model_name} / {f.civitai.version_name}" if f.civitai else "-",
                _state(f),
            )
            for f in files
        ],
    )


def print_detail(detail: FileDetail) -> None:
    """Everything the database knows about one file, one `key: value` per line."""
    civitai = detail.civitai
    lines: list[tuple[str, Any]] = [
        ("id", detail.id),
        ("path", detail.path + ("  (missing)" if detail.missing else "")),
        ("size", human_size(detail.size)),
        ("sha256", detail.sha256 or "-"),
        ("kind", detail.kind),
        ("family", f"{detail.family or '-'}  ({detail.family_signal or 'no signal'})"),
        ("civitai", f"{civitai.model_name} / {civitai.version_name} "
                    f"(model {civitai.model_id}, version {civitai.version_id}, "
                    f"{civitai.base_model or 'base model unknown'})" if civitai else "not linked"),
        ("triggers", ", ".join(t.word for t in detail.triggers) or "-"),
        ("hidden", "yes" if detail.override.hidden else "no"),
        ("notes", detail.override.notes or "-"),
        ("error", detail.error or "-"),
    ]  # fmt: skip
    for key, value in lines:
        print(f"{key + ':':10}{value}")


def print_stats(result: DbStats) -> None:
    """Counts over the database."""
    print(
        f"files:      {result.present} present ({human_size(result.total_bytes)}), "
        f"{result.missing} missing, {result.hidden} hidden, {result.errors} with errors"
    )
    print(f"linked:     {result.linked} linked, {result.unlinked} not linked")
    print("kinds:      " + ", ".join(f"{k} {n}" for k, n in sorted(result.by_kind.items())))
    print("families:   " + ", ".join(f"{k} {n}" for k, n in sorted(result.by_family.items())))
    print(
        f"civitai:    {result.civitai_models} models, {result.civitai_versions} versions cached, "
        f"{result.known_misses} hashes known to be unknown"
    )
    print(f"triggers:   {result.triggers}")
    print(f"duplicates: {result.duplicate_groups} hash(es) at several paths")
    last = result.last_scan.astimezone().strftime("%Y-%m-%d %H:%M") if result.last_scan else "never"
    print(f"last scan:  {last}")


def print_duplicates(groups: list[DuplicateGroup]) -> None:
    """Each content hash found at several paths, with its paths."""
    if not groups:
        print("no duplicates")
        return
    for group in groups:
        print(f"{group.sha256[:12]}  {human_size(group.size)} x {len(group.files)}")
        for file in group.files:
            print(f"  #{file.id}  {file.path}")


def print_triggers(result: FileTriggers) -> None:
    """A file's path and its trigger words with their sources."""
    print(result.path)
    if not result.triggers:
        print("no trigger words (link it with `tsr db link`, or add your own)")
        return
    print_table(
        ["WORD", "SOURCES", "COUNT", "NOTE"],
        [
            (
                w.word,
                ",".join(w.sources),
                w.count if w.count is not None else "",
                ("hidden " if w.hidden else "") + (f"part of {w.part_of!r}" if w.part_of else ""),
            )
            for w in result.triggers
        ],
    )
