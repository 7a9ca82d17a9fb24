"""The GGUF reader: real layouts accepted (v2, v3, every value type), corruption refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import modelfiles
from tests.modelfiles import gguf_bytes
from tsr.errors import ModelFileError
from tsr.gguf import MAX_STRING, GGUFFile, parse_gguf, read_gguf

NAME = "flux1-dev-Q4_0.gguf"


class RecordingStream(io.BytesIO):
    """A byte stream that remembers how much each read() asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.requests.append(-1 if size is None else size)
        return super().read(size)


def parse(data: bytes) -> GGUFFile:
    stream = RecordingStream(data)
    try:
        return parse_gguf(stream, len(data), NAME)
    finally:
        # every read is bounded by the file and by the longest string allowed
        assert all(0 <= request <= min(len(data), MAX_STRING) for request in stream.requests)


def problem(data: bytes) -> str:
    with pytest.raises(ModelFileError) as caught:
        parse(data)
    message = str(caught.value)
    assert message.startswith(f"{NAME}: ")
    return message


def string(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


def header(tensors: int, pairs: list[bytes], version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, len(pairs)) + b"".join(pairs)


def test_flux_gguf_as_comfyui_gguf_writes_it(tmp_path: Path) -> None:
    path = modelfiles.write_gguf(tmp_path / NAME, quant="Q4_0")
    gguf = read_gguf(path)
    assert gguf.version == 3
    assert gguf.architecture == "flux"
    assert gguf.metadata["general.quantization_version"] == 2
    assert len(gguf.tensors) == 780
    types = {tensor.type_name for tensor in gguf.tensors}
    assert types == {"Q4_0", "F32"}
    qkv = next(t for t in gguf.tensors if t.name == "double_blocks.0.img_attn.qkv.weight")
    assert (qkv.dims, qkv.nbytes) == ((32, 1), 18)


@pytest.mark.parametrize("quant", ["Q8_0", "Q4_K", "Q6_K", "F16", "BF16"])
def test_quantization_types_are_named(tmp_path: Path, quant: str) -> None:
    gguf = read_gguf(modelfiles.write_gguf(tmp_path / "m.gguf", quant=quant, version=2))
    assert gguf.version == 2
    assert quant in {tensor.type_name for tensor in gguf.tensors}


def test_every_metadata_value_type() -> None:
    pairs = [
        string("u8") + struct.pack("<IB", 0, 200),
        string("i8") + struct.pack("<Ib", 1, -5),
        string("u16") + struct.pack("<IH", 2, 60000),
        string("i16") + struct.pack("<Ih", 3, -300),
        string("u32") + struct.pack("<II", 4, 4_000_000_000),
        string("i32") + struct.pack("<Ii", 5, -70000),
        string("f32") + struct.pack("<If", 6, 0.5),
        string("bool") + struct.pack("<I?", 7, True),
        string("str") + struct.pack("<I", 8) + string("héllo"),
        string("u64") + struct.pack("<IQ", 10, 2**63),
        string("i64") + struct.pack("<Iq", 11, -(2**40)),
        string("f64") + struct.pack("<Id", 12, 1.25),
        string("words") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("bc"),
        string("nested")
        + struct.pack("<IIQ", 9, 9, 2)
        + struct.pack("<IQ", 4, 1)
        + struct.pack("<I", 7)
        + struct.pack("<IQ", 4, 0),
        string("vocab")
        + struct.pack("<IIQ", 9, 8, 100)
        + b"".join(string(f"t{i}") for i in range(100)),
        string("types") + struct.pack("<IIQ", 9, 5, 1000) + bytes(4000),
        string("general.architecture") + struct.pack("<I", 8) + string("sdxl"),
    ]
    gguf = parse(header(0, pairs))
    assert gguf.metadata == {
        "u8": 200,
        "i8": -5,
        "u16": 60000,
        "i16": -300,
        "u32": 4_000_000_000,
        "i32": -70000,
        "f32": 0.5,
        "bool": True,
        "str": "héllo",
        "u64": 2**63,
        "i64": -(2**40),
        "f64": 1.25,
        "words": ["a", "bc"],
        "nested": [[7], []],
        "general.architecture": "sdxl",
    }
    # long arrays (tokenizer vocabularies) are skipped, with their length kept
    assert gguf.skipped_arrays == {"vocab": 100, "types": 1000}
    assert gguf.architecture == "sdxl"


def tensor_entry(name: str, dims: tuple[int, ...], type_id: int, offset: int) -> bytes:
    return (
        string(name)
        + struct.pack(f"<I{len(dims)}Q", len(dims), *dims)
        + struct.pack("<IQ", type_id, offset)
    )


def one_tensor(entry: bytes, data: int = 64) -> bytes:
    head = header(1, []) + entry
    return head + bytes(-len(head) % 32) + bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file ends inside the magic number"),
        (b"GGML" + bytes(20), "not a GGUF file (it starts with b'GGML'"),
        (b"GGUF" + struct.pack("<I", 1) + bytes(16), "GGUF version 1 is not supported"),
        (b"GGUF" + struct.pack(">I", 3) + bytes(16), "big-endian GGUF"),
        (
            b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0),
            "claims 1,099,511,627,776 tensors and 0 metadata entries",
        ),
        (header(0, [string("k") + struct.pack("<I", 13)]), "unknown value type 13"),
        (header(0, [string("k") + struct.pack("<IIQ", 9, 4, 2**50)]), "more than the rest"),
        (header(0, [string("k") + struct.pack("<IIQ", 9, 42, 0)]), "unknown value type 42"),
        (header(0, [string("k") + struct.pack("<I", 8) + struct.pack("<Q", 2**62)]), "claims a"),
        (header(0, [string("k") + struct.pack("<IB", 0, 1)] * 2), "'k' appears twice"),
        (header(0, [struct.pack("<Q", 2) + b"\xff\xfe" + struct.pack("<IB", 0, 1)]), "not UTF-8"),
        (header(0, [string("general.alignment") + struct.pack("<II", 4, 24)]), "power of two"),
        (one_tensor(tensor_entry("w", (32,), 2, 0), data=10), "the file is truncated"),
        (one_tensor(tensor_entry("w", (32,), 2, 16)), "not 32-aligned"),
        (one_tensor(tensor_entry("w", (30,), 2, 0)), "not a multiple of the Q4_0 block size 32"),
        (one_tensor(tensor_entry("w", (1, 1, 1, 1, 1), 0, 0)), "has 5 dimensions"),
        (one_tensor(tensor_entry("w", (1,), 4096, 0)), "unknown ggml type 4096"),
        (header(1, []) + struct.pack("<Q", 99) + b"w" * 20, "ends inside the name of tensor #0"),
        (header(1, []), "claims 1 tensor and 0 metadata entries"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_corruption_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason in problem(data)


def test_overlapping_tensors_are_refused() -> None:
    # a Q8_0 block is 34 bytes: the next tensor may start at 64, not at 32
    entries = tensor_entry("a", (32,), 8, 0) + tensor_entry("b", (32,), 8, 64)
    head = header(2, []) + entries
    assert len(parse(head + bytes(-len(head) % 32) + bytes(128)).tensors) == 2
    entries = tensor_entry("a", (32,), 8, 0) + tensor_entry("b", (32,), 8, 32)
    head = header(2, []) + entries
    assert "overlaps" in problem(head + bytes(-len(head) % 32) + bytes(128))


def test_newer_ggml_types_are_named_not_refused() -> None:
    gguf = parse(one_tensor(tensor_entry("w", (64,), 40, 0)))
    assert gguf.tensors[0].type_name == "TYPE_40"
    assert gguf.tensors[0].nbytes is None


def test_every_truncation_of_a_real_file_is_refused(tmp_path: Path) -> None:
    data = gguf_bytes(
        {"general.architecture": "flux", "tags": ["a", "b"]},
        [("img_in.weight", (32, 2), "Q4_0"), ("img_in.bias", (2,), "F32")],
    )
    assert len(parse(data).tensors) == 2
    # the last 24 bytes pad the final 8-byte tensor to the alignment: cutting them loses nothing
    for cut in range(len(data) - 24):
        problem(data[:cut])
    assert len(parse(data[: len(data) - 24]).tensors) == 2


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = gguf_bytes(
    {"general.architecture": "flux", "general.alignment": 32, "scale": 0.5, "names": ["x", "yz"]},
    [
        ("double_blocks.0.img_attn.qkv.weight", (32, 2), "Q4_0"),
        ("final_layer.linear.bias", (3,), "F32"),
    ],
)


def check(data: bytes) -> None:
    try:
        gguf = parse(data)
    except ModelFileError as exc:
        assert str(exc).startswith(f"{NAME}: ") and len(str(exc)) > len(NAME) + 10
        return
    for tensor in gguf.tensors:
        assert 1 <= len(tensor.dims) <= 4 and tensor.type_name


@PROPERTY
@given(st.binary(max_size=120))
def test_random_bytes_never_crash(data: bytes) -> None:
    check(b"GGUF" + data)


@PROPERTY
@given(st.data())
def test_mutated_real_files_never_crash(data: st.DataObject) -> None:
    raw = bytearray(SAMPLE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw)))]
    check(bytes(raw))


@PROPERTY
@given(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from([8, 16, 24, 80, 88]))
def test_huge_counts_and_lengths_are_refused_before_reading(value: int, at: int) -> None:
    raw = bytearray(SAMPLE)
    raw[at : at + 8] = struct.pack("<Q", value)  # tensor/kv counts, key and string lengths
    check(bytes(raw))
