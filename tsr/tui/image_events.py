"""What an `image` event means for a gallery view: images to fold in, to fetch, or to drop."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from tsr.schemas.images import ImageOut
from tsr.schemas.server import Event

#: more new images than this at once (a big import): read the view again instead
REFETCH_LIMIT = 50


@dataclass
class ImageNews:
    """One image event, digested."""

    #: images the event carries whole (made by a job, edited)
    images: list[ImageOut] = field(default_factory=list)
    #: images that changed, to ask the server about
    fetch: list[int] = field(default_factory=list)
    #: images gone for good
    gone: list[int] = field(default_factory=list)
    #: too much changed: load the view again
    reload: bool = False


def _ids(data: dict[str, object]) -> list[int]:
    ids = data.get("ids")
    return [int(i) for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def image_news(event: Event) -> ImageNews:
    """Digest an `image` event (others mean nothing here)."""
    news = ImageNews()
    if event.topic != "image":
        return news
    data = event.data
    if event.kind in ("created", "updated") and isinstance(data.get("image"), dict):
        try:
            news.images.append(ImageOut.model_validate(data["image"]))
        except ValidationError:
            news.fetch += _ids(data)
    elif event.kind == "purged":
        news.gone = _ids(data)
    elif event.kind in ("kept", "trashed", "restored", "undone", "imported"):
        news.fetch = _ids(data)
        news.reload = len(news.fetch) > REFETCH_LIMIT
    return news
