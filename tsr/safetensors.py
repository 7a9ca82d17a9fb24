"""Read and strictly validate a .safetensors header without touching the tensor data."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tsr.errors import ModelFileError

#: the reference implementation's limit; a larger header is refused before any of it is read
MAX_HEADER_SIZE = 100_000_000
#: bits per element of every dtype the safetensors format defines
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_WEB_PAGE_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor entry of a header: its dtype, shape and byte range within the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar, 0 when a dimension is 0)."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.begin


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A validated header: tensors in header order, the `__metadata__` map and where data starts."""

    tensors: tuple[TensorInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    #: bytes of JSON after the 8-byte length field
    header_size: int = 0

    @property
    def data_start(self) -> int:
        """File offset of the first tensor byte."""
        return 8 + self.header_size

    def keys(self) -> list[str]:
        """Tensor names in header order."""
        return [tensor.name for tensor in self.tensors]


def read_header(path: Path) -> SafetensorsHeader:
    """Read and validate the header of the .safetensors/.sft file at `path`.

    Raises:
        ModelFileError: the file is missing, unreadable or not a valid safetensors file.
    """
    name = path.name
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            return parse_header(stream, size, name)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFileError(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def parse_header(stream: BinaryIO, size: int, name: str) -> SafetensorsHeader:
    """Validate the header at the start of `stream`, a file of `size` bytes called `name`.

    Only `stream.read()` is used, never for more than min(size, MAX_HEADER_SIZE) bytes.
    """
    prefix = stream.read(8)
    if len(prefix) < 8:
        raise ModelFileError(
            f"{name}: only {size} bytes long, too short for a safetensors header; "
            "the file is truncated or not a safetensors file"
        )
    (length,) = struct.unpack("<Q", prefix)
    if length > size - 8:
        raise ModelFileError(_length_problem(name, prefix, length, size))
    if length > MAX_HEADER_SIZE:
        raise ModelFileError(
            f"{name}: header length {length:,} bytes exceeds the {MAX_HEADER_SIZE:,}-byte limit; "
            "this is not a safetensors file tsr can read"
        )
    raw = stream.read(length)
    if len(raw) < length:
        raise ModelFileError(f"{name}: the file ended inside its header; it is truncated")
    entries = _decode_json(raw, name)
    metadata = _metadata(entries.pop("__metadata__", None), name)
    data_size = size - 8 - length
    tensors = tuple(_tensor(key, value, data_size, name) for key, value in entries.items())
    _check_layout(tensors, data_size, name)
    return SafetensorsHeader(tensors=tensors, metadata=metadata, header_size=length)


def _length_problem(name: str, prefix: bytes, length: int, size: int) -> str:
    lowered = prefix.lower()
    if any(lowered.startswith(start[:8]) for start in _WEB_PAGE_STARTS):
        return (
            f"{name}: this is a web page, not a safetensors file "
            "(probably an error page saved by a failed download)"
        )
    if lowered.startswith(b"{"):
        return f"{name}: this is a JSON document, not a safetensors file"
    return (
        f"{name}: header length {length:,} exceeds the file size ({size:,} bytes); "
        "the file is truncated or not a safetensors file"
    )


def _decode_json(raw: bytes, name: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(
            f"{name}: the header is not UTF-8 text (bad byte at offset {8 + exc.start})"
        ) from None
    if not text.startswith("{"):
        raise ModelFileError(f"{name}: the header does not start with a JSON object")
    try:
        entries = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ModelFileError(f"{name}: the header names {_short(exc.key)} twice") from None
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise ModelFileError(f"{name}: the header is not valid JSON ({reason})") from None
    if not isinstance(entries, dict):
        raise ModelFileError(f"{name}: the header is not a JSON object")
    return entries


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _metadata(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelFileError(f"{name}: __metadata__ is not a JSON object")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ModelFileError(
                f"{name}: __metadata__ value for {_short(key)} is not a string "
                "(the format allows only strings)"
            )
    return value


def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count:,} bytes"


def _short(value: object, limit: int = 80) -> str:
    """repr() cut to `limit` characters: hostile headers must not produce giant messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(key: str, value: object, data_size: int, name: str) -> TensorInfo:
    if not isinstance(value, dict):
        raise ModelFileError(f"{name}: tensor {_short(key)} is not described by a JSON object")
    dtype = value.get("dtype")
    shape = value.get("shape")
    offsets = value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise ModelFileError(f"{name}: tensor {_short(key)} has an unknown dtype {_short(dtype)}")
    if not isinstance(shape, list) or not all(_is_count(dim) for dim in shape):
        raise ModelFileError(
            f"{name}: tensor {_short(key)} has a bad shape {_short(shape)} "
            "(need a list of sizes >= 0)"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(offset) for offset in offsets)
    ):
        raise ModelFileError(
            f"{name}: tensor {_short(key)} has bad data_offsets {_short(offsets)} "
            "(need [begin, end])"
        )
    begin, end = offsets
    if end < begin:
        raise ModelFileError(
            f"{name}: tensor {_short(key)} ends (at {end}) before it begins ({begin})"
        )
    if end > data_size:
        raise ModelFileError(
            f"{name}: tensor {_short(key)} ends at byte {end:,} of the data section but the file "
            f"holds {data_size:,}; the file is truncated (an interrupted download?)"
        )
    nbytes = end - begin
    # a product capped just above what nbytes could hold: hostile shapes stay cheap to check
    elements = _bounded_product(shape, limit=nbytes * 2 + 1)
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != nbytes:
        needed = "more" if elements > nbytes * 2 else f"{bits / 8:,.1f}".removesuffix(".0")
        raise ModelFileError(
            f"{name}: tensor {_short(key)} holds {nbytes:,} bytes but a {dtype} tensor of shape "
            f"{_short(shape)} needs {needed}"
        )
    return TensorInfo(name=key, dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def _bounded_product(values: list[int], limit: int) -> int:
    if 0 in values:
        return 0
    product = 1
    for value in values:
        product *= value
        if product > limit:
            return limit + 1
    return product


def _check_layout(tensors: tuple[TensorInfo, ...], data_size: int, name: str) -> None:
    # Like the reference reader: tensors tile the data section exactly, in offset order.
    position = 0
    for tensor in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if tensor.begin < position:
            raise ModelFileError(
                f"{name}: tensor {_short(tensor.name)} overlaps the tensor before it "
                f"(starts at {tensor.begin:,}, the previous one ends at {position:,})"
            )
        if tensor.begin > position:
            raise ModelFileError(
                f"{name}: there is a gap of {_bytes(tensor.begin - position)} before tensor "
                f"{_short(tensor.name)} in the data section"
            )
        position = tensor.end
    if position > data_size:
        raise ModelFileError(
            f"{name}: the tensors need {position:,} bytes of data but the file holds "
            f"{data_size:,}; the file is truncated (an interrupted download?)"
        )
    if position < data_size:
        raise ModelFileError(
            f"{name}: the file has {_bytes(data_size - position)} too many after the last "
            "tensor; it is damaged or not a safetensors file"
        )
