"""`tsr images open` and `tsr images download`: image files from a tsr server, saved here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption, client_for
from tsr.cli.output import print_json, warn
from tsr.errors import BadRequest, NotFound, TsrError


def open_image(
    image_id: Annotated[int, typer.Argument(metavar="ID", help="The image's id.")],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Open an image in the desktop's viewer.

    The image is downloaded to a private temp folder first; without a viewer (or a display)
    the file's path is printed, to open some other way.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix="tsr-image-"))
    except OSError as exc:
        raise TsrError(f"cannot make a temp folder for the image: {exc.strerror or exc}") from None
    with client_for(remote, local) as client:
        path = _saved(client.images.download, image_id, folder / f"{image_id}.png")
    opened = open_in_viewer(path)
    if as_json:
        print_json({"id": image_id, "path": str(path), "opened": opened})
    elif opened:
        print(f"opened {path}")
    else:
        print(f"saved {path} (no image viewer to open it with)")


def viewer_command(path: Path) -> list[str] | None:
    """The command opening `path` in the desktop's viewer, or None without one (or a display)."""
    if sys.platform == "darwin":
        program = shutil.which("open")
    elif os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        # no display (ssh, a console): xdg-open would fall back to a text browser in this terminal
        program = shutil.which("xdg-open")
    else:
        program = None
    return [program, str(path)] if program else None


def open_in_viewer(path: Path) -> bool:
    """Start the viewer on `path` without waiting for it; False when there is none to start."""
    command = viewer_command(path)
    if command is None:
        return False
    try:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True


def download_images(
    ids: Annotated[
        list[int], typer.Argument(metavar="ID", help="Image ids (as `tsr images list` shows).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to save into (made if missing).")
    ] = Path("."),
    thumb: Annotated[bool, typer.Option("--thumb", help="Save WebP thumbnails instead.")] = False,
    size: Annotated[
        int, typer.Option(min=16, max=1024, help="Thumbnail size (longer side, pixels).")
    ] = 256,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Save images (or thumbnails) to files.

    Each is saved as `<id>.png` (thumbnails `<id>.webp`), whole or not at all.
    """
    if out.exists() and not out.is_dir():
        raise TsrError(f"{out} is a file, not a folder; give --out a folder to save into")
    saved: list[dict[str, object]] = []
    failed = 0
    with client_for(remote, local) as client:
        for image_id in dict.fromkeys(ids):
            try:
                if thumb:
                    dest = out / f"{image_id}.webp"
                    path = _saved(client.images.download_thumbnail, image_id, dest, size)
                else:
                    dest = out / f"{image_id}.png"
                    path = _saved(client.images.download, image_id, dest)
            except (NotFound, BadRequest) as exc:
                # this id only: the others are still worth fetching
                warn(str(exc))
                failed += 1
                continue
            saved.append({"id": image_id, "path": str(path)})
            if not as_json:
                print(path)
    if as_json:
        print_json(saved)
    if failed:
        raise typer.Exit(1)


def _saved(download: Callable[..., Path], *args: Any) -> Path:
    """Run a download; a local write failure (disk full, no permission) becomes one sentence."""
    try:
        return download(*args)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise TsrError(f"cannot save the image{where}: {exc.strerror or exc}") from None
