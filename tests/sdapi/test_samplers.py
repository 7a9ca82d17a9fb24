"""WebUI sampler/scheduler labels map to sd.cpp names; unknown names are refused with the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsr.errors import BadRequest
from tsr.families import all_families
from tsr.samplers import (
    SAMPLER_LABELS,
    SCHEDULER_LABELS,
    SDCPP_SAMPLERS,
    SDCPP_SCHEDULERS,
    resolve_sampling,
    sampler_label,
    scheduler_label,
    split_legacy_label,
    to_sdcpp_sampler,
    to_sdcpp_scheduler,
)

SAMPLES = Path(__file__).with_name("samples")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Euler a", "euler_a"),
        ("euler A", "euler_a"),
        ("  DPM++   2M ", "dpm++2m"),
        ("DDIM", "ddim_trailing"),
        ("DPM++ 2S a", "dpm++2s_a"),
        ("LMS", "lms"),
        ("dpm++2m_sde_bt", "dpm++2m_sde_bt"),
        ("ipndm", "ipndm"),
    ],
)
def test_sampler_labels_and_sdcpp_names_map(name: str, expected: str) -> None:
    assert to_sdcpp_sampler(name) == expected


def test_unknown_sampler_is_refused_with_the_valid_names() -> None:
    with pytest.raises(BadRequest) as caught:
        to_sdcpp_sampler("Euler b")
    message = str(caught.value)
    assert "'Euler b'" in message
    assert "Euler a" in message and "DPM++ 2M SDE" in message and "dpm++2m_sde_bt" in message


def test_combined_label_as_a_sampler_says_how_to_split_it() -> None:
    with pytest.raises(BadRequest, match="sampler 'DPM\\+\\+ 2M' with scheduler 'Karras'"):
        to_sdcpp_sampler("DPM++ 2M Karras")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("DPM++ 2M Karras", ("DPM++ 2M", "Karras")),
        ("dpm++ 2m sde karras", ("DPM++ 2M SDE", "Karras")),
        ("DPM++ 2M SGM Uniform", ("DPM++ 2M", "SGM Uniform")),
        ("DPM2 a Karras", ("DPM2 a", "Karras")),
        ("Euler a", ("Euler a", None)),
        ("LCM", ("LCM", None)),
        ("euler_a", ("euler_a", None)),
    ],
)
def test_legacy_labels_split(label: str, expected: tuple[str, str | None]) -> None:
    assert split_legacy_label(label) == expected


def test_resolve_sampling_splits_legacy_labels_and_refuses_contradictions() -> None:
    assert resolve_sampling("DPM++ 2M Karras", None) == ("dpm++2m", "karras")
    assert resolve_sampling("DPM++ 2M Karras", "karras") == ("dpm++2m", "karras")
    assert resolve_sampling(None, "SGM Uniform") == (None, "sgm_uniform")
    assert resolve_sampling(None, None) == (None, None)
    with pytest.raises(BadRequest, match="implies scheduler 'Karras'"):
        resolve_sampling("DPM++ 2M Karras", "Simple")
    with pytest.raises(BadRequest, match="unknown sampler 'DPM2 a Karras'"):
        resolve_sampling("DPM2 a Karras", None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Karras", "karras"),
        ("KARRAS", "karras"),
        ("Normal", "discrete"),
        ("Automatic", "default"),
        ("Align Your Steps", "ays"),
        ("kl_optimal", "kl_optimal"),
        ("bong_tangent", "bong_tangent"),
    ],
)
def test_scheduler_labels_and_names_map(name: str, expected: str) -> None:
    assert to_sdcpp_scheduler(name) == expected


def test_unknown_scheduler_is_refused_with_the_valid_names() -> None:
    with pytest.raises(BadRequest) as caught:
        to_sdcpp_scheduler("cosine")
    assert "'cosine'" in str(caught.value)
    assert "Karras" in str(caught.value) and "sgm_uniform" in str(caught.value)


def test_labels_round_trip() -> None:
    for label in SAMPLER_LABELS:
        assert sampler_label(to_sdcpp_sampler(label)) == label
    for label in SCHEDULER_LABELS:
        assert scheduler_label(to_sdcpp_scheduler(label)) == label
    assert sampler_label("ipndm") == "ipndm"
    assert scheduler_label("gits") == "gits"


def test_every_family_default_maps_to_the_flags_its_sd_server_is_started_with() -> None:
    for family in all_families().values():
        sampler, scheduler = resolve_sampling(family.sampler, family.scheduler)
        args = family.server_args
        assert args[args.index("--sampling-method") + 1] == sampler, family.name
        assert args[args.index("--scheduler") + 1] == scheduler, family.name


def test_known_names_are_exactly_what_the_real_sd_server_lists() -> None:
    samplers = json.loads((SAMPLES / "samplers.json").read_text())["response"]
    schedulers = json.loads((SAMPLES / "schedulers.json").read_text())["response"]
    assert tuple(item["name"] for item in samplers) == SDCPP_SAMPLERS
    assert tuple(item["name"] for item in schedulers) == SDCPP_SCHEDULERS
    assert set(SAMPLER_LABELS.values()) <= set(SDCPP_SAMPLERS)
    assert set(SCHEDULER_LABELS.values()) <= set(SDCPP_SCHEDULERS)
