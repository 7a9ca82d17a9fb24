"""Thumbnails and previews for the UI: bytes through the session, fitted in threads, cached."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from tsr.tui.widgets.picture import (
    RGB,
    Fitted,
    Geometry,
    LruCache,
    ResolvedRenderer,
    fit_image,
)

if TYPE_CHECKING:
    from tsr.tui.data import Session

Source = Literal["thumb", "full"]
#: at most this many image fetches run at once (the server's thumbnailer has few threads too)
FETCH_LIMIT = 4
#: and this many decodes (the machines this runs on may have two cores)
DECODE_LIMIT = 2


class ImageStore:
    """Where the UI gets fitted images: a cache by (image, source, box), then the session."""

    def __init__(self, renderer: ResolvedRenderer) -> None:
        self.renderer = renderer
        self.geometry = Geometry.for_renderer(renderer)
        self._bytes: LruCache[tuple[int, Source], bytes] = LruCache(512)
        self._full: LruCache[tuple[int, Source], bytes] = LruCache(4)
        self._fitted: LruCache[tuple[int, Source, int, int, RGB | None], Fitted] = LruCache(256)
        self._fetching: asyncio.Semaphore | None = None
        self._decoding: asyncio.Semaphore | None = None

    def clear(self) -> None:
        """Forget everything (another server: the same id is another image)."""
        self._bytes = LruCache(self._bytes.capacity)
        self._full = LruCache(self._full.capacity)
        self._fitted = LruCache(self._fitted.capacity)

    def cached(
        self, image_id: int, source: Source, box: tuple[int, int], pad: RGB | None = None
    ) -> Fitted | None:
        """The fitted image if it is already here."""
        return self._fitted.get((image_id, source, *box, pad))

    def cached_preview(
        self, image_id: int, box: tuple[int, int], pad: RGB | None = None
    ) -> Fitted | None:
        """The preview `preview()` would give, if it is already here."""
        thumb = self.cached(image_id, "thumb", box, pad)
        if thumb is not None and not thumb.upscaled:
            return thumb
        return self.cached(image_id, "full", box, pad)

    async def fitted(
        self,
        session: Session,
        image_id: int,
        source: Source,
        box: tuple[int, int],
        pad: RGB | None = None,
    ) -> Fitted:
        """`image_id`'s thumbnail or file fitted into `box` cells (fetched and decoded once);
        with `pad`, letterboxed to exactly `box` on that colour."""
        key = (image_id, source, *box, pad)
        hit = self._fitted.get(key)
        if hit is not None:
            return hit
        data = await self._data(session, image_id, source)
        if self._decoding is None:
            self._decoding = asyncio.Semaphore(DECODE_LIMIT)
        async with self._decoding:
            result = await asyncio.to_thread(fit_image, data, box, self.geometry, pad)
        self._fitted.put(key, result)
        return result

    async def preview(
        self, session: Session, image_id: int, box: tuple[int, int], pad: RGB | None = None
    ) -> Fitted:
        """The best cheap image for a preview: the thumbnail, unless it is too small for `box`."""
        if self.renderer in ("halfcell", "unicode", "none"):
            fitted = await self.fitted(session, image_id, "thumb", box, pad)
            if not fitted.upscaled:
                return fitted
        return await self.fitted(session, image_id, "full", box, pad)

    async def _data(self, session: Session, image_id: int, source: Source) -> bytes:
        cache = self._bytes if source == "thumb" else self._full
        data = cache.get((image_id, source))
        if data is not None:
            return data
        if self._fetching is None:
            self._fetching = asyncio.Semaphore(FETCH_LIMIT)
        async with self._fetching:
            if source == "thumb":
                data = await session.thumbnail(image_id)
            else:
                data = await session.image_file(image_id)
        cache.put((image_id, source), data)
        return data
