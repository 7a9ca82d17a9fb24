"""File names and model kinds for downloads: Content-Disposition, safe names, CivitAI types."""

from __future__ import annotations

import re
import unicodedata
from email.message import Message
from urllib.parse import unquote, urlsplit

from tsr.errors import BadRequest
from tsr.schemas.downloads import DownloadKind

#: CivitAI model types tsr installs, and the model root kind each goes to
KIND_FOR_TYPE: dict[str, DownloadKind] = {
    "checkpoint": "checkpoints",
    "lora": "loras",
    "locon": "loras",
    "dora": "loras",
    "lycoris": "loras",
    "vae": "vae",
    "textualinversion": "embeddings",
}
#: the longest file name most filesystems take, in bytes
MAX_NAME_BYTES = 255


def kind_for_model_type(model_type: str | None, what: str) -> DownloadKind:
    """The model root kind for a CivitAI model type; a type tsr does not install is refused."""
    kind = KIND_FOR_TYPE.get((model_type or "").replace(" ", "").casefold())
    if kind is None:
        shown = model_type or "an unknown type"
        raise BadRequest(
            f"{what} is a CivitAI {shown} model; tsr installs only checkpoints, LoRAs "
            "(LoCon, DoRA), VAEs and embeddings"
        )
    return kind


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a Content-Disposition header gives (`filename*` wins, RFC 6266), as sent."""
    if not header:
        return None
    extended = re.search(r"filename\*\s*=\s*([^';]*)'[^']*'([^;]+)", header, re.I)
    if extended:
        charset = extended.group(1).strip() or "utf-8"
        try:
            return unquote(extended.group(2).strip().strip('"'), encoding=charset) or None
        except LookupError:
            pass  # an unknown charset: the plain filename may still do
    message = Message()
    message["Content-Disposition"] = header
    try:
        name = message.get_param("filename", header="content-disposition")
    except (ValueError, LookupError):
        name = None
    if isinstance(name, tuple):  # an RFC 2231 value the email parser split up
        name = name[2]
    return str(name) if name else None


def filename_from_url(url: str) -> str | None:
    """The last path segment of a URL, unquoted (None when the path ends with /)."""
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    return unquote(segment) or None


def safe_file_name(name: str | None) -> str | None:
    """`name` made safe to create in a model root, or None when nothing usable is left.

    No path separators (only the last segment is kept), no `..`, no leading dot (hidden
    files), no control characters, at most 255 bytes with the extension kept.
    """
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name or set(name) <= {"."}:
        return None
    name = name.replace("..", "_")
    return _shorten(name)


def _shorten(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix.encode()) > 16:
        stem, suffix = name, ""
    keep = MAX_NAME_BYTES - len(suffix.encode()) - (1 if suffix else 0)
    stem = stem.encode()[:keep].decode(errors="ignore").rstrip()
    return f"{stem}.{suffix}" if suffix else stem


def numbered(name: str, number: int) -> str:
    """`name` with a number before its extension: model.safetensors -> model-2.safetensors."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{name}-{number}"
    return _shorten(f"{stem}-{number}.{suffix}")
