"""Read a GGUF file's metadata and tensor table (versions 2 and 3) with strict bounds."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tsr.errors import ModelFileError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
#: ggml's limit on tensor dimensions
MAX_DIMS = 4
#: arrays longer than this are skipped, not kept in `GGUFFile.metadata` (tokenizer vocabularies)
MAX_KEPT_ARRAY = 64
#: no real key, name or value string comes near this; a longer one means a corrupt file
MAX_STRING = 16 * 1024 * 1024
#: nested arrays deeper than this are refused: no real file nests more than once
MAX_ARRAY_DEPTH = 4

#: ggml type id -> (name, elements per block, bytes per block); ids 4, 5, 31-33, 36-38 are retired
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}
#: type ids above the table but below this are newer types: named, their size left unchecked
_MAX_TYPE_ID = 255

# GGUF metadata value types: id -> (struct format, size) for the fixed-size ones
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9
_SCALAR_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}

MetadataValue = int | float | bool | str | list["MetadataValue"]


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    """One entry of the tensor table: name, dimensions (ggml order), type and data offset."""

    name: str
    dims: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def type_name(self) -> str:
        """The quantization type's name: F16, Q4_0, Q4_K, IQ2_XS..."""
        known = GGML_TYPES.get(self.type_id)
        return known[0] if known else f"TYPE_{self.type_id}"

    @property
    def numel(self) -> int:
        """Number of elements."""
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def nbytes(self) -> int | None:
        """Size of the data in bytes, or None for a type this reader does not know."""
        known = GGML_TYPES.get(self.type_id)
        if known is None:
            return None
        _, block, block_bytes = known
        return self.numel // block * block_bytes


@dataclass(frozen=True, slots=True)
class GGUFFile:
    """What a GGUF file says about itself: version, metadata (long arrays left out), tensors."""

    version: int
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    tensors: tuple[GGUFTensor, ...] = ()
    #: lengths of the arrays too long to keep in `metadata`
    skipped_arrays: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        """`general.architecture`, when it is a string."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def read_gguf(path: Path) -> GGUFFile:
    """Read the GGUF file at `path`: header, metadata and tensor table, never tensor data.

    Raises:
        ModelFileError: the file is missing, unreadable, not GGUF or corrupt.
    """
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            return parse_gguf(stream, size, path.name)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFileError(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def parse_gguf(stream: BinaryIO, size: int, name: str) -> GGUFFile:
    """Parse GGUF from `stream` (a file of `size` bytes called `name`) with only bounded reads."""
    return _Reader(stream, size, name).read()


class _Reader:
    """Sequential reader that never reads, or allocates, past the end of the file."""

    def __init__(self, stream: BinaryIO, size: int, name: str) -> None:
        self.stream = stream
        self.size = size
        self.name = name
        self.position = 0

    def fail(self, reason: str) -> ModelFileError:
        return ModelFileError(f"{self.name}: {reason}")

    def take(self, count: int, what: str) -> bytes:
        if count > self.size - self.position:
            raise self.fail(f"the file ends inside {what}; it is truncated or corrupt")
        data = self.stream.read(count)
        if len(data) != count:
            raise self.fail(f"the file ends inside {what}; it is truncated")
        self.position += count
        return data

    def skip(self, count: int, what: str) -> None:
        if count > self.size - self.position:
            raise self.fail(f"the file ends inside {what}; it is truncated or corrupt")
        self.stream.seek(count, os.SEEK_CUR)
        self.position += count

    def unpack(self, fmt: str, size: int, what: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.take(size, what))[0]
        return value

    def u32(self, what: str) -> int:
        return int(self.unpack("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.unpack("<Q", 8, what))

    def string(self, what: str, strict: bool = True) -> str:
        length = self.u64(what)
        if length > MAX_STRING:
            raise self.fail(f"{what} claims a {length:,}-byte string; the file is corrupt")
        data = self.take(length, what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            if strict:
                raise self.fail(f"{what} is not UTF-8 text") from None
            return data.decode("utf-8", errors="replace")

    def read(self) -> GGUFFile:
        magic = self.take(4, "the magic number")
        if magic != MAGIC:
            raise self.fail(f"not a GGUF file (it starts with {magic!r}, not b'GGUF')")
        version = self.u32("the version")
        if version not in SUPPORTED_VERSIONS:
            if struct.unpack(">I", struct.pack("<I", version))[0] in SUPPORTED_VERSIONS:
                raise self.fail("a big-endian GGUF file; tsr reads only little-endian GGUF")
            raise self.fail(f"GGUF version {version} is not supported (tsr reads versions 2 and 3)")
        tensor_count = self.u64("the tensor count")
        kv_count = self.u64("the metadata count")
        # each tensor entry takes at least 28 bytes, each metadata pair at least 13
        if tensor_count * 28 + kv_count * 13 > self.size - self.position:
            raise self.fail(
                f"it claims {_plural(tensor_count, 'tensor')} and "
                f"{_plural(kv_count, 'metadata entry', 'metadata entries')}, "
                f"more than {self.size:,} bytes can hold; the file is corrupt"
            )
        metadata: dict[str, MetadataValue] = {}
        skipped: dict[str, int] = {}
        for index in range(kv_count):
            key = self.string(f"metadata key #{index}")
            if key in metadata or key in skipped:
                raise self.fail(f"metadata key {key[:80]!r} appears twice")
            value_type = self.u32(f"the type of metadata {key[:80]!r}")
            if value_type == _ARRAY:
                value, length = self.array(key, depth=1)
                if value is None:
                    skipped[key] = length
                else:
                    metadata[key] = value
            else:
                metadata[key] = self.value(value_type, key)
        alignment = self.alignment(metadata)
        tensors = tuple(self.tensor(index) for index in range(tensor_count))
        data_start = -(-self.position // alignment) * alignment
        self.check_tensors(tensors, data_start, alignment)
        return GGUFFile(version=version, metadata=metadata, tensors=tensors, skipped_arrays=skipped)

    def value(self, value_type: int, key: str) -> int | float | bool | str:
        what = f"metadata {key[:80]!r}"
        if value_type == _STRING:
            return self.string(what, strict=False)
        scalar = _SCALARS.get(value_type)
        if scalar is None:
            raise self.fail(f"{what} has an unknown value type {value_type}")
        return self.unpack(scalar[0], scalar[1], what)

    def array(self, key: str, depth: int) -> tuple[list[MetadataValue] | None, int]:
        what = f"metadata {key[:80]!r}"
        if depth > MAX_ARRAY_DEPTH:
            raise self.fail(f"{what} nests arrays deeper than {MAX_ARRAY_DEPTH} levels")
        item_type = self.u32(what)
        length = self.u64(what)
        if item_type in _SCALARS:
            item_size = _SCALARS[item_type][1]
        elif item_type in (_STRING, _ARRAY):
            item_size = 8 if item_type == _STRING else 12
        else:
            raise self.fail(f"{what} is an array of unknown value type {item_type}")
        if length * item_size > self.size - self.position:
            raise self.fail(
                f"{what} claims {length:,} items of {_SCALAR_NAMES[item_type]}, more than the "
                "rest of the file holds; the file is corrupt"
            )
        keep = length <= MAX_KEPT_ARRAY
        items: list[MetadataValue] = []
        for _ in range(length):
            if item_type == _ARRAY:
                nested, _nested_length = self.array(key, depth + 1)
                if keep and nested is not None:
                    items.append(nested)
                keep = keep and nested is not None
            elif item_type in _SCALARS and not keep:
                # skip whole runs of fixed-size items at once (big token-type arrays)
                self.skip(item_size * length, what)
                break
            else:
                item = self.value(item_type, key)
                if keep:
                    items.append(item)
        return (items if keep else None), length

    def alignment(self, metadata: dict[str, MetadataValue]) -> int:
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            not isinstance(alignment, int)
            or isinstance(alignment, bool)
            or alignment <= 0
            or alignment & (alignment - 1)
            or alignment > 1 << 20
        ):
            raise self.fail(f"general.alignment {alignment!r} is not a power of two")
        return alignment

    def tensor(self, index: int) -> GGUFTensor:
        name = self.string(f"the name of tensor #{index}")
        what = f"tensor {name[:80]!r}"
        n_dims = self.u32(what)
        if not 1 <= n_dims <= MAX_DIMS:
            raise self.fail(f"{what} has {n_dims} dimensions (ggml allows 1 to {MAX_DIMS})")
        dims = tuple(self.u64(what) for _ in range(n_dims))
        type_id = self.u32(what)
        if type_id > _MAX_TYPE_ID:
            raise self.fail(f"{what} has an unknown ggml type {type_id}")
        offset = self.u64(what)
        tensor = GGUFTensor(name=name, dims=dims, type_id=type_id, offset=offset)
        known = GGML_TYPES.get(type_id)
        if known and dims[0] % known[1]:
            raise self.fail(
                f"{what} has a first dimension of {dims[0]}, not a multiple of the "
                f"{known[0]} block size {known[1]}"
            )
        return tensor

    def check_tensors(
        self, tensors: tuple[GGUFTensor, ...], data_start: int, alignment: int
    ) -> None:
        data_size = self.size - data_start
        names: set[str] = set()
        end_of_previous = 0
        for tensor in sorted(tensors, key=lambda t: t.offset):
            what = f"tensor {tensor.name[:80]!r}"
            if tensor.name in names:
                raise self.fail(f"{what} appears twice")
            names.add(tensor.name)
            if tensor.offset % alignment:
                raise self.fail(f"{what} starts at offset {tensor.offset}, not {alignment}-aligned")
            if tensor.offset < end_of_previous:
                raise self.fail(f"{what} overlaps the tensor before it")
            end = tensor.offset + (tensor.nbytes or 0)
            if end > data_size:
                raise self.fail(
                    f"{what} ends at byte {end:,} of the data section but the file holds "
                    f"{max(data_size, 0):,}; the file is truncated (an interrupted download?)"
                )
            end_of_previous = end
