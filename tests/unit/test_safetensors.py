"""The safetensors header reader: real files accepted, any damage refused with a reason."""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from tests import modelfiles
from tsr.errors import ModelFileError
from tsr.safetensors import DTYPE_BITS, MAX_HEADER_SIZE, parse_header, read_header

NAME = "model.safetensors"


class RecordingStream(io.BytesIO):
    """A byte stream that remembers how much each read() asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.requests.append(-1 if size is None else size)
        return super().read(size)


def raw_file(header: dict[str, Any], data: bytes = b"", length: int | None = None) -> bytes:
    """Bytes of a safetensors file with this header, as-is (no validation)."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def parse_bytes(data: bytes, size: int | None = None) -> Any:
    stream = RecordingStream(data)
    try:
        return parse_header(stream, len(data) if size is None else size, NAME)
    finally:
        # the reader never asks for more than the header bound, whatever the file claims
        assert all(0 <= request <= MAX_HEADER_SIZE for request in stream.requests)


def problem(data: bytes, size: int | None = None) -> str:
    with pytest.raises(ModelFileError) as caught:
        parse_bytes(data, size)
    message = str(caught.value)
    assert message.startswith(f"{NAME}: ")
    return message


def test_real_files_match_the_reference_reader(tmp_path: Path) -> None:
    path = modelfiles.write_pony_lora(tmp_path / "pony.safetensors")
    header = read_header(path)
    with safe_open(str(path), "np") as reference:
        assert sorted(header.keys()) == sorted(reference.keys())
        assert header.metadata == reference.metadata()
        for tensor in header.tensors[:50]:
            piece = reference.get_slice(tensor.name)
            assert list(tensor.shape) == piece.get_shape()
            assert tensor.dtype == piece.get_dtype()
    assert header.data_start + sum(t.nbytes for t in header.tensors) == path.stat().st_size


def test_every_numpy_dtype_scalars_and_empty_tensors(tmp_path: Path) -> None:
    arrays = {
        f"t_{dtype}": np.ones((2, 3), dtype=dtype)
        for dtype in (
            *("bool", "uint8", "int8", "int16", "uint16", "float16", "int32"),
            *("uint32", "float32", "float64", "int64", "uint64"),
        )
    }
    arrays["scalar"] = np.array(1.5, dtype=np.float32)
    arrays["empty"] = np.zeros((0, 4), dtype=np.float16)
    path = tmp_path / "all.safetensors"
    save_file(arrays, str(path))
    tensors = {t.name: t for t in read_header(path).tensors}
    with safe_open(str(path), "np") as reference:
        for name in arrays:
            assert tensors[name].dtype == reference.get_slice(name).get_dtype()
    assert tensors["scalar"].shape == () and tensors["scalar"].numel == 1
    assert tensors["empty"].nbytes == 0 and tensors["empty"].numel == 0


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes"),
    [("BF16", [3, 2], 12), ("F8_E4M3", [4], 4), ("F4", [2, 3], 3), ("F6_E2M3", [4], 3)],
)
def test_dtypes_numpy_lacks_are_accepted(dtype: str, shape: list[int], nbytes: int) -> None:
    data = raw_file(
        {"w": {"dtype": dtype, "shape": shape, "data_offsets": [0, nbytes]}}, b"\0" * nbytes
    )
    (tensor,) = parse_bytes(data).tensors
    assert (tensor.dtype, tensor.nbytes) == (dtype, nbytes)


def test_sft_suffix_and_metadata(tmp_path: Path) -> None:
    path = modelfiles.write_vae(tmp_path / "ae.sft", metadata={"format": "pt", "note": "{x"})
    assert read_header(path).metadata == {"format": "pt", "note": "{x"}


def valid() -> dict[str, Any]:
    return {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
    }


def with_tensor(name: str, **changes: Any) -> dict[str, Any]:
    header = valid()
    header[name] = {**header[name], **changes}
    return header


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "only 0 bytes long, too short"),
        (struct.pack("<Q", 9 * 10**18) + b"{}", "header length 9,000,000,000,000,000,000 exceeds"),
        (b"<!DOCTYPE html><html>" + b" " * 40, "this is a web page"),
        (b'{"error": "Model not found"}', "this is a JSON document"),
        (raw_file(valid(), b"\0" * 12)[:-3], "the file is truncated"),
        (
            raw_file(valid(), b"\0" * 12, length=200)[:100],
            "header length 200 exceeds the file size",
        ),
        (raw_file(valid(), b"\0" * 15), "has 3 bytes too many after the last tensor"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not UTF-8 text"),
        (struct.pack("<Q", 4) + b"[1,]", "does not start with a JSON object"),
        (struct.pack("<Q", 5) + b'{"a":', "not valid JSON"),
        (struct.pack("<Q", 2) + b"{}" + b"x", "has 1 byte too many"),
        (raw_file({"__metadata__": {"k": 1}}), "__metadata__ value for 'k' is not a string"),
        (raw_file({"__metadata__": ["k"]}), "__metadata__ is not a JSON object"),
        (raw_file(with_tensor("a", dtype="F17"), b"\0" * 12), "unknown dtype 'F17'"),
        (raw_file(with_tensor("a", shape=[2, -2]), b"\0" * 12), "bad shape [2, -2]"),
        (raw_file(with_tensor("a", shape=[True, 4]), b"\0" * 12), "bad shape [True, 4]"),
        (raw_file(with_tensor("a", shape=[2, 3]), b"\0" * 12), "holds 8 bytes but a F16"),
        (raw_file(with_tensor("a", data_offsets=[0]), b"\0" * 12), "bad data_offsets [0]"),
        (raw_file(with_tensor("a", data_offsets=[8, 0]), b"\0" * 12), "ends (at 0) before it"),
        (raw_file(with_tensor("b", data_offsets=[8, 14]), b"\0" * 14), "holds 6 bytes but a F32"),
        (raw_file(with_tensor("b", data_offsets=[4, 8]), b"\0" * 12), "overlaps the tensor"),
        (raw_file(with_tensor("b", data_offsets=[10, 14]), b"\0" * 14), "a gap of 2 bytes"),
        (raw_file(with_tensor("b", data_offsets=[8, 12]), b"\0" * 10), "the file is truncated"),
        (raw_file({"a": [1, 2]}), "tensor 'a' is not described by a JSON object"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_damage_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason in problem(data)


def test_duplicate_tensor_names_are_refused() -> None:
    entry = b'{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'
    text = b'{"a":' + entry + b',"a":' + entry + b"}"
    assert "names 'a' twice" in problem(struct.pack("<Q", len(text)) + text + b"\0\0")


def test_huge_header_is_refused_before_reading_it() -> None:
    stream = RecordingStream(struct.pack("<Q", MAX_HEADER_SIZE + 1) + b"{")
    with pytest.raises(ModelFileError, match="exceeds the 100,000,000-byte limit"):
        parse_header(stream, 10**12, NAME)  # a file big enough for the claimed header
    assert stream.requests == [8]


def test_huge_header_in_a_real_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    with path.open("wb") as out:
        out.write(struct.pack("<Q", 150_000_000) + b"{")
        out.truncate(200_000_000)  # sparse: no disk used
    with pytest.raises(ModelFileError, match=r"huge\.safetensors: header length 150,000,000"):
        read_header(path)


def test_hostile_shapes_and_names_stay_cheap_and_short() -> None:
    header = {("k" * 10_000): {"dtype": "F16", "shape": [10**300] * 50, "data_offsets": [0, 2]}}
    message = problem(raw_file(header, b"\0\0"))
    assert "needs more" in message and len(message) < 400


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        read_header(tmp_path / "gone.safetensors")
    with pytest.raises(ModelFileError, match="is a directory"):
        read_header(tmp_path)


def test_reads_only_the_header_never_tensor_data(tmp_path: Path) -> None:
    path = modelfiles.write_sd15_checkpoint(tmp_path / "m.safetensors")
    data = path.read_bytes()
    stream = RecordingStream(data)
    header = parse_header(stream, len(data), path.name)
    assert sum(stream.requests) == header.data_start < len(data)


# --- property tests ------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes) -> None:
    """Parse; on success the layout invariants hold, on failure the reason names the file."""
    try:
        header = parse_bytes(data)
    except ModelFileError as exc:
        assert str(exc).startswith(f"{NAME}: ") and len(str(exc)) > len(NAME) + 10
        return
    position = 0
    for tensor in sorted(header.tensors, key=lambda t: (t.begin, t.end)):
        assert tensor.begin == position and tensor.dtype in DTYPE_BITS
        assert tensor.numel * DTYPE_BITS[tensor.dtype] == tensor.nbytes * 8
        position = tensor.end
    assert header.data_start + position == len(data)


@PROPERTY
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    check(data)


@PROPERTY
@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=64))
def test_random_length_fields_never_crash(length: int, rest: bytes) -> None:
    check(struct.pack("<Q", length) + rest)


tensor_specs = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=12),
        st.sampled_from(sorted(DTYPE_BITS)),
        st.lists(st.integers(min_value=0, max_value=4), max_size=3),
    ),
    max_size=5,
    unique_by=lambda spec: spec[0],
)


def build(specs: list[tuple[str, str, list[int]]]) -> tuple[dict[str, Any], bytes]:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in specs:
        if name == "__metadata__":
            continue
        bits = int(np.prod(shape, dtype=object)) * DTYPE_BITS[dtype]
        shape = shape if bits % 8 == 0 else [*shape, 0]  # sub-byte types need whole bytes
        size = int(np.prod(shape, dtype=object)) * DTYPE_BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, b"\x07" * offset


@PROPERTY
@given(tensor_specs)
def test_valid_generated_headers_are_accepted(specs: list[tuple[str, str, list[int]]]) -> None:
    header, data = build(specs)
    parsed = parse_bytes(raw_file(header, data))
    assert parsed.keys() == [name for name in header if name != "__metadata__"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@PROPERTY
@given(
    tensor_specs,
    st.sampled_from(["dtype", "shape", "data_offsets", "entry", "metadata"]),
    json_values,
    st.data(),
)
def test_mutated_headers_never_crash(
    specs: list[tuple[str, str, list[int]]], field: str, value: Any, data: st.DataObject
) -> None:
    header, payload = build(specs)
    names = [name for name in header if name != "__metadata__"]
    if field == "metadata":
        header["__metadata__"] = value
    elif names:
        name = data.draw(st.sampled_from(names))
        if field == "entry":
            header[name] = value
        else:
            header[name][field] = value
    check(raw_file(header, payload))


@PROPERTY
@given(tensor_specs, st.data())
def test_flipped_truncated_or_extended_files_never_crash(
    specs: list[tuple[str, str, list[int]]], data: st.DataObject
) -> None:
    header, payload = build(specs)
    raw = bytearray(raw_file(header, payload))
    how = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if how == "flip":
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif how == "cut":
        raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw) - 1))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=16))
    check(bytes(raw))


def test_os_level_read_errors_are_model_file_errors(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = modelfiles.write_vae(tmp_path / "locked.safetensors")
    path.chmod(0)
    with pytest.raises(ModelFileError, match="permission denied"):
        read_header(path)
