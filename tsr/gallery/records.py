"""Between gallery rows and wire models: row fields from parameters, ImageOut from rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tsr.db.database import db
from tsr.gallery.ids import created_of, relative_file
from tsr.gallery.parameters import parse_parameters
from tsr.schemas.images import ImageOut, ImageParams, LoraUse, ParsedParameters

#: the PNG text chunk holding the exact ImageParams tsr saved (so a lost row can be rebuilt)
TSR_CHUNK = "tsr"
PARAMETERS_CHUNK = "parameters"


def naive_utc(moment: datetime) -> datetime:
    """A time as the DB stores it: naive, in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def fields_from_params(params: ImageParams) -> dict[str, Any]:
    """Row fields for an image tsr made."""
    sha = params.checkpoint_sha256
    return {
        "checkpoint": params.checkpoint,
        "checkpoint_sha256": sha if sha and len(sha) == 64 else None,
        "checkpoint_hash": sha[:10] if sha else None,
        "prompt": params.prompt,
        "negative": params.negative,
        "steps": params.steps,
        "cfg": params.cfg,
        "sampler": params.sampler,
        "scheduler": params.scheduler,
        "seed": params.seed,
        "clip_skip": params.clip_skip,
        "backend": params.backend,
        "job": params.job,
        "batch_index": params.batch_index,
        "source": "tsr",
        "extra": json.dumps(params.extra, default=str),
    }


def fields_from_parsed(parsed: ParsedParameters) -> dict[str, Any]:
    """Row fields for an image read from another tool's parameters text."""
    return {
        "checkpoint": parsed.checkpoint,
        "checkpoint_hash": parsed.checkpoint_hash,
        "prompt": parsed.prompt,
        "negative": parsed.negative,
        "steps": parsed.steps,
        "cfg": parsed.cfg,
        "sampler": parsed.sampler,
        "scheduler": parsed.scheduler,
        "seed": parsed.seed,
        "clip_skip": parsed.clip_skip,
        "source": parsed.source,
        "extra": json.dumps(parsed.extra, default=str),
    }


def fields_from_texts(texts: dict[str, str]) -> tuple[dict[str, Any], list[LoraUse]]:
    """Row fields and LoRAs from a PNG's text chunks: tsr's own record first, else `parameters`."""
    parameters = texts.get(PARAMETERS_CHUNK, "")
    own = texts.get(TSR_CHUNK)
    if own is not None:
        try:
            params = ImageParams.model_validate_json(own)
        except ValidationError:
            pass
        else:
            return {**fields_from_params(params), "parameters": parameters}, params.loras
    if not parameters:
        return {"source": "unknown", "parameters": ""}, []
    parsed = parse_parameters(parameters)
    return {**fields_from_parsed(parsed), "parameters": parameters}, parsed.loras


def new_row_fields(image_id: int, data_size: int, sha256: str, size: tuple[int, int]) -> dict:
    """The file fields of a new row: where it lives, when it was made, its size and hash."""
    return {
        "id": image_id,
        "file": relative_file(image_id).as_posix(),
        "created": naive_utc(created_of(image_id)),
        "file_size": data_size,
        "sha256": sha256,
        "width": size[0],
        "height": size[1],
    }


def lora_rows(image_id: int, loras: list[LoraUse]) -> list[dict[str, Any]]:
    """GalleryLora rows for an image."""
    return [
        {
            "image": image_id,
            "position": position,
            "name": lora.name,
            "weight": lora.weight,
            "sha256": lora.sha256,
        }
        for position, lora in enumerate(loras)
    ]


def loras_of(image_ids: list[int]) -> dict[int, list[LoraUse]]:
    """The LoRAs of each image, in the order they were given."""
    found: dict[int, list[LoraUse]] = {image_id: [] for image_id in image_ids}
    if not image_ids:
        return found
    # one JSON parameter instead of one per id: building a 100-value IN list costs more
    # in peewee than running the query
    cursor = db.execute_sql(
        "SELECT image_id, name, weight, sha256 FROM gallery_lora"
        " WHERE image_id IN (SELECT value FROM json_each(?)) ORDER BY image_id, position",
        (json.dumps(image_ids),),
    )
    for image_id, name, weight, sha256 in cursor.fetchall():
        found[image_id].append(LoraUse.model_construct(name=name, weight=weight, sha256=sha256))
    return found


#: ImageOut fields stored as they are in the gallery_image columns
_PLAIN_COLUMNS = (
    "file",
    "width",
    "height",
    "file_size",
    "sha256",
    "state",
    "rating",
    "notes",
    "checkpoint",
    "checkpoint_sha256",
    "checkpoint_hash",
    "prompt",
    "negative",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "seed",
    "clip_skip",
    "backend",
    "job",
    "batch_index",
    "source",
    "parameters",
)


def _time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC)


def image_out(values: dict[str, Any], loras: list[LoraUse]) -> ImageOut:
    """The wire form of a raw gallery_image row (column name -> SQLite value).

    Built without re-validation: the values come from our own table, and a page of 100 is
    built several times faster this way.
    """
    image_id = values["id"]
    fields = {name: values[name] for name in _PLAIN_COLUMNS}
    return ImageOut.model_construct(
        id=image_id,
        created=created_of(image_id),
        trashed_at=_time(values["trashed_at"]),
        favourite=bool(values["favourite"]),
        tags=json.loads(values["tags"] or "[]"),
        loras=loras,
        extra=json.loads(values["extra"] or "{}"),
        **fields,
    )


def fetch_images(query: Any) -> list[ImageOut]:
    """Run a select of whole gallery_image rows; their wire forms, LoRAs fetched in one query."""
    cursor = db.execute(query)
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    loras = loras_of([row["id"] for row in rows])
    return [image_out(row, loras[row["id"]]) for row in rows]
