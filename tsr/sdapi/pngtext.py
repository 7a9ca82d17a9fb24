"""Reading sd.cpp's PNGs without decoding pixels: size, `parameters` text and its fields."""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# "Key: value" pairs of sd.cpp's settings line; a value may hold a bracketed list with commas.
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9 ]*): ((?:\[[^\]]*\]|[^,])*)(?:, |$)")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the IHDR chunk, or None when `data` is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_text_chunks(data: bytes) -> dict[str, str]:
    """Every tEXt/zTXt/iTXt chunk of a PNG as {keyword: text} (tEXt read as UTF-8 like sd.cpp)."""
    texts: dict[str, str] = {}
    if not data.startswith(PNG_SIGNATURE):
        return texts
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT" or kind == b"IEND":
            if kind == b"IEND":
                break
            continue
        try:
            if kind == b"tEXt":
                key, _, value = body.partition(b"\x00")
                texts[key.decode("latin-1")] = _utf8_or_latin1(value)
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                texts[key.decode("latin-1")] = _utf8_or_latin1(zlib.decompress(rest[1:]))
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[0], rest[2:]
                _language, _, rest = rest.partition(b"\x00")
                _translated, _, value = rest.partition(b"\x00")
                raw = zlib.decompress(value) if compressed else value
                texts[key.decode("latin-1")] = raw.decode("utf-8", "replace")
        except (zlib.error, IndexError):
            continue  # one damaged text chunk should not hide the others
    return texts


def _utf8_or_latin1(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass
class SdcppInfotext:
    """sd.cpp's `parameters` text split into prompt, negative, settings and its SDCPP JSON."""

    prompt: str
    negative_prompt: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    sdcpp: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int | None:
        """The seed the image was made with, or None when the text does not say."""
        value = self.sdcpp.get("seed", self.fields.get("Seed"))
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None


def parse_sdcpp_infotext(text: str) -> SdcppInfotext:
    """Split `prompt\\n[Negative prompt: ...\\n]Steps: ..., SDCPP: {json}` into its parts."""
    head, marker, settings = text.rpartition("\nSteps: ")
    if not marker:
        return SdcppInfotext(prompt=text)
    settings = "Steps: " + settings
    prompt, negative_marker, negative = head.partition("\nNegative prompt: ")
    sdcpp: dict[str, Any] = {}
    settings_part, sdcpp_marker, sdcpp_json = settings.partition(", SDCPP: ")
    if sdcpp_marker:
        try:
            loaded = json.loads(sdcpp_json)
            sdcpp = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            sdcpp = {}
    fields = {m.group(1): m.group(2) for m in _FIELD.finditer(settings_part) if m.group(0)}
    return SdcppInfotext(
        prompt=prompt,
        negative_prompt=negative if negative_marker else "",
        fields=fields,
        sdcpp=sdcpp,
    )
