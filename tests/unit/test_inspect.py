"""inspect_file on real tiny model files: kind, architecture, family and the signal that decided."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import modelfiles
from tsr.inspect import detect_family, hash_into, inspect_file, trigger_candidates


@pytest.mark.parametrize(
    ("file_name", "write", "kind", "architecture", "family", "signal"),
    [
        (
            "my_model.safetensors",
            modelfiles.write_sd15_checkpoint,
            "checkpoint",
            "sd1",
            "sd15",
            "header keys cond_stage_model.transformer (SD 1.x)",
        ),
        (
            "my_model.safetensors",
            modelfiles.write_sdxl_checkpoint,
            "checkpoint",
            "sdxl",
            "sdxl",
            "header keys conditioner.embedders.1 (SDXL)",
        ),
        (
            "model.safetensors",
            modelfiles.write_pony_checkpoint,
            "checkpoint",
            "sdxl",
            "pony",
            "modelspec.title 'Pony Diffusion V6 XL'",
        ),
        (
            "ae_test.safetensors",
            modelfiles.write_flux_checkpoint,
            "checkpoint",
            "flux",
            "flux",
            "header keys double_blocks/single_blocks (Flux)",
        ),
        (
            "prefixed.safetensors",
            lambda path: modelfiles.write_flux_checkpoint(path, prefixed=True),
            "checkpoint",
            "flux",
            "flux",
            "header keys double_blocks/single_blocks (Flux)",
        ),
        (
            "v2-1_768-ema-pruned.safetensors",
            modelfiles.write_sd2_checkpoint,
            "checkpoint",
            "sd2",
            None,
            "header keys cond_stage_model.model (SD 2.x); tsr has no SD 2.x family",
        ),
        (
            "medium.safetensors",
            modelfiles.write_sd3_checkpoint,
            "checkpoint",
            "sd3",
            None,
            "header keys joint_blocks (SD3); tsr has no SD3 family",
        ),
        (
            "mychar.safetensors",
            modelfiles.write_sd15_lora,
            "lora",
            "sd1",
            "sd15",
            "LoRA cross-attention width 768 (SD 1.x)",
        ),
        (
            "mychar.safetensors",
            modelfiles.write_sdxl_lora,
            "lora",
            "sdxl",
            "sdxl",
            "modelspec.architecture 'stable-diffusion-xl-v1-base/lora'",
        ),
        (
            "mychar.safetensors",
            modelfiles.write_pony_lora,
            "lora",
            "sdxl",
            "pony",
            "kohya ss_sd_model_name 'ponyDiffusionV6XL_v6StartWithThisOne.safetensors'",
        ),
        (
            "style.safetensors",
            modelfiles.write_flux_lora,
            "lora",
            "flux",
            "flux",
            "LoRA keys double_blocks/single_blocks (Flux)",
        ),
        (
            "loha.safetensors",
            modelfiles.write_lycoris_lora,
            "lora",
            "sd1",
            "sd15",
            "LoRA cross-attention width 768 (SD 1.x)",
        ),
        (
            "lokr.safetensors",
            lambda path: modelfiles.write_lycoris_lora(path, algo="lokr"),
            "lora",
            "sd1",
            "sd15",
            "kohya ss_base_model_version 'sd_v1' (SD 1.x)",
        ),
        ("kl-f8.safetensors", modelfiles.write_vae, "vae", None, None, None),
        (
            "easynegative.safetensors",
            modelfiles.write_embedding,
            "embedding",
            "sd1",
            "sd15",
            "embedding width 768 (SD 1.x)",
        ),
        (
            "negative.safetensors",
            lambda path: modelfiles.write_embedding(path, architecture="sdxl"),
            "embedding",
            "sdxl",
            "sdxl",
            "embedding keys clip_g (SDXL)",
        ),
        (
            "model-Q4_0.gguf",
            modelfiles.write_gguf,
            "checkpoint",
            "flux",
            "flux",
            "GGUF general.architecture 'flux' (Flux)",
        ),
        (
            "model-Q4_K.gguf",
            lambda path: modelfiles.write_gguf(path, architecture=None, quant="Q4_K"),
            "checkpoint",
            "flux",
            "flux",
            "header keys double_blocks/single_blocks (Flux)",
        ),
    ],
)
def test_kind_architecture_and_family(
    tmp_path: Path,
    file_name: str,
    write: Callable[[Path], Path],
    kind: str,
    architecture: str | None,
    family: str | None,
    signal: str | None,
) -> None:
    info = inspect_file(write(tmp_path / file_name))
    assert info.error is None
    assert (info.kind, info.architecture, info.family) == (kind, architecture, family)
    assert info.family_signal == signal


def test_checkpoint_counts_dtypes_and_size(tmp_path: Path) -> None:
    path = modelfiles.write_sdxl_checkpoint(tmp_path / "sdxl.safetensors")
    info = inspect_file(path)
    assert info.format == "safetensors"
    assert info.size == path.stat().st_size
    assert 2400 < (info.tensor_count or 0) < 2600  # an SDXL checkpoint has about 2,515
    assert info.dtypes == {"F16": info.tensor_count}
    assert (info.parameter_count or 0) > (info.tensor_count or 0)


def test_lora_training_metadata_and_trigger_candidates(tmp_path: Path) -> None:
    info = inspect_file(modelfiles.write_pony_lora(tmp_path / "mychar.safetensors"))
    training = info.training
    assert training.network_dim == 16 and training.network_alpha == 8.0
    assert training.clip_skip == 2 and training.resolution == "1024x1024"
    assert training.network_module == "networks.lora" and training.output_name == "mychar"
    assert training.base_model_version == "sdxl_base_v1-0"
    assert training.sd_model_name == "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"
    assert training.modelspec_architecture == "stable-diffusion-xl-v1-base/lora"
    assert training.training_comment is None  # kohya writes the string "None"
    # summed over both dataset folders, leading spaces merged, highest count first
    assert [(c.tag, c.count) for c in info.trigger_candidates] == [
        ("mychar", 50),
        ("1girl", 48),
        ("solo", 34),
        ("red dress", 12),
        ("smile", 12),
        ("long hair", 9),
    ]
    # JSON inside metadata strings is decoded; plain strings stay strings
    assert info.metadata["ss_tag_frequency"]["10_mychar"]["mychar"] == 40
    assert info.metadata["ss_network_dim"] == "16"
    assert info.metadata["ss_resolution"] == "(1024, 1024)"


def test_trigger_candidates_are_capped_and_ignore_junk() -> None:
    frequency = {
        "a": {f"tag{i:02}": i for i in range(40)},
        "b": {"tag39": 5, "bad": "many", "neg": -3, "flag": True},
        "c": ["not", "a", "dict"],
    }
    ranked = trigger_candidates(json.dumps(frequency))
    assert len(ranked) == 30
    assert (ranked[0].tag, ranked[0].count) == ("tag39", 44)
    assert {c.tag for c in ranked}.isdisjoint({"bad", "neg", "flag"})
    assert trigger_candidates("{not json") == [] and trigger_candidates(None) == []


def test_lora_without_metadata_is_placed_by_its_shapes(tmp_path: Path) -> None:
    path = modelfiles.write_sdxl_lora(tmp_path / "x.safetensors", metadata={}, text_encoder=False)
    info = inspect_file(path)
    assert (info.kind, info.architecture, info.family) == ("lora", "sdxl", "sdxl")
    assert info.family_signal == "LoRA cross-attention width 2048 (SDXL)"
    assert info.training.is_empty() and info.trigger_candidates == []
    path = modelfiles.write_sd15_lora(tmp_path / "y.safetensors", metadata={})
    assert inspect_file(path).family_signal == "LoRA cross-attention width 768 (SD 1.x)"


@pytest.fixture(scope="module")
def sdxl_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plain SDXL checkpoint, copied under the names a test needs."""
    return modelfiles.write_sdxl_checkpoint(tmp_path_factory.mktemp("sdxl") / "base.safetensors")


@pytest.mark.parametrize(
    ("file_name", "family", "signal"),
    [
        ("noobaiXL_vPred10.safetensors", "illustrious", "file name contains 'noob'"),
        ("waiIllustriousSDXL_v150.safetensors", "illustrious", "file name contains 'illustrious'"),
        ("ponyRealism_v22.safetensors", "pony", "file name contains 'pony'"),
        ("juggernautXL_v9.safetensors", "sdxl", "file name contains 'xl'"),
        # a keyword that does not fit the tensors is ignored
        ("fluxStyleMix.safetensors", "sdxl", "header keys conditioner.embedders.1 (SDXL)"),
    ],
)
def test_file_name_keywords_for_sdxl_checkpoints(
    sdxl_checkpoint: Path, tmp_path: Path, file_name: str, family: str, signal: str
) -> None:
    info = inspect_file(Path(shutil.copy(sdxl_checkpoint, tmp_path / file_name)))
    assert (info.family, info.family_signal) == (family, signal)


def test_sd15_checkpoint_named_pony_stays_sd15(tmp_path: Path) -> None:
    info = inspect_file(modelfiles.write_sd15_checkpoint(tmp_path / "ponyDiffusionV4.safetensors"))
    assert info.family == "sd15"
    assert info.family_signal == "header keys cond_stage_model.transformer (SD 1.x)"


def test_metadata_outranks_the_file_name(tmp_path: Path) -> None:
    metadata = {
        "modelspec.title": "NoobAI XL 1.1",
        "modelspec.architecture": "stable-diffusion-xl-v1-base",
    }
    path = tmp_path / "ponyMix.safetensors"
    info = inspect_file(modelfiles.write_sdxl_checkpoint(path, metadata=metadata))
    assert (info.family, info.family_signal) == ("illustrious", "modelspec.title 'NoobAI XL 1.1'")


def test_detect_family_puts_override_and_civitai_first(tmp_path: Path) -> None:
    info = inspect_file(modelfiles.write_pony_checkpoint(tmp_path / "model.safetensors"))
    common: dict[str, Any] = {
        "architecture": info.architecture,
        "architecture_signal": info.architecture_signal,
        "metadata": info.metadata,
        "file_name": info.path.name,
    }
    assert detect_family(**common, civitai_base_model="Illustrious") == (
        "illustrious",
        "CivitAI baseModel 'Illustrious'",
    )
    assert detect_family(**common, civitai_base_model="NoobAI", override="sdxl") == (
        "sdxl",
        "set by the user",
    )
    # a baseModel tsr has no family for falls through to the header
    assert detect_family(**common, civitai_base_model="SD 3.5")[0] == "pony"


def test_pickles_are_recognised_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    path = modelfiles.write_ckpt(tmp_path / "sd-v1-4.ckpt", booby_trap=marker)
    info = inspect_file(path, with_hash=True)
    assert not marker.exists()
    assert info.error is None
    assert (info.format, info.kind, info.tensor_count) == ("pickle", "unknown", None)
    assert info.size == path.stat().st_size
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    vae = inspect_file(modelfiles.write_ckpt(tmp_path / "vae-ft-mse-840000.pt"))
    assert vae.kind == "vae"


def test_error_page_saved_as_a_model_is_named(tmp_path: Path) -> None:
    for name in ("model.ckpt", "model.safetensors"):
        path = tmp_path / name
        path.write_text("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
        info = inspect_file(path)
        assert info.error is not None and "web page" in info.error
        assert info.kind == "unknown"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "gone.safetensors", "gone.safetensors: no such file"),
        (lambda tmp: tmp, "is a directory"),
        (
            lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("hello"))[0],
            "notes.txt: not a model file tsr can read",
        ),
        (
            lambda tmp: (tmp / "cut.safetensors", (tmp / "cut.safetensors").write_bytes(b"\x10"))[
                0
            ],
            "cut.safetensors: only 1 bytes long",
        ),
    ],
)
def test_bad_paths_give_one_sentence_never_raise(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    info = inspect_file(make(tmp_path), with_hash=True)
    assert info.error is not None and reason in info.error
    assert "\n" not in info.error


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    info = inspect_file(fifo, with_hash=True)
    assert info.error == f"{fifo}: is not a regular file"


def test_truncated_download_keeps_file_name_signals(tmp_path: Path) -> None:
    path = modelfiles.write_sdxl_checkpoint(tmp_path / "ponyDiffusionV6XL.safetensors")
    with path.open("r+b") as stream:
        stream.truncate(path.stat().st_size - 100)
    info = inspect_file(path)
    assert info.error is not None and "truncated" in info.error
    assert (info.family, info.family_signal) == ("pony", "file name contains 'pony'")


def test_unknown_suffix_is_sniffed(tmp_path: Path) -> None:
    gguf = modelfiles.write_gguf(tmp_path / "flux.q4")
    assert inspect_file(gguf).format == "gguf"
    tensors = modelfiles.write_vae(tmp_path / "vae.weights")
    info = inspect_file(tensors)
    assert (info.format, info.kind) == ("safetensors", "vae")


def test_hash_into_matches_hashlib_and_reports_progress(tmp_path: Path) -> None:
    path = modelfiles.write_sd15_lora(tmp_path / "mychar.safetensors")
    seen: list[int] = []
    info = hash_into(inspect_file(path), progress=seen.append)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.sha256 == digest
    assert info.autov2 == digest[:10] and info.short_hash == digest[:12]
    assert seen[-1] == path.stat().st_size
    assert inspect_file(path).sha256 is None  # hashing is asked for, never implied
