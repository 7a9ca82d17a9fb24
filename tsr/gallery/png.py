"""PNG at the chunk level: check structure, read text chunks, replace them without re-encoding."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tsr.errors import BadRequest

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = {b"tEXt", b"zTXt", b"iTXt"}
#: a compressed text chunk may not inflate beyond this (a zip bomb in a prompt is not a prompt)
_MAX_TEXT = 4 * 1024 * 1024


class PngError(BadRequest):
    """Bytes that are not a well-formed PNG."""


@dataclass(frozen=True)
class Chunk:
    """One PNG chunk: its four-letter type and its payload."""

    kind: bytes
    data: bytes


def read_chunks(data: bytes, *, check_crc: bool = True) -> list[Chunk]:
    """The chunks of a PNG, checked: signature, lengths, CRCs, IHDR first, IEND last."""
    if not data.startswith(SIGNATURE):
        raise PngError("the data is not a PNG image (wrong signature)")
    chunks: list[Chunk] = []
    offset = len(SIGNATURE)
    end = len(data)
    while offset < end:
        if offset + 8 > end:
            raise PngError("the PNG image is truncated")
        length, kind = struct.unpack_from(">I4s", data, offset)
        payload_end = offset + 8 + length
        if payload_end + 4 > end:
            raise PngError("the PNG image is truncated")
        payload = data[offset + 8 : payload_end]
        if check_crc:
            (crc,) = struct.unpack_from(">I", data, payload_end)
            if zlib.crc32(payload, zlib.crc32(kind)) != crc:
                raise PngError(f"the PNG image is corrupt (bad checksum in a {kind!r} chunk)")
        chunks.append(Chunk(kind, payload))
        offset = payload_end + 4
        if kind == b"IEND":
            break
    if not chunks or chunks[0].kind != b"IHDR" or len(chunks[0].data) != 13:
        raise PngError("the PNG image has no header chunk")
    if chunks[-1].kind != b"IEND":
        raise PngError("the PNG image is truncated (no end chunk)")
    if not any(chunk.kind == b"IDAT" for chunk in chunks):
        raise PngError("the PNG image has no pixel data")
    return chunks


def image_size(chunks: list[Chunk]) -> tuple[int, int]:
    """Width and height from the IHDR chunk."""
    width, height = struct.unpack_from(">II", chunks[0].data)
    if width == 0 or height == 0:
        raise PngError("the PNG image has a zero width or height")
    return int(width), int(height)


def _inflate(payload: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(payload, _MAX_TEXT)
    if inflater.unconsumed_tail:
        raise PngError("a compressed text chunk in the PNG image is too large")
    return text


def _decode_text(chunk: Chunk) -> tuple[str, str] | None:
    """(keyword, text) of a text chunk, or None when it cannot be decoded."""
    try:
        if chunk.kind == b"tEXt":
            key, _, value = chunk.data.partition(b"\0")
            return key.decode("latin-1"), value.decode("latin-1")
        if chunk.kind == b"zTXt":
            key, _, rest = chunk.data.partition(b"\0")
            return key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
        key, _, rest = chunk.data.partition(b"\0")
        compressed, rest = rest[0], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, value = rest.partition(b"\0")
        raw = _inflate(value) if compressed else value
        return key.decode("latin-1"), raw.decode("utf-8")
    except (UnicodeDecodeError, zlib.error, IndexError):
        return None


def text_of(chunks: list[Chunk]) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) by keyword; the first of a repeated keyword wins."""
    texts: dict[str, str] = {}
    for chunk in chunks:
        if chunk.kind in _TEXT_TYPES:
            decoded = _decode_text(chunk)
            if decoded is not None and decoded[0] not in texts:
                texts[decoded[0]] = decoded[1]
    return texts


def _encode_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", crc)


def _text_chunk(key: str, value: str) -> bytes:
    # like Pillow and A1111: plain tEXt when Latin-1 can hold it, else uncompressed UTF-8 iTXt
    keyword = key.encode("latin-1")
    try:
        return _encode_chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        payload = keyword + b"\0\0\0\0\0" + value.encode("utf-8")
        return _encode_chunk(b"iTXt", payload)


def with_text(chunks: list[Chunk], texts: dict[str, str]) -> bytes:
    """The PNG re-assembled with every text chunk replaced by `texts` (pixels untouched)."""
    parts = [SIGNATURE, _encode_chunk(chunks[0].kind, chunks[0].data)]
    parts.extend(_text_chunk(key, value) for key, value in texts.items())
    parts.extend(
        _encode_chunk(chunk.kind, chunk.data)
        for chunk in chunks[1:]
        if chunk.kind not in _TEXT_TYPES
    )
    return b"".join(parts)
