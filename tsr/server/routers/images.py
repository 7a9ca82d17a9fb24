"""Gallery routes: pages of images, the files and thumbnails, review (keep, trash, undo, purge).

Nothing a client sends becomes a path unchecked: images are named by their database ids (the
store derives each file's place from the id and checks it lies in the gallery), and an import
folder must lie inside the data dir or a model root.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tsr import paths
from tsr.config import Config
from tsr.errors import BadRequest, NotFound, RootViolation
from tsr.gallery import GalleryStore
from tsr.gallery.ids import parse_image_id
from tsr.gallery.thumbnails import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE
from tsr.schemas.images import (
    MAX_PAGE,
    ActionResult,
    ImageFilters,
    ImageOut,
    ImagePage,
    ImageStats,
    ImageUpdate,
    ImportReport,
    PurgeResult,
    StateFilter,
    UndoResult,
)
from tsr.server.deps import ConfigDep, EventsDep, service

router = APIRouter(prefix="/api/images", tags=["images"])
CAPABILITIES = ("gallery",)

GalleryDep = Annotated[GalleryStore, Depends(service(GalleryStore))]
#: a path segment naming an image; anything but a gallery id answers 404
ImageId = Annotated[str, Path(description="The image's id.", max_length=32)]
#: most ids one bulk request may name
MAX_BULK = 10_000
#: image bytes never change for an id: clients may keep them as long as they like
IMMUTABLE = "private, max-age=31536000, immutable"


class ImageIds(BaseModel):
    """The images a bulk action (keep, trash, restore) applies to."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=MAX_BULK)


class ImagePatch(ImageUpdate):
    """An edit of one image: its review state and its own fields; fields left out stay."""

    #: `kept` keeps it (out of the trash too), `trashed` moves it to the trash
    state: Literal["kept", "trashed"] | None = None


class PurgeRequest(BaseModel):
    """Which trashed images to delete for good; one of the three must be given."""

    model_config = ConfigDict(extra="forbid")

    #: these images (those not in the trash are left alone)
    ids: list[int] | None = Field(None, max_length=MAX_BULK)
    #: those trashed at least this many days ago
    older_than_days: float | None = Field(None, ge=0)
    #: everything in the trash
    all_trash: bool = False


class ImportRequest(BaseModel):
    """A folder on the server to import PNGs from (inside the data dir or a model root)."""

    model_config = ConfigDict(extra="forbid")

    folder: str = Field(min_length=1, max_length=4096)
    #: delete each source file once it is in the gallery
    move: bool = False


# ---- pages, stats --------------------------------------------------------------------------


@router.get("", response_model=ImagePage)
def list_images(
    gallery: GalleryDep,
    state: Annotated[StateFilter, Query(description="`active` = inbox and kept.")] = "active",
    favourite: Annotated[bool | None, Query(description="Only favourites (or not).")] = None,
    checkpoint: Annotated[
        str | None, Query(max_length=256, description="A checkpoint stem or hash (10-64 hex).")
    ] = None,
    lora: Annotated[str | None, Query(max_length=256, description="A LoRA stem.")] = None,
    prompt: Annotated[
        str | None, Query(max_length=500, description="Text the prompt contains.")
    ] = None,
    since: Annotated[datetime | None, Query(description="Made at or after (UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Made before (UTC).")] = None,
    min_rating: Annotated[int | None, Query(ge=0, le=5)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=20, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """A page of images, newest first; pass `next_cursor` back as `cursor` for the next."""
    filters = ImageFilters(
        state=state,
        favourite=favourite,
        checkpoint=checkpoint or None,
        lora=lora or None,
        prompt=prompt or None,
        since=since,
        until=until,
        min_rating=min_rating,
    )
    page = gallery.list(filters, cursor, limit)
    # encoded by pydantic-core straight from the store's models: having FastAPI validate 100
    # images again on the way out added ~2 ms a page (bench/api_images.py)
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/stats", response_model=ImageStats)
def image_stats(gallery: GalleryDep) -> ImageStats:
    """Counts per state, favourites, and bytes on disk (trash included and alone)."""
    return gallery.stats()


# ---- bulk review, undo, purge, import -----------------------------------------------------


@router.post("/keep", response_model=ActionResult)
def keep_images(body: ImageIds, gallery: GalleryDep, events: EventsDep) -> ActionResult:
    """Mark images as kept (out of the trash too); `ids` lists those that changed."""
    return _published(events, "kept", gallery.keep(body.ids))


@router.post("/trash", response_model=ActionResult)
def trash_images(body: ImageIds, gallery: GalleryDep, events: EventsDep) -> ActionResult:
    """Move images to the trash (undo or restore brings them back)."""
    return _published(events, "trashed", gallery.trash(body.ids))


@router.post("/restore", response_model=ActionResult)
def restore_images(body: ImageIds, gallery: GalleryDep, events: EventsDep) -> ActionResult:
    """Take images out of the trash, back to the state they had."""
    return _published(events, "restored", gallery.restore(body.ids))


@router.post("/undo", response_model=UndoResult)
def undo(gallery: GalleryDep, events: EventsDep) -> UndoResult:
    """Revert the last keep, trash, restore or edit (`action` null: nothing left to undo)."""
    result = gallery.undo()
    if result.action is not None:
        events.publish("image", "undone", result)
    return result


@router.post("/purge", response_model=PurgeResult)
def purge(body: PurgeRequest, gallery: GalleryDep, events: EventsDep) -> PurgeResult:
    """Delete trashed images for good: `ids`, those trashed `older_than_days` ago, or all.

    Only images in the trash are ever deleted. A request naming none of the three is refused,
    so no client purges the whole trash by leaving a field out.
    """
    if body.ids is None and body.older_than_days is None and not body.all_trash:
        raise BadRequest(
            "say which trashed images to purge: ids, older_than_days, or all_trash: true"
        )
    if body.ids == []:
        return PurgeResult(ids=[])
    result = gallery.purge(body.ids, older_than_days=body.older_than_days)
    if result.ids:
        events.publish("image", "purged", result)
    return result


@router.post("/import", response_model=ImportReport)
def import_images(
    body: ImportRequest, gallery: GalleryDep, config: ConfigDep, events: EventsDep
) -> ImportReport:
    """Copy (or move) the PNGs of a folder on the server into the gallery, with parameters.

    The folder must lie inside the server's data dir or one of its model roots.
    """
    folder = importable_folder(body.folder, config)
    report = gallery.import_folder(folder, move=body.move)
    if report.imported:
        events.publish("image", "imported", {"ids": report.imported})
    return report


def importable_folder(text: str, config: Config) -> FilePath:
    """The folder an import may read: absolute, and inside the data dir or a model root."""
    if "\x00" in text:
        raise BadRequest("the import folder's path holds a NUL character")
    folder = FilePath(text).expanduser()
    if not folder.is_absolute():
        raise BadRequest(f"give the import folder as an absolute path on the server, not {text!r}")
    allowed = [config.home, *config.all_model_roots()]
    # resolved (symlinks followed) before the check: a link cannot lead outside
    if not any(paths.is_within(folder, root) for root in allowed):
        raise RootViolation(
            f"{text} is outside the folders this server imports from; put the images in a "
            f"folder under its data dir {config.home} or a model root and import that"
        )
    return folder.resolve()


# ---- one image -----------------------------------------------------------------------------


@router.get(
    "/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The PNG file."}},
)
def image_file(image_id: ImageId, request: Request, gallery: GalleryDep) -> Response:
    """The image's PNG file (with its parameters); the bytes of an id never change."""
    image = gallery.get(image_id)
    etag = f'"{image.sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{image.id}.png"'
    return Response(_read_file(gallery, image.id), media_type="image/png", headers=headers)


@router.get(
    "/{image_id}/thumb",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}, "description": "The WebP thumbnail."}},
)
def image_thumbnail(
    image_id: ImageId,
    request: Request,
    gallery: GalleryDep,
    size: Annotated[
        int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="The longer side, in pixels.")
    ] = DEFAULT_SIZE,
) -> Response:
    """A WebP thumbnail (longer side `size`), made on first request and cached."""
    number = parse_image_id(image_id)
    etag = f'"{number}-{size}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    try:
        data = gallery.thumbnail(number, size).read_bytes()
    except FileNotFoundError:
        # purged between finding the thumbnail and reading it
        raise NotFound(f"there is no image with id {number}") from None
    return Response(data, media_type="image/webp", headers=headers)


@router.get("/{image_id}/meta", response_model=ImageOut)
def image_meta(image_id: ImageId, gallery: GalleryDep) -> ImageOut:
    """Everything known about an image: state, review fields and its parsed parameters."""
    return gallery.get(image_id)


@router.patch("/{image_id}", response_model=ImageOut)
def update_image(
    image_id: ImageId, body: ImagePatch, gallery: GalleryDep, events: EventsDep
) -> ImageOut:
    """Keep or trash an image, or edit its favourite flag, rating, tags or notes (undoable)."""
    number = parse_image_id(image_id)
    if body.state == "kept":
        _published(events, "kept", gallery.keep([number]))
    elif body.state == "trashed":
        _published(events, "trashed", gallery.trash([number]))
    fields = body.model_dump(exclude_none=True, exclude={"state"})
    if not fields:
        return gallery.get(number)
    image = gallery.update(number, **fields)
    events.publish("image", "updated", {"ids": [number], "image": image})
    return image


@router.delete("/{image_id}", response_model=ActionResult)
def trash_image(image_id: ImageId, gallery: GalleryDep, events: EventsDep) -> ActionResult:
    """Move the image to the trash (undo or restore brings it back)."""
    return _published(events, "trashed", gallery.trash([parse_image_id(image_id)]))


@router.post("/{image_id}/restore", response_model=ActionResult)
def restore_image(image_id: ImageId, gallery: GalleryDep, events: EventsDep) -> ActionResult:
    """Take the image out of the trash, back to the state it had."""
    return _published(events, "restored", gallery.restore([parse_image_id(image_id)]))


# ---- helpers -------------------------------------------------------------------------------


def _published(events: EventsDep, kind: str, result: ActionResult) -> ActionResult:
    """Tell subscribers which images changed (nothing when none did)."""
    if result.ids:
        events.publish("image", kind, result)
    return result


def _matches(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match")
    if not wanted:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return "*" in tags or etag in tags


def _read_file(gallery: GalleryStore, image_id: int) -> bytes:
    """An image's bytes; a keep, trash or restore moving the file meanwhile is followed."""
    for _attempt in range(3):
        try:
            return gallery.path_of(image_id).read_bytes()
        except FileNotFoundError:
            continue
    raise NotFound(
        f"the file of image {image_id} is missing from the gallery folder; "
        "restarting the tsr server reconciles the gallery"
    )
