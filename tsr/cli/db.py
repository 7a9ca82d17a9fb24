"""`tsr db`: scan model roots, link to CivitAI, search, list, trigger words, overrides.

Every verb goes through a tsr server (`local` by default, `--remote NAME` for another), so it
works the same on this machine and on a GPU box; scans and links run there as tasks.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from tsr.cli import db_render as render
from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.output import print_json, warn

if TYPE_CHECKING:
    from tsr.client import Client
    from tsr.schemas.models import ModelFile
    from tsr.schemas.tasks import TaskOut

db_app = typer.Typer(
    help="The models database: scan, link to CivitAI, search.", no_args_is_help=True
)

FileRef = Annotated[str, typer.Argument(help="A file: id, path, file name, or SHA256/AutoV2.")]


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


def _client(remote: str | None, local: bool) -> Client:
    from tsr.cli.common import client_for

    return client_for(remote, local)


def _absolute(path: str) -> str:
    # relative paths mean the user's folder; the server takes only absolute ones
    return os.path.abspath(os.path.expanduser(path))


def _resolve(client: Client, ref: str) -> ModelFile:
    """The file a user's reference names (paths are made absolute here, in the user's folder)."""
    from tsr.schemas.db_api import is_path_ref

    return client.db.resolve(_absolute(ref) if is_path_ref(ref) else ref)


def _finished(task: TaskOut) -> TaskOut:
    """The task if it succeeded; else its error, as the same kind of tsr error."""
    from tsr.client.db_api import task_error

    if task.state != "done":
        raise task_error(task)
    return task


@db_app.command("scan")
def scan(
    roots: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to scan (default: every configured model root)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Files hashed at once (default: cores).")
    ] = None,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Find model files, hash new and changed ones, and flag vanished ones as missing."""
    wanted = [_absolute(str(root)) for root in roots or []]
    with _client(remote, local) as client:
        task = render.start("scan", lambda: client.db.scan(wanted or None, workers=workers))
        task = render.follow(
            client,
            task,
            show_bar=not as_json,
            interrupted="files already hashed are saved: run `tsr db scan` to resume",
        )
    result = _finished(task).scan
    assert result is not None
    if as_json:
        print_json(result)
        return
    render.print_scan(result, roots_given=bool(wanted))


@db_app.command("link")
def link(
    retry_misses: Annotated[
        bool, typer.Option("--retry-misses", help="Ask again about hashes CivitAI did not know.")
    ] = False,
    models: Annotated[
        bool, typer.Option("--models", help="Also cache each new model in full (tags, versions).")
    ] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Link unlinked files to CivitAI by SHA256 (cached versions first, then 100 per call).

    The server asks CivitAI with its own API key (`tsr config set civitai.api_key KEY` there).
    """
    with _client(remote, local) as client:
        task = render.start(
            "link", lambda: client.db.link(retry_misses=retry_misses, models=models)
        )
        task = render.follow(
            client, task, show_bar=not as_json, interrupted="files linked so far stay linked"
        )
    result = _finished(task).link
    assert result is not None
    if as_json:
        print_json(result)
        return
    render.print_link(result)


@db_app.command("cache")
def cache(
    model_id: Annotated[int, typer.Argument(help="The CivitAI model id.")],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Fetch a CivitAI model with all its versions into the cache (again = refresh)."""
    with _client(remote, local) as client:
        task = render.start("cache", lambda: client.db.cache(model_id))
        task = render.follow(client, task, show_bar=False, interrupted="nothing was stored")
    result = _finished(task).cache
    assert result is not None
    if as_json:
        print_json(result)
        return
    render.print_cache(result)


@db_app.command("refresh")
def refresh(
    remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Re-fetch every CivitAI model a local file is linked to."""
    with _client(remote, local) as client:
        task = render.follow(
            client,
            render.start("refresh", client.db.refresh),
            show_bar=not as_json,
            interrupted="models fetched so far are stored",
        )
    results = _finished(task).refresh
    assert results is not None
    if as_json:
        print_json(results)
        return
    render.print_refresh(results)


@db_app.command("tasks")
def tasks(remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False) -> None:
    """The server's recent scan, link and cache tasks (newest first)."""
    with _client(remote, local) as client:
        found = client.db.tasks()
    if as_json:
        print_json(found)
        return
    render.print_tasks(found)


@db_app.command("cancel")
def cancel(
    task_id: Annotated[int, typer.Argument(help="The task's id (see `tsr db tasks`).")],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Stop a scan, link or refresh task running on the server (what it did is kept)."""
    with _client(remote, local) as client:
        task = client.db.cancel(task_id)
    if as_json:
        print_json(task)
        return
    if task.finished_state:
        print(f"{task.kind} task #{task.id} is {task.state}")
    else:
        print(f"{task.kind} task #{task.id} stops at its next step")


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
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List model files (JSON: id, path, sha256, kind, family, missing, civitai...)."""
    with _client(remote, local) as client:
        page = client.db.all_files(
            limit=limit,
            offset=offset,
            kind=kind,
            family=family,
            linked=linked,
            missing=missing,
            hidden=hidden,
            sort=sort.value,
        )
    if as_json:
        print_json(page.items)
        return
    render.file_rows(page.items)
    if page.next_offset is not None:
        print(f"... {page.total - page.next_offset} more (--offset {page.next_offset})")


@db_app.command("search")
def search_command(
    query: Annotated[list[str], typer.Argument(help="Words to find (all must match).")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Search file names, CivitAI names, trigger words and tags."""
    with _client(remote, local) as client:
        hits = client.db.search(" ".join(query), limit=limit)
    if as_json:
        print_json(hits)
        return
    if not hits:
        warn(f"nothing matches {' '.join(query)!r}")
        raise SystemExit(1)
    render.file_rows([hit.file for hit in hits])


@db_app.command("show")
def show(
    file: FileRef, remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Everything the database knows about one file."""
    with _client(remote, local) as client:
        detail = client.db.file(_resolve(client, file).id)
    if as_json:
        print_json(detail)
        return
    render.print_detail(detail)


@db_app.command("stats")
def stats_command(
    remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Counts: files, kinds, families, links, cache, duplicates."""
    with _client(remote, local) as client:
        result = client.db.stats()
    if as_json:
        print_json(result)
        return
    render.print_stats(result)


@db_app.command("duplicates")
def duplicates_command(
    remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Files whose content (SHA256) is at several paths."""
    with _client(remote, local) as client:
        groups = client.db.duplicates()
    if as_json:
        print_json(groups)
        return
    render.print_duplicates(groups)


@db_app.command("triggers")
def triggers(
    args: Annotated[
        list[str],
        typer.Argument(metavar="FILE | add FILE WORD... | remove FILE WORD...", show_default=False),
    ],
    include_hidden: Annotated[bool, typer.Option("--all", help="Also show removed words.")] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a file's trigger words (CivitAI, training tags, yours), or add/remove your own."""
    action = args[0] if args[0] in ("add", "remove") and len(args) >= 3 else None
    if action is None and len(args) != 1:
        raise click.UsageError("give one file, or: add FILE WORD... / remove FILE WORD...")
    with _client(remote, local) as client:
        if action is None:
            result = client.db.triggers(_resolve(client, args[0]).id, hidden=include_hidden)
        else:
            change = client.db.add_triggers if action == "add" else client.db.remove_triggers
            result = change(_resolve(client, args[1]).id, args[2:])
    if as_json:
        print_json(result)
        return
    render.print_triggers(result)


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
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Override a file's family, hide it, or keep notes on it (they follow moves)."""
    from tsr.client.db_api import file_change

    change = file_change(
        None if family == "auto" else family,
        clear_family=family == "auto",
        hidden=hide,
        notes=notes,
    )
    with _client(remote, local) as client:
        updated = client.db.update_file(_resolve(client, file).id, change)
    if as_json:
        print_json(updated)
        return
    print(
        f"#{updated.id} {updated.name}: family {updated.family or '-'} "
        f"({updated.family_signal or 'no signal'}){', hidden' if updated.hidden else ''}"
    )
