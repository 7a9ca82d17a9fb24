"""Inspect one model file: format, kind, architecture, family, tensors, training metadata, hashes.

`inspect_file` never raises for a bad file: the problem becomes `ModelInfo.error`, one sentence.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any, Literal

from pydantic import BaseModel, Field

from tsr.detect import (
    ARCHITECTURE_LABELS,
    Architecture,
    Decision,
    Kind,
    detect_architecture,
    detect_family,
    detect_kind,
)
from tsr.errors import ModelFileError
from tsr.gguf import GGUFFile, read_gguf
from tsr.hashing import autov2, lora_short_hash, sha256_file
from tsr.safetensors import SafetensorsHeader, read_header

__all__ = [
    "ARCHITECTURE_LABELS",
    "ModelInfo",
    "TrainingInfo",
    "TriggerCandidate",
    "decode_metadata",
    "detect_family",
    "hash_into",
    "inspect_file",
    "trigger_candidates",
]

Format = Literal["safetensors", "gguf", "pickle", "unknown"]
MODEL_SUFFIXES: dict[str, Format] = {
    ".safetensors": "safetensors",
    ".sft": "safetensors",
    ".gguf": "gguf",
    ".ckpt": "pickle",
    ".pt": "pickle",
    ".pth": "pickle",
    ".bin": "pickle",
}
TRIGGER_LIMIT = 30
_GGUF_ARCHITECTURES: dict[str, Architecture] = {
    "sd1": "sd1",
    "sd2": "sd2",
    "sdxl": "sdxl",
    "flux": "flux",
    "sd3": "sd3",
}
_NAME_KINDS: tuple[tuple[str, Kind], ...] = (
    ("vae", "vae"),
    ("lora", "lora"),
    ("locon", "lora"),
    ("lycoris", "lora"),
    ("embedding", "embedding"),
)


class TriggerCandidate(BaseModel):
    """A tag from a LoRA's training captions and how often it occurred."""

    tag: str
    count: int


class TrainingInfo(BaseModel):
    """The training facts kohya and modelspec metadata record (None when absent)."""

    clip_skip: int | None = None
    network_dim: int | None = None
    network_alpha: float | None = None
    network_module: str | None = None
    base_model_version: str | None = None
    sd_model_name: str | None = None
    resolution: str | None = None
    output_name: str | None = None
    training_comment: str | None = None
    sshs_model_hash: str | None = None
    modelspec_architecture: str | None = None
    modelspec_title: str | None = None

    def is_empty(self) -> bool:
        """Whether no training fact was found."""
        return all(value is None for value in self.model_dump().values())


class ModelInfo(BaseModel):
    """Everything tsr learns about a model file without loading its tensors."""

    path: Path
    format: Format = "unknown"
    size: int | None = None
    kind: Kind = "unknown"
    architecture: Architecture | None = None
    architecture_signal: str | None = None
    family: str | None = None
    family_signal: str | None = None
    tensor_count: int | None = None
    parameter_count: int | None = None
    dtypes: dict[str, int] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    training: TrainingInfo = Field(default_factory=TrainingInfo)
    trigger_candidates: list[TriggerCandidate] = Field(default_factory=list)
    gguf_architecture: str | None = None
    quantizations: list[str] = Field(default_factory=list)
    sha256: str | None = None
    autov2: str | None = None
    short_hash: str | None = None
    error: str | None = None


def inspect_file(
    path: Path, *, with_hash: bool = False, progress: Callable[[int], None] | None = None
) -> ModelInfo:
    """Inspect the file at `path`; problems end up in `error`, never raised.

    Args:
        path: the model file (.safetensors, .sft, .gguf, .ckpt, .pt, .pth, .bin).
        with_hash: also compute the SHA256 (reads the whole file).
        progress: with `with_hash`, called with the number of bytes hashed so far.
    """
    info = ModelInfo(path=path, format=MODEL_SUFFIXES.get(path.suffix.lower(), "unknown"))
    try:
        _inspect_into(info)
    except ModelFileError as exc:
        info.error = str(exc)
    decision = detect_family(
        architecture=info.architecture,
        architecture_signal=info.architecture_signal,
        metadata=info.metadata,
        file_name=path.name,
    )
    info.family, info.family_signal = decision
    if with_hash and info.size is not None:
        hash_into(info, progress)
    return info


def hash_into(info: ModelInfo, progress: Callable[[int], None] | None = None) -> ModelInfo:
    """Fill `sha256`, `autov2` and `short_hash` of `info` (or its `error`); returns `info`."""
    try:
        digest = sha256_file(info.path, progress)
    except ModelFileError as exc:
        info.error = info.error or str(exc)
        return info
    return with_digest(info, digest)


def with_digest(info: ModelInfo, digest: str) -> ModelInfo:
    """Fill `sha256`, `autov2` and `short_hash` of `info` from its SHA256; returns `info`."""
    info.sha256, info.autov2, info.short_hash = digest, autov2(digest), lora_short_hash(digest)
    return info


def _inspect_into(info: ModelInfo) -> None:
    path = info.path
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if S_ISDIR(stat.st_mode):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    if not S_ISREG(stat.st_mode):
        # a FIFO or device would block or never end: only regular files are read
        raise ModelFileError(f"{path}: is not a regular file")
    info.size = stat.st_size
    if info.format == "unknown":
        info.format = _sniff(path)
    if info.format == "safetensors":
        _fill_from_safetensors(info, read_header(path))
    elif info.format == "gguf":
        _fill_from_gguf(info, read_gguf(path))
    else:
        _check_pickle(path)
        lowered = path.name.casefold()
        info.kind = next((kind for word, kind in _NAME_KINDS if word in lowered), "unknown")


def _read_start(path: Path, count: int) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(count)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _sniff(path: Path) -> Format:
    start = _read_start(path, 9)
    if start.startswith(b"GGUF"):
        return "gguf"
    if len(start) == 9 and start[8:9] == b"{":
        return "safetensors"
    known = ", ".join(MODEL_SUFFIXES)
    raise ModelFileError(f"{path.name}: not a model file tsr can read (it reads {known})")


def _check_pickle(path: Path) -> None:
    # Never unpickled (that runs code); only the first bytes are looked at, to catch error pages.
    start = _read_start(path, 4)
    if start.startswith(b"PK\x03\x04") or (len(start) >= 2 and start[0] == 0x80):
        return
    if start[:1] == b"<":
        raise ModelFileError(
            f"{path.name}: this is a web page, not a model (probably an error page saved by a "
            "failed download)"
        )
    raise ModelFileError(f"{path.name}: not a PyTorch checkpoint (neither a zip nor a pickle)")


def _fill_from_safetensors(info: ModelInfo, header: SafetensorsHeader) -> None:
    shapes = {tensor.name: tensor.shape for tensor in header.tensors}
    info.tensor_count = len(header.tensors)
    info.parameter_count = sum(tensor.numel for tensor in header.tensors)
    info.dtypes = dict(Counter(tensor.dtype for tensor in header.tensors).most_common())
    info.metadata = decode_metadata(header.metadata)
    info.training = training_info(header.metadata)
    info.trigger_candidates = trigger_candidates(info.metadata.get("ss_tag_frequency"))
    info.kind = detect_kind(list(shapes))
    info.architecture, info.architecture_signal = _architecture(
        detect_architecture(info.kind, shapes, header.metadata)
    )


def _fill_from_gguf(info: ModelInfo, gguf: GGUFFile) -> None:
    # ggml lists dimensions innermost first; reversed they read like torch shapes
    shapes = {tensor.name: tuple(reversed(tensor.dims)) for tensor in gguf.tensors}
    info.tensor_count = len(gguf.tensors)
    info.parameter_count = sum(tensor.numel for tensor in gguf.tensors)
    info.dtypes = dict(Counter(tensor.type_name for tensor in gguf.tensors).most_common())
    weights: Counter[str] = Counter()
    for tensor in gguf.tensors:
        weights[tensor.type_name] += tensor.numel
    info.quantizations = [name for name, _ in weights.most_common()]
    info.metadata = dict(gguf.metadata)
    info.gguf_architecture = gguf.architecture
    info.kind = detect_kind(list(shapes))
    known = _GGUF_ARCHITECTURES.get((gguf.architecture or "").casefold())
    if known:
        info.architecture = known
        label = ARCHITECTURE_LABELS[known]
        info.architecture_signal = f"GGUF general.architecture {gguf.architecture!r} ({label})"
        if info.kind == "unknown" and gguf.tensors:
            info.kind = "checkpoint"
    else:
        text_metadata = {k: v for k, v in gguf.metadata.items() if isinstance(v, str)}
        info.architecture, info.architecture_signal = _architecture(
            detect_architecture(info.kind, shapes, text_metadata)
        )


def _architecture(decision: Decision) -> tuple[Architecture | None, str | None]:
    value = decision.value
    if value in ARCHITECTURE_LABELS:
        return value, decision.signal  # type: ignore[return-value]
    return None, None


def decode_metadata(raw: Mapping[str, str]) -> dict[str, Any]:
    """`__metadata__` with JSON objects and arrays inside strings decoded where they parse."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        decoded[key] = value
        if value[:1] in ("{", "["):
            # not JSON after all: the text stays
            with contextlib.suppress(ValueError, RecursionError):
                decoded[key] = json.loads(value)
    return decoded


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is None or number == number else None  # NaN means unknown


def _text(value: str | None) -> str | None:
    return value if value and value.strip() and value != "None" else None


def _resolution(value: str | None) -> str | None:
    numbers = re.findall(r"\d+", value or "")
    if len(numbers) == 2:
        return f"{numbers[0]}x{numbers[1]}"
    return _text(value)


def training_info(raw: Mapping[str, str]) -> TrainingInfo:
    """The training facts from raw kohya `ss_*` and `modelspec.*` metadata."""
    return TrainingInfo(
        clip_skip=_int(raw.get("ss_clip_skip")),
        network_dim=_int(raw.get("ss_network_dim")),
        network_alpha=_float(raw.get("ss_network_alpha")),
        network_module=_text(raw.get("ss_network_module")),
        base_model_version=_text(raw.get("ss_base_model_version")),
        sd_model_name=_text(raw.get("ss_sd_model_name")),
        resolution=_resolution(raw.get("ss_resolution") or raw.get("modelspec.resolution")),
        output_name=_text(raw.get("ss_output_name")),
        training_comment=_text(raw.get("ss_training_comment")),
        sshs_model_hash=_text(raw.get("sshs_model_hash")),
        modelspec_architecture=_text(raw.get("modelspec.architecture")),
        modelspec_title=_text(raw.get("modelspec.title")),
    )


def trigger_candidates(tag_frequency: object, limit: int = TRIGGER_LIMIT) -> list[TriggerCandidate]:
    """Tags of `ss_tag_frequency` ({dir: {tag: count}}) summed over dirs, most frequent first."""
    if isinstance(tag_frequency, str):
        try:
            tag_frequency = json.loads(tag_frequency)
        except (ValueError, RecursionError):
            return []
    if not isinstance(tag_frequency, dict):
        return []
    totals: Counter[str] = Counter()
    for tags in tag_frequency.values():
        if not isinstance(tags, dict):
            continue
        for tag, count in tags.items():
            clean = " ".join(str(tag).split())
            if clean and isinstance(count, int) and not isinstance(count, bool) and count > 0:
                totals[clean] += count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [TriggerCandidate(tag=tag, count=count) for tag, count in ranked[:limit]]


def model_suffixes() -> tuple[str, ...]:
    """File suffixes `inspect_file` recognises (lower case, with the dot)."""
    return tuple(MODEL_SUFFIXES)
