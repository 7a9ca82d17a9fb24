"""Tables for the image gallery index: images, the LoRAs each used, and the undo journal."""

from __future__ import annotations

from typing import ClassVar

import peewee
from playhouse.sqlite_ext import FTS5Model, RowIDField, SearchField

from tsr.db.database import BaseModel, db


class GalleryImage(BaseModel):
    """One image file in the gallery with everything it was made with.

    `id` is a time-ordered integer (see `tsr.gallery.ids`), so newest-first pages walk the primary
    key and a date range is a range of ids. The file's location follows from the id and the state.
    """

    id = peewee.BigIntegerField(primary_key=True)
    #: path relative to the gallery root, outside the trash (`YYYY/MM/DD/<id>.png`)
    file = peewee.TextField()
    created = peewee.DateTimeField()
    width = peewee.IntegerField()
    height = peewee.IntegerField()
    file_size = peewee.BigIntegerField()
    sha256 = peewee.CharField(max_length=64, index=True)

    state = peewee.CharField(max_length=8, default="inbox")
    #: the state a trashed image returns to on restore
    restore_state = peewee.CharField(max_length=8, null=True)
    trashed_at = peewee.DateTimeField(null=True)
    favourite = peewee.BooleanField(default=False)
    rating = peewee.SmallIntegerField(default=0)
    tags = peewee.TextField(default="[]")
    notes = peewee.TextField(default="")

    checkpoint = peewee.TextField(null=True)
    #: full SHA256 when tsr made the image; imports only know the AutoV2 prefix
    checkpoint_sha256 = peewee.CharField(max_length=64, null=True)
    #: AutoV2: the first 10 hex digits of the checkpoint's SHA256
    checkpoint_hash = peewee.CharField(max_length=10, null=True)
    prompt = peewee.TextField(default="")
    negative = peewee.TextField(default="")
    steps = peewee.IntegerField(null=True)
    cfg = peewee.FloatField(null=True)
    sampler = peewee.CharField(null=True)
    scheduler = peewee.CharField(null=True)
    seed = peewee.BigIntegerField(null=True)
    clip_skip = peewee.IntegerField(null=True)
    backend = peewee.CharField(null=True)
    job = peewee.CharField(null=True)
    batch_index = peewee.IntegerField(null=True)
    #: `tsr` (made here), `a1111` or `sdcpp` (imported), `unknown` (no parameters)
    source = peewee.CharField(max_length=8, default="tsr")
    #: the PNG's `parameters` text as stored in the file
    parameters = peewee.TextField(default="")
    #: JSON object of further parameters
    extra = peewee.TextField(default="{}")

    class Meta:
        # SQLite appends the rowid (= id) to every index, so each of these serves
        # "WHERE column = ? AND id < cursor ORDER BY id DESC LIMIT n" by a seek and a short walk
        indexes = (
            (("state",), False),
            (("favourite",), False),
            (("checkpoint",), False),
            (("checkpoint_hash",), False),
            # cover the gallery's counts (`/api/images/stats`), so they never read the table
            (("state", "file_size"), False),
            (("favourite", "state"), False),
        )


class GalleryLora(BaseModel):
    """A LoRA used by an image, with its weight and hash (full SHA256 or a 12-hex prefix)."""

    image = peewee.ForeignKeyField(GalleryImage, backref="loras", on_delete="CASCADE", index=False)
    position = peewee.SmallIntegerField(default=0)
    name = peewee.TextField()
    weight = peewee.FloatField(null=True)
    sha256 = peewee.CharField(max_length=64, null=True)

    class Meta:
        primary_key = peewee.CompositeKey("image", "position")
        # filtering by LoRA walks (name, image) newest first
        indexes = ((("name", "image"), False),)


class GalleryAction(BaseModel):
    """One undoable gallery action: its kind and the images' fields as they were before it."""

    id = peewee.AutoField()
    created = peewee.DateTimeField()
    action = peewee.CharField(max_length=16)
    #: JSON list of {"id": ..., field: value before the action, ...}
    before = peewee.TextField()


class GalleryPrompt(FTS5Model):
    """Trigram full-text index of prompts (rowid = image id): substring search at any scale.

    It keeps its own copy of each prompt, so a row is deleted by rowid alone; the gallery store
    adds and deletes these rows with the images (prompts never change).
    """

    rowid = RowIDField()
    prompt = SearchField()

    class Meta:
        database = db
        table_name = "gallery_prompt"
        options: ClassVar[dict[str, str]] = {"tokenize": "trigram"}


#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = [GalleryImage, GalleryLora, GalleryAction, GalleryPrompt]


def delete_rows(image_ids: list[int]) -> None:
    """Delete images' rows from every gallery table (their files are the caller's business)."""
    GalleryLora.delete().where(GalleryLora.image.in_(image_ids)).execute()
    GalleryPrompt.delete().where(GalleryPrompt.rowid.in_(image_ids)).execute()
    GalleryImage.delete().where(GalleryImage.id.in_(image_ids)).execute()
