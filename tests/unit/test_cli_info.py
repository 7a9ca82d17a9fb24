"""`tsr info` as a user runs it: a real process on real model files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests import modelfiles
from tsr.cli.info import parameters_text


def tsr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsr", "info", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_readable_report_for_a_pony_lora_and_a_flux_gguf(tmp_path: Path) -> None:
    lora = modelfiles.write_pony_lora(tmp_path / "mychar.safetensors")
    gguf = modelfiles.write_gguf(tmp_path / "flux1-dev-Q4_0.gguf")
    result = tsr(lora, gguf)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lora_part, gguf_part = result.stdout.split("\n\n")
    assert lora_part.splitlines()[0] == str(lora)
    assert "kind:       lora (SDXL)" in lora_part
    assert (
        "family:     pony, from kohya ss_sd_model_name "
        "'ponyDiffusionV6XL_v6StartWithThisOne.safetensors'" in lora_part
    )
    assert "tensors:    2,958" in lora_part
    assert "dim 16, alpha 8, clip skip 2, resolution 1024x1024" in lora_part
    assert "triggers:   mychar (50), 1girl (48), solo (34), red dress (12)" in lora_part
    assert "SHA256" not in lora_part
    assert "kind:       checkpoint (Flux)" in gguf_part
    assert "family:     flux, from GGUF general.architecture 'flux' (Flux)" in gguf_part
    assert "types:      F32 466, Q4_0 314" in gguf_part


def test_hash_flag_prints_sha256_autov2_and_short_hash(tmp_path: Path) -> None:
    path = modelfiles.write_sd15_checkpoint(tmp_path / "v1-5-pruned-emaonly.safetensors")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = tsr(path, "--hash")
    assert result.returncode == 0, result.stderr
    assert f"SHA256:     {digest}" in result.stdout
    assert f"AutoV2:     {digest[:10]}" in result.stdout
    assert f"short:      {digest[:12]}" in result.stdout
    assert (
        "family:     sd15, from header keys cond_stage_model.transformer (SD 1.x)" in result.stdout
    )


def test_json_lists_every_file_and_a_bad_one_fails_the_run(tmp_path: Path) -> None:
    good = modelfiles.write_sdxl_lora(tmp_path / "style.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-500])
    marker = tmp_path / "pickle-ran"
    ckpt = modelfiles.write_ckpt(tmp_path / "old.ckpt", booby_trap=marker)
    result = tsr(cut, good, ckpt, "--json", "--hash")
    assert result.returncode == 1
    assert not marker.exists()
    # the one bad file: one line on stderr, no traceback
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tsr: cut.safetensors: ")
    assert "truncated" in result.stderr
    reports = json.loads(result.stdout)
    assert [Path(r["path"]).name for r in reports] == [
        "cut.safetensors",
        "style.safetensors",
        "old.ckpt",
    ]
    bad, lora, pickle = reports
    assert bad["error"] == result.stderr.removeprefix("tsr: ").strip()
    assert lora["error"] is None
    assert (lora["kind"], lora["family"]) == ("lora", "sdxl")
    assert lora["family_signal"] == "modelspec.architecture 'stable-diffusion-xl-v1-base/lora'"
    assert lora["tensor_count"] == 2958 and lora["parameter_count"] > 0
    assert lora["metadata"]["ss_tag_frequency"]["10_mychar"]["mychar"] == 40
    assert lora["trigger_candidates"][0] == {"tag": "mychar", "count": 50}
    assert lora["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert (pickle["format"], pickle["tensor_count"], pickle["error"]) == ("pickle", None, None)


def test_missing_file_is_reported_after_the_others(tmp_path: Path) -> None:
    vae = modelfiles.write_vae(tmp_path / "sdxl_vae.safetensors")
    result = tsr(tmp_path / "nope.safetensors", vae)
    assert result.returncode == 1
    assert result.stderr.strip() == f"tsr: {tmp_path / 'nope.safetensors'}: no such file"
    assert "kind:       vae" in result.stdout
    assert "family:     sdxl, from file name contains 'sdxl'" in result.stdout


def test_parameter_counts_read_like_model_cards() -> None:
    assert parameters_text(2_567_463_684) == "2.57 B"
    assert parameters_text(85_300_000) == "85.3 M"
    assert parameters_text(1_234) == "1.23 K"
    assert parameters_text(12) == "12"
