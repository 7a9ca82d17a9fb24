"""`tsr db`: scan model roots, link to CivitAI, search, list, trigger words, overrides."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import click
import typer

from tsr.cli.output import human_size, print_json, print_table, warn

if TYPE_CHECKING:
    from rich.progress import Progress

    from tsr.civitai import CivitaiClient
    from tsr.config import Config
    from tsr.schemas.models import FileSort, LinkedFile, ModelFile, TriggerWord

db_app = typer.Typer(
    help="The models database: scan, link to CivitAI, search.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FileRef = Annotated[str, typer.Argument(help="A file: id, path, file name, or SHA256/AutoV2.")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", help="CivitAI API key (else CIVITAI_API_KEY, else the config)."),
]


class SortOrder(StrEnum):
    """How `tsr db list` orders files."""

    name = "name"
    path = "path"
    size = "size"
    newest = "newest"
    oldest = "oldest"
    kind = "kind"
    family = "family"


def register(app: typer.Typer) -> None:
    """Add the `db` group to the root app."""
    app.add_typer(db_app, name="db")


@contextmanager
def _database() -> Iterator[Config]:
    from tsr.config import load_config
    from tsr.db import db, init_database

    config = load_config()
    init_database(config.db_path())
    with db.connection_context():
        yield config


def _client(config: Config, api_key: str | None) -> CivitaiClient:
    from tsr.civitai import CivitaiClient

    return CivitaiClient.from_config(config.civitai, api_key)


def _progress_bar(unit: str = "bytes") -> Progress | None:
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


@db_app.command("scan")
def scan(
    roots: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to scan (default: every configured model root)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Files hashed at once (default: cores).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Find model files, hash new and changed ones, and flag vanished ones as missing."""
    from tsr.db.scan import scan_roots
    from tsr.schemas.models import ScanProgress

    bar = None if as_json else _progress_bar()
    task = bar.add_task("listing files", total=None, files="") if bar else None

    def show(step: ScanProgress) -> None:
        if bar is not None and task is not None and step.phase != "done":
            hashing = step.phase == "hash"
            bar.update(
                task,
                description="hashing" if hashing else "listing files",
                total=step.bytes_total or None,
                completed=step.bytes_done,
                files=f"{step.files_done}/{step.files_total} files" if hashing else "",
            )

    try:
        with _database() as config, bar or nullcontext():
            result = scan_roots(
                roots or None, model_roots=config.model_roots(), workers=workers, progress=show
            )
    except KeyboardInterrupt:
        warn("scan interrupted; files already hashed are saved: run `tsr db scan` to resume")
        raise SystemExit(130) from None
    if as_json:
        print_json(result)
        return
    for root in result.missing_roots:
        # configured roots nobody created yet are normal; a root given by hand is not
        if roots or result.vanished:
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


def _linked_rows(linked: list[LinkedFile]) -> None:
    print_table(
        ["ID", "FILE", "CIVITAI MODEL", "VERSION", "BASE MODEL"],
        [
            (e.file_id, Path(e.path).name, e.civitai.model_name, e.civitai.version_name,
             e.civitai.base_model or "-")
            for e in linked
        ],
    )  # fmt: skip


@db_app.command("link")
def link(
    retry_misses: Annotated[
        bool, typer.Option("--retry-misses", help="Ask again about hashes CivitAI did not know.")
    ] = False,
    models: Annotated[
        bool, typer.Option("--models", help="Also cache each new model in full (tags, versions).")
    ] = False,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Link unlinked files to CivitAI by SHA256 (cached versions first, then 100 per call)."""
    from tsr.db.link import link_files
    from tsr.schemas.models import LinkProgress

    bar = None if as_json else _progress_bar(unit="files")
    task = bar.add_task("linking", total=None, files="") if bar else None

    def show(step: LinkProgress) -> None:
        if bar is not None and task is not None:
            bar.update(task, total=step.files_total, completed=step.files_done)

    with _database() as config, _client(config, api_key) as client, bar or nullcontext():
        result = link_files(client, retry_misses=retry_misses, progress=show, fetch_models=models)
    if as_json:
        print_json(result)
        return
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
        _linked_rows(result.linked)


@db_app.command("cache")
def cache(
    model_id: Annotated[int, typer.Argument(help="The CivitAI model id.")],
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Fetch a CivitAI model with all its versions into the cache (again = refresh)."""
    from tsr.db.link import cache_model

    with _database() as config, _client(config, api_key) as client:
        result = cache_model(client, model_id)
    if as_json:
        print_json(result)
        return
    print(
        f"cached model {result.model_id} {result.name!r} ({result.type or 'unknown type'}): "
        f"{result.versions} version(s), {result.files} file(s), "
        f"{result.trained_words} trained word(s); linked {len(result.linked)} local file(s)"
    )
    if result.linked:
        _linked_rows(result.linked)


@db_app.command("refresh")
def refresh(api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Re-fetch every CivitAI model a local file is linked to."""
    from tsr.db.link import refresh_linked

    with _database() as config, _client(config, api_key) as client:
        results = refresh_linked(client)
    if as_json:
        print_json(results)
        return
    print(f"refreshed {len(results)} model(s)")
    for result in results:
        print(f"  {result.model_id}  {result.name}  ({result.versions} version(s))")


def _state(file: ModelFile) -> str:
    flags = [
        flag
        for flag, on in (("missing", file.missing), ("hidden", file.hidden), ("error", file.error))
        if on
    ]
    return ",".join(flags) or "ok"


def _file_rows(files: list[ModelFile]) -> None:
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


@db_app.command("list")
def list_command(
    kind: Annotated[str | None, typer.Option(help="checkpoint, lora, vae, embedding...")] = None,
    family: Annotated[
        str | None, typer.Option(help="sd15, sdxl, pony, illustrious, flux...")
    ] = None,
    linked: Annotated[
        bool | None, typer.Option("--linked/--unlinked", help="Only (un)linked files.")
    ] = None,
    missing: Annotated[
        bool | None, typer.Option("--missing/--present", help="Only missing (present) files.")
    ] = None,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden files.")] = False,
    sort: Annotated[SortOrder, typer.Option(help="Order.")] = SortOrder.name,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List model files (JSON: id, path, sha256, kind, family, missing, civitai...)."""
    from tsr.db.queries import list_files
    from tsr.schemas.models import FileFilter

    filters = FileFilter(
        kind=kind, family=family, linked=linked, missing=missing, include_hidden=hidden
    )
    with _database():
        page = list_files(filters, sort=cast("FileSort", sort.value), limit=limit, offset=offset)
    if as_json:
        print_json(page.items)
        return
    _file_rows(page.items)
    if page.next_offset is not None:
        print(f"... {page.total - page.next_offset} more (--offset {page.next_offset})")


@db_app.command("search")
def search_command(
    query: Annotated[list[str], typer.Argument(help="Words to find (all must match).")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Search file names, CivitAI names, trigger words and tags."""
    from tsr.db.queries import search

    with _database():
        hits = search(" ".join(query), limit=limit)
    if as_json:
        print_json(hits)
        return
    if not hits:
        warn(f"nothing matches {' '.join(query)!r}")
        raise SystemExit(1)
    _file_rows([hit.file for hit in hits])


@db_app.command("show")
def show(file: FileRef, as_json: JsonFlag = False) -> None:
    """Everything the database knows about one file."""
    from tsr.db.files import resolve_file
    from tsr.db.queries import file_detail

    with _database():
        detail = file_detail(resolve_file(file).id)
    if as_json:
        print_json(detail)
        return
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


@db_app.command("stats")
def stats_command(as_json: JsonFlag = False) -> None:
    """Counts: files, kinds, families, links, cache, duplicates."""
    from tsr.db.queries import stats

    with _database():
        result = stats()
    if as_json:
        print_json(result)
        return
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


@db_app.command("duplicates")
def duplicates_command(as_json: JsonFlag = False) -> None:
    """Files whose content (SHA256) is at several paths."""
    from tsr.db.queries import duplicates

    with _database():
        groups = duplicates()
    if as_json:
        print_json(groups)
        return
    if not groups:
        print("no duplicates")
        return
    for group in groups:
        print(f"{group.sha256[:12]}  {human_size(group.size)} x {len(group.files)}")
        for file in group.files:
            print(f"  #{file.id}  {file.path}")


def _trigger_rows(words: list[TriggerWord]) -> None:
    print_table(
        ["WORD", "SOURCES", "COUNT", "NOTE"],
        [
            (
                w.word,
                ",".join(w.sources),
                w.count if w.count is not None else "",
                ("hidden " if w.hidden else "") + (f"part of {w.part_of!r}" if w.part_of else ""),
            )
            for w in words
        ],
    )


@db_app.command("triggers")
def triggers(
    args: Annotated[
        list[str],
        typer.Argument(metavar="FILE | add FILE WORD... | remove FILE WORD...", show_default=False),
    ],
    include_hidden: Annotated[bool, typer.Option("--all", help="Also show removed words.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a file's trigger words (CivitAI, training tags, yours), or add/remove your own."""
    from tsr.db.files import resolve_file
    from tsr.db.triggers import add_trigger, remove_trigger, triggers_for

    action = args[0] if args[0] in ("add", "remove") and len(args) >= 3 else None
    with _database():
        if action is None:
            if len(args) != 1:
                raise click.UsageError("give one file, or: add FILE WORD... / remove FILE WORD...")
            result = triggers_for(resolve_file(args[0]).id, include_hidden=include_hidden)
        else:
            change = add_trigger if action == "add" else remove_trigger
            result = change(resolve_file(args[1]).id, args[2:])
    if as_json:
        print_json(result)
        return
    print(result.path)
    if result.triggers:
        _trigger_rows(result.triggers)
    else:
        print("no trigger words (link it with `tsr db link`, or add your own)")


@db_app.command("set")
def set_command(
    file: FileRef,
    family: Annotated[
        str | None, typer.Option(help="Use this family (`auto`: back to detection).")
    ] = None,
    hide: Annotated[
        bool | None, typer.Option("--hide/--unhide", help="Hide it from lists and search.")
    ] = None,
    notes: Annotated[str | None, typer.Option(help='Your notes ("" clears them).')] = None,
    as_json: JsonFlag = False,
) -> None:
    """Override a file's family, hide it, or keep notes on it (they follow moves)."""
    from tsr.db.files import resolve_file, set_override

    with _database():
        target = resolve_file(file)
        updated = set_override(
            target.id,
            family=None if family == "auto" else family,
            clear_family=family == "auto",
            hidden=hide,
            notes=notes,
        )
    if as_json:
        print_json(updated)
        return
    print(
        f"#{updated.id} {updated.name}: family {updated.family or '-'} "
        f"({updated.family_signal or 'no signal'}){', hidden' if updated.hidden else ''}"
    )
