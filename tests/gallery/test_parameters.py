"""The PNG `parameters` text: tsr writes A1111's exact form and reads A1111's and sd.cpp's back."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.gallery.helpers import params, sdcpp_png
from tsr import __version__
from tsr.gallery import build_parameters, parse_parameters
from tsr.schemas.images import ImageParams, LoraUse


def test_build_matches_the_documented_a1111_form() -> None:
    text = build_parameters(
        params(
            checkpoint="stem",
            checkpoint_sha256="1a2b3c4d5e" + "9" * 54,
            prompt="a castle",
            loras=[
                LoraUse(name="stem1", weight=0.8, sha256="0123456789ab" + "c" * 52),
                LoraUse(name="stem2", weight=1.0, sha256="ba9876543210" + "d" * 52),
            ],
            width=512,
            height=512,
        )
    )
    assert text == (
        "a castle <lora:stem1:0.8> <lora:stem2:1>\n"
        "Negative prompt: blurry\n"
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
        "Size: 512x512, Model hash: 1a2b3c4d5e, Model: stem, Clip skip: 2, "
        'Lora hashes: "stem1: 0123456789ab, stem2: ba9876543210", '
        f"Version: tsr {__version__}"
    )


def test_empty_negative_is_left_out_and_odd_values_are_quoted() -> None:
    text = build_parameters(
        ImageParams(prompt="x", checkpoint='my, "odd": model', cfg=6.5, steps=20, seed=1)
    )
    lines = text.split("\n")
    assert len(lines) == 2
    assert 'Model: "my, \\"odd\\": model"' in lines[1]
    assert "CFG scale: 6.5," in lines[1]
    assert parse_parameters(text).checkpoint == 'my, "odd": model'


def test_parses_a_webui_text_with_multiline_prompts_and_quoted_values() -> None:
    text = (
        "masterpiece, 1girl,\nsitting <lora:detail_slider:0.5>\n"
        "Negative prompt: lowres,\nbad hands\n"
        "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 987654321, "
        "Size: 832x1216, Model hash: ABCDEF0123, Model: ponyDiffusionV6XL, "
        'Lora hashes: "detail_slider: 0a1b2c3d4e5f", Denoising strength: 0.4, '
        'Hires upscaler: "4x-UltraSharp", Version: v1.10.1'
    )
    parsed = parse_parameters(text)
    assert parsed.source == "a1111"
    assert parsed.prompt == "masterpiece, 1girl,\nsitting"
    assert parsed.negative == "lowres,\nbad hands"
    assert (parsed.steps, parsed.cfg, parsed.seed) == (30, 6.5, 987654321)
    # the legacy combined label splits into sampler and scheduler
    assert (parsed.sampler, parsed.scheduler) == ("DPM++ 2M", "Karras")
    assert (parsed.width, parsed.height) == (832, 1216)
    assert parsed.checkpoint == "ponyDiffusionV6XL"
    assert parsed.checkpoint_hash == "abcdef0123"
    assert parsed.loras == [LoraUse(name="detail_slider", weight=0.5, sha256="0a1b2c3d4e5f")]
    assert parsed.extra == {"Denoising strength": "0.4", "Hires upscaler": "4x-UltraSharp"}
    assert parsed.version == "v1.10.1"


def test_parses_the_infotext_a_real_sd_server_wrote() -> None:
    text = Image.open(io.BytesIO(sdcpp_png())).text["parameters"]
    assert "CFG scale: 7.000000" in text and "SDCPP: {" in text
    parsed = parse_parameters(text)
    assert parsed.source == "sdcpp"
    assert parsed.prompt == "a red cube on a table"
    assert parsed.negative == "blurry"
    assert (parsed.steps, parsed.cfg, parsed.seed) == (1, 7.0, 1235)
    assert (parsed.sampler, parsed.scheduler) == ("Euler a", "Karras")
    assert parsed.checkpoint == "sd15-random"
    assert parsed.loras == [LoraUse(name="tiny-random-lora", weight=0.8)]
    assert parsed.extra["RNG"] == "cuda"
    assert parsed.extra["SDCPP"]["schema"] == "sdcpp.image.params/v1"


def test_sd_server_default_sampler_reads_as_none() -> None:
    text = Image.open(io.BytesIO(sdcpp_png("sdcpp-no-sampler.png"))).text["parameters"]
    parsed = parse_parameters(text)
    assert "Sampler: NONE" in text
    assert parsed.sampler is None
    assert (parsed.prompt, parsed.negative, parsed.seed) == ("x", "", 5)


def test_text_without_a_parameters_line_is_all_prompt() -> None:
    parsed = parse_parameters("just a prompt\nover two lines")
    assert parsed.prompt == "just a prompt\nover two lines"
    assert parsed.steps is None


def test_round_trip_gives_back_every_value() -> None:
    original = params(extra={"Denoising strength": 0.35, "nested": {"not": "written"}})
    parsed = parse_parameters(build_parameters(original))
    assert parsed.source == "tsr"
    assert parsed.prompt == original.prompt
    assert parsed.negative == original.negative
    assert parsed.checkpoint == original.checkpoint
    assert parsed.checkpoint_hash == "1a2b3c4d5e"
    assert parsed.loras == [LoraUse(name="add_detail", weight=0.8, sha256="0123456789ab")]
    assert parsed.extra == {"Denoising strength": "0.35"}


# prompts as people write them: commas, quotes, colons, newlines, brackets, unicode
_awkward = st.text(
    alphabet=st.sampled_from(list('abc XYZ,,::""\'\n()[]{}\\é漢😀-_=+*#!?.0123456789\t')),
    max_size=60,
).filter(lambda text: "Negative prompt:" not in text)
_name = (
    st.text(alphabet=st.sampled_from(list("abcdefXYZ_-. ,09()")), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_weight = st.floats(min_value=-4, max_value=4, allow_nan=False).map(lambda value: round(value, 3))
_loras = st.lists(
    st.builds(LoraUse, name=_name, weight=_weight, sha256=st.one_of(st.none(), _hex)),
    max_size=3,
    unique_by=lambda lora: lora.name,
)


@settings(max_examples=150, deadline=None)
@given(
    prompt=_awkward,
    negative=_awkward,
    checkpoint=st.one_of(st.none(), _name, _awkward.map(str.strip).filter(bool)),
    sha=st.one_of(st.none(), _hex),
    loras=_loras,
    steps=st.one_of(st.none(), st.integers(1, 150)),
    cfg=st.one_of(st.none(), st.floats(0, 30, allow_nan=False).map(lambda value: round(value, 2))),
    seed=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    clip_skip=st.one_of(st.none(), st.integers(1, 12)),
    sampler=st.sampled_from([None, "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "LCM"]),
    scheduler=st.sampled_from([None, "Karras", "SGM Uniform", "Simple"]),
)
def test_round_trip_holds_for_awkward_values(
    prompt: str,
    negative: str,
    checkpoint: str | None,
    sha: str | None,
    loras: list[LoraUse],
    steps: int | None,
    cfg: float | None,
    seed: int | None,
    clip_skip: int | None,
    sampler: str | None,
    scheduler: str | None,
) -> None:
    original = ImageParams(
        prompt=prompt,
        negative=negative,
        checkpoint=checkpoint,
        checkpoint_sha256=sha,
        loras=loras,
        steps=steps,
        cfg=cfg,
        seed=seed,
        clip_skip=clip_skip,
        sampler=sampler,
        scheduler=scheduler,
        width=512,
        height=768,
    )
    parsed = parse_parameters(build_parameters(original))
    assert parsed.prompt == prompt
    assert parsed.negative == negative
    assert parsed.checkpoint == checkpoint
    assert parsed.checkpoint_hash == (sha[:10] if sha else None)
    assert (parsed.steps, parsed.cfg, parsed.seed, parsed.clip_skip) == (
        steps,
        cfg,
        seed,
        clip_skip,
    )
    assert (parsed.sampler, parsed.scheduler) == (sampler, scheduler)
    assert (parsed.width, parsed.height) == (512, 768)
    expected = [
        (lora.name, lora.weight, lora.sha256[:12] if lora.sha256 else None) for lora in loras
    ]
    assert [(lora.name, lora.weight, lora.sha256) for lora in parsed.loras] == expected


def test_hostile_texts_are_read_without_hanging() -> None:
    # a PNG can carry megabytes of text; none of these may take quadratic time
    for text in (
        "a" * 1_000_000,
        'x\nSteps: 1, Lora hashes: "' + "a: 0" * 10_000 + '"',
        "<lora:x:1> " * 50_000,
        'a: "x, ' * 100_000,
    ):
        parsed = parse_parameters(text)
        assert parsed.prompt or parsed.loras
