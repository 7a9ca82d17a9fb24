"""A1111's names in tsr's terms: LoRA tags out of prompts, sampler and scheduler names, and
checkpoints and LoRAs found by the names A1111 clients use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsr.errors import BadRequest, NotFound
from tsr.server.a1111.catalog import CatalogFile, close_names, find_checkpoint, find_lora
from tsr.server.a1111.names import LoraTag, resolve_a1111_sampling, split_lora_tags


@pytest.mark.parametrize(
    ("prompt", "text", "tags"),
    [
        ("a cat <lora:ink:0.8>", "a cat", [("ink", 0.8)]),
        ("<lora:ink:0.8>, a cat, <LoRA:detail>", "a cat", [("ink", 0.8), ("detail", 1.0)]),
        ("a cat, <lora:ink:-0.5>, smiling", "a cat, smiling", [("ink", -0.5)]),
        ("a <lyco:hada:0.7> cat", "a cat", [("hada", 0.7)]),
        ("a cat <lora:my lora:te=0.6:unet=0.6>", "a cat", [("my lora", 0.6)]),
        ("a cat <hypernet:x:1>", "a cat <hypernet:x:1>", []),
        ("no tags, (weighted:1.2)", "no tags, (weighted:1.2)", []),
    ],
)
def test_lora_tags_come_out_of_the_prompt(
    prompt: str, text: str, tags: list[tuple[str, float]]
) -> None:
    cleaned, found = split_lora_tags(prompt)

    assert cleaned == text
    assert [(tag.name, tag.weight) for tag in found] == tags
    assert all(isinstance(tag, LoraTag) and tag.text in prompt for tag in found)


@pytest.mark.parametrize(
    ("sampler", "scheduler", "expected"),
    [
        ("DPM++ 2M Karras", None, ("DPM++ 2M", "Karras")),
        ("dpm++ 2m karras", "karras", ("DPM++ 2M", "Karras")),
        ("DPM++ 2M SDE Exponential", None, ("DPM++ 2M SDE", "Exponential")),
        ("Euler a", "sgm_uniform", ("Euler a", "SGM Uniform")),
        ("Euler SGMUniform", None, ("Euler", "SGM Uniform")),
        ("k_euler_a", None, ("Euler a", None)),
        ("k_dpmpp_2m_ka", None, ("DPM++ 2M", "Karras")),
        ("ddim", "align_your_steps", ("DDIM", "Align Your Steps")),
        ("ipndm", "automatic", ("ipndm", None)),
        ("DPM++ 2M Karras", "Automatic", ("DPM++ 2M", "Karras")),
        ("", "", (None, None)),
        (None, "normal", (None, "Normal")),
    ],
)
def test_a1111_sampler_names_map_to_tsr_labels(
    sampler: str | None, scheduler: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert resolve_a1111_sampling(sampler, scheduler) == expected


def test_unknown_sampling_names_name_the_field() -> None:
    with pytest.raises(BadRequest, match=r"^sampler_name: unknown sampler 'UniPC'"):
        resolve_a1111_sampling("UniPC", None)
    with pytest.raises(BadRequest, match=r"^scheduler: unknown scheduler 'uniform'"):
        resolve_a1111_sampling("Euler", "uniform")
    with pytest.raises(BadRequest, match="implies scheduler 'Karras'"):
        resolve_a1111_sampling("k_lms_ka", "simple")


def _file(file_id: int, relative: str, sha: str, alias: str | None = None) -> CatalogFile:
    metadata = {"ss_output_name": alias} if alias else {}
    path = Path("/models") / relative
    return CatalogFile(file_id, path, relative, sha, None, False, metadata)


CHECKPOINTS = [
    _file(1, "sd15.safetensors", "ab" * 32),
    _file(2, "xl/juggernaut v9.safetensors", "cd" * 32),
    _file(3, "other/sd15.safetensors", "ef" * 32),
]


@pytest.mark.parametrize(
    ("ref", "file_id"),
    [
        ("juggernaut v9", 2),
        ("xl/juggernaut v9.safetensors [cdcdcdcdcd]", 2),
        ("xl_juggernaut v9", 2),
        ("JUGGERNAUT V9.safetensors", 2),
        ("cdcdcdcdcd", 2),
        ("ef" * 32, 3),
        ("sd15.safetensors [abababab]", 1),
        ("other/sd15.safetensors", 3),
        ("sd15.safetensors", 1),  # A1111's `name`: the path below the root wins
        ("sd15", 1),  # A1111's model name (the other one is `other_sd15`)
    ],
)
def test_checkpoints_are_found_by_every_a1111_name(ref: str, file_id: int) -> None:
    assert find_checkpoint(CHECKPOINTS, ref).id == file_id


def test_an_ambiguous_or_unknown_checkpoint_says_which_to_choose() -> None:
    twins = [_file(1, "a/x.safetensors", "01" * 32), _file(2, "b/x.gguf", "02" * 32)]
    with pytest.raises(BadRequest, match=r"several checkpoint files are named 'x' \(a/x"):
        find_checkpoint(twins, "x")
    with pytest.raises(NotFound, match=r"close names: xl/juggernaut v9\.safetensors"):
        find_checkpoint(CHECKPOINTS, "juggernaut")


def test_a_lora_stem_beats_another_loras_training_alias() -> None:
    loras = [
        _file(1, "ink.safetensors", "01" * 32, alias="detail"),
        _file(2, "detail.pt", "02" * 32),
    ]

    assert find_lora(loras, "detail").id == 2
    assert find_lora(loras, "ink").id == 1
    assert close_names("detial", ["detail", "ink", "details-xl"]) == ["detail", "details-xl"]
