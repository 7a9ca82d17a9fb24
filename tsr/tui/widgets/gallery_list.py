"""What a gallery view holds: its images, cursor and marks, changed at once as the user prunes."""

from __future__ import annotations

from tsr.schemas.images import ImageFilters, ImageOut

#: the image states each state filter shows
STATES_SHOWN: dict[str, tuple[str, ...]] = {
    "active": ("inbox", "kept"),
    "inbox": ("inbox",),
    "kept": ("kept",),
    "trashed": ("trashed",),
    "all": ("inbox", "kept", "trashed"),
}


def matches(image: ImageOut, filters: ImageFilters) -> bool:
    """Whether `image` belongs in a view with `filters` (by state and favourite)."""
    if image.state not in STATES_SHOWN[filters.state]:
        return False
    return filters.favourite is None or image.favourite == filters.favourite


class GalleryList:
    """The loaded images of one view, newest first, with a cursor, marks and the server's count."""

    def __init__(self) -> None:
        self.items: list[ImageOut] = []
        self.filters = ImageFilters(state="inbox")
        #: how many images the view holds on the server (None: not known)
        self.total: int | None = None
        #: the server has images beyond the loaded ones
        self.has_more = False
        self.cursor = 0
        self.marks: set[int] = set()

    @property
    def current(self) -> ImageOut | None:
        """The image under the cursor."""
        return self.items[self.cursor] if 0 <= self.cursor < len(self.items) else None

    def replace(
        self,
        items: list[ImageOut],
        filters: ImageFilters,
        has_more: bool,
        total: int | None,
        select_id: int | None,
    ) -> None:
        """A new first page; the cursor goes to `select_id` (else to the top)."""
        self.items, self.filters, self.has_more, self.total = items, filters, has_more, total
        self.marks &= {image.id for image in items}
        ids = [image.id for image in items]
        self.cursor = ids.index(select_id) if select_id in ids else 0

    def append(self, items: list[ImageOut], has_more: bool) -> None:
        """The next page, at the end."""
        known = {image.id for image in self.items}
        self.items.extend(image for image in items if image.id not in known)
        self.has_more = has_more

    def clamp(self) -> None:
        """Keep the cursor on an image."""
        self.cursor = max(0, min(self.cursor, len(self.items) - 1))

    def remove(self, image_id: int) -> bool:
        """Drop an image, keeping the cursor on the same neighbour; False when it was not here."""
        index = next((i for i, it in enumerate(self.items) if it.id == image_id), None)
        if index is None:
            return False
        del self.items[index]
        self.marks.discard(image_id)
        if index < self.cursor:
            self.cursor -= 1
        return True

    def change(self, ids: list[int], **changes: object) -> None:
        """Apply a change at once; images that leave the view go, the cursor stays in place."""
        for image_id in ids:
            index = next((i for i, it in enumerate(self.items) if it.id == image_id), None)
            if index is None:
                continue
            changed = self.items[index].model_copy(update=changes)
            if matches(changed, self.filters):
                self.items[index] = changed
            elif self.remove(image_id) and self.total is not None:
                self.total -= 1
        self.marks.clear()
        self.clamp()

    def fold_in(self, images: list[ImageOut], select: bool = False) -> None:
        """Fresh copies from the server: replaced, inserted newest first, or dropped by filter.

        The cursor stays on the image it was on (or its place, if that image left the view);
        with `select` it goes to the first of `images`.
        """
        current = self.current.id if self.current else None
        place = self.cursor
        for image in images:
            index = next((i for i, it in enumerate(self.items) if it.id == image.id), None)
            if index is not None:
                del self.items[index]
            belongs = matches(image, self.filters)
            if self.total is not None:
                self.total += int(belongs) - int(index is not None)
            if not belongs:
                self.marks.discard(image.id)
                continue
            position = next((i for i, it in enumerate(self.items) if it.id < image.id), None)
            if position is None and self.has_more:
                continue  # it belongs to a page not loaded yet
            self.items.insert(len(self.items) if position is None else position, image)
        ids = [image.id for image in self.items]
        if select and images and images[0].id in ids:
            self.cursor = ids.index(images[0].id)
        elif current in ids:
            self.cursor = ids.index(current)
        else:
            self.cursor = place
        self.clamp()

    def targets(self) -> list[int]:
        """What an action applies to: the marked images, else the one under the cursor."""
        if self.marks:
            return [image.id for image in self.items if image.id in self.marks]
        return [self.current.id] if self.current else []

    def status(self) -> str:
        """`inbox · 12/340 · 3 marked`."""
        view = {"active": "all but trash", "trashed": "trash"}.get(
            self.filters.state, self.filters.state
        )
        if self.filters.favourite:
            view = "favourites"
        count = str(self.total) if self.total is not None else f"{len(self.items)}+"
        position = f"{self.cursor + 1}/{count}" if self.items else f"0/{count}"
        marked = f" · {len(self.marks)} marked" if self.marks else ""
        return f"{view} · {position}{marked}"
