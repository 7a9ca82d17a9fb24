"""A1111's names for samplers and schedulers, and its `<lora:name:weight>` prompt tags.

A1111 clients send WebUI labels ("DPM++ 2M"), old `k_...` aliases, legacy combined labels
("DPM++ 2M Karras") and scheduler names ("align_your_steps"). They are mapped to the labels tsr
understands (`tsr.samplers`); what has no mapping is refused, since sd-server silently ignores
names it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tsr.errors import BadRequest
from tsr.samplers import (
    SAMPLER_LABELS,
    SCHEDULER_LABELS,
    SDCPP_SAMPLERS,
    SDCPP_SCHEDULERS,
    resolve_sampling,
    sampler_label,
    scheduler_label,
)


@dataclass(frozen=True)
class SamplerName:
    """A sampler as A1111 lists it: label, aliases, options."""

    name: str
    aliases: tuple[str, ...]
    options: dict[str, Any]


@dataclass(frozen=True)
class SchedulerName:
    """A scheduler as A1111 lists it: name, label, aliases, rho, inner-model flag."""

    name: str
    label: str
    aliases: tuple[str, ...] | None = None
    default_rho: float | None = None
    need_inner_model: bool | None = None


#: A1111's own aliases and options of the samplers tsr maps (modules/sd_samplers_kdiffusion.py)
_A1111_SAMPLERS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "DPM++ 2M": (("k_dpmpp_2m",), {}),
    "DPM++ 2M SDE": (("k_dpmpp_2m_sde",), {"brownian_noise": True}),
    "DPM++ 2S a": (("k_dpmpp_2s_a",), {"uses_ensd": True, "second_order": True}),
    "Euler a": (("k_euler_a", "k_euler_ancestral"), {"uses_ensd": True}),
    "Euler": (("k_euler",), {}),
    "LMS": (("k_lms",), {}),
    "Heun": (("k_heun",), {"second_order": True}),
    "DPM2": (("k_dpm_2",), {"discard_next_to_last_sigma": True, "second_order": True}),
    "DDIM": (("ddim",), {}),
    "LCM": (("k_lcm",), {}),
}

#: old A1111 aliases of combined sampler + Karras labels
_KARRAS_ALIASES = {
    "k_dpmpp_2m_ka": "DPM++ 2M",
    "k_dpmpp_2m_sde_ka": "DPM++ 2M SDE",
    "k_dpmpp_2s_a_ka": "DPM++ 2S a",
    "k_lms_ka": "LMS",
    "k_dpm_2_ka": "DPM2",
}

#: A1111 scheduler name -> (tsr label, aliases, default rho, needs inner model)
_A1111_SCHEDULERS: dict[str, tuple[str, tuple[str, ...] | None, float | None, bool | None]] = {
    "automatic": ("Automatic", None, None, None),
    "karras": ("Karras", None, 7.0, None),
    "exponential": ("Exponential", None, None, None),
    "sgm_uniform": ("SGM Uniform", ("SGMUniform",), None, True),
    "kl_optimal": ("KL Optimal", None, None, None),
    "align_your_steps": ("Align Your Steps", None, None, None),
    "simple": ("Simple", None, None, None),
    "normal": ("Normal", None, None, True),
    "beta": ("Beta", None, None, None),
}

#: sd.cpp schedulers already reachable through an A1111 label (or sd-server's own default)
_COVERED_SDCPP_SCHEDULERS = frozenset(SCHEDULER_LABELS.values()) | {"normal"}


def sampler_names() -> list[SamplerName]:
    """Every sampler tsr accepts: WebUI labels first, then sd.cpp methods without a label."""
    listed = []
    for label, sdcpp in SAMPLER_LABELS.items():
        aliases, options = _A1111_SAMPLERS.get(label, ((), {}))
        listed.append(SamplerName(label, (*aliases, sdcpp), dict(options)))
    labelled = set(SAMPLER_LABELS.values())
    listed += [
        SamplerName(name, (), {})
        for name in SDCPP_SAMPLERS
        if name != "default" and name not in labelled
    ]
    return listed


def scheduler_names() -> list[SchedulerName]:
    """Every scheduler tsr accepts, A1111's first, then sd.cpp's own."""
    listed = [
        SchedulerName(name, label, aliases, rho, inner)
        for name, (label, aliases, rho, inner) in _A1111_SCHEDULERS.items()
    ]
    listed += [
        SchedulerName(name, name)
        for name in SDCPP_SCHEDULERS
        if name not in _COVERED_SDCPP_SCHEDULERS
    ]
    return listed


def _sampler_alias(name: str) -> tuple[str, str | None]:
    # an A1111 alias -> (label, implied scheduler label)
    folded = name.strip().casefold()
    if folded in _KARRAS_ALIASES:
        return _KARRAS_ALIASES[folded], "Karras"
    for label, (aliases, _) in _A1111_SAMPLERS.items():
        if folded in aliases:
            return label, None
    # A1111 also writes the SGM Uniform suffix without its space
    if folded.endswith(" sgmuniform"):
        return name.strip()[: -len(" sgmuniform")], "SGM Uniform"
    return name, None


def _scheduler_alias(name: str) -> str:
    folded = " ".join(name.split()).casefold()
    for a1111, (label, aliases, _, _) in _A1111_SCHEDULERS.items():
        if folded == a1111 or folded in [a.casefold() for a in aliases or ()]:
            return label
    return name


def resolve_a1111_sampling(
    sampler: str | None, scheduler: str | None
) -> tuple[str | None, str | None]:
    """The (sampler, scheduler) labels for A1111's `sampler_name` and `scheduler` fields.

    None (and A1111's "Automatic") stays None: the checkpoint family's default. Unknown names
    raise BadRequest naming the field and listing the valid names.
    """
    implied = None
    if sampler is not None and sampler.strip():
        sampler, implied = _sampler_alias(sampler)
    else:
        sampler = None
    scheduler = _scheduler_alias(scheduler) if scheduler and scheduler.strip() else None
    # A1111's "Automatic" (what many clients send unasked) lets the server choose: the
    # checkpoint family's scheduler, or the one a legacy sampler label names
    if scheduler is None or scheduler == "Automatic":
        scheduler = implied
    if implied is not None and scheduler is not None and scheduler != implied:
        raise BadRequest(
            f"sampler_name implies scheduler {implied!r} but scheduler is {scheduler!r}; "
            "send one of them"
        )
    try:
        resolve_sampling(None, scheduler)
    except BadRequest as exc:
        raise BadRequest(f"scheduler: {exc} (GET /sdapi/v1/schedulers lists them)") from None
    try:
        sdcpp_sampler, sdcpp_scheduler = resolve_sampling(sampler, scheduler)
    except BadRequest as exc:
        raise BadRequest(f"sampler_name: {exc} (GET /sdapi/v1/samplers lists them)") from None
    return (
        sampler_label(sdcpp_sampler) if sdcpp_sampler else None,
        scheduler_label(sdcpp_scheduler) if sdcpp_scheduler else None,
    )


# ---- <lora:name:weight> tags ---------------------------------------------------------------

#: A1111's extra-network tags for LoRAs (`lyco` from the LyCORIS extension); weights optional
_LORA_TAG = re.compile(r"<(lora|lyco):([^<>]*)>", re.IGNORECASE)


@dataclass(frozen=True)
class LoraTag:
    """One `<lora:name:weight>` tag of a prompt."""

    text: str
    name: str
    weight: float


def _weight(tag: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadRequest(
            f"prompt: the weight in {tag} is not a number; write it like <lora:name:0.8>"
        ) from None


def _parse_tag(tag: str, body: str) -> LoraTag:
    name, *args = body.split(":")
    if not name.strip():
        raise BadRequest(f"prompt: {tag} names no LoRA; write it like <lora:name:0.8>")
    positional = [a for a in args if "=" not in a]
    named = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = set(named) - {"te", "unet"}
    if unknown or len(positional) > 2:
        what = ", ".join(sorted(unknown)) or "a third weight"
        raise BadRequest(
            f"prompt: {tag} uses options tsr cannot apply ({what}); sd-server takes one weight "
            "per LoRA: write it like <lora:name:0.8>"
        )
    te_text = named.get("te", positional[0] if positional else "1")
    te = _weight(tag, te_text)
    unet_text = named.get("unet", positional[1] if len(positional) > 1 else None)
    if unet_text is not None and _weight(tag, unet_text) != te:
        raise BadRequest(
            f"prompt: {tag} gives the text encoder and the UNet different weights; sd-server "
            "takes one weight per LoRA: write it like <lora:name:0.8>"
        )
    return LoraTag(tag, name.strip(), te)


def split_lora_tags(prompt: str) -> tuple[str, list[LoraTag]]:
    """The prompt without its LoRA tags, and the tags in order.

    Removing a tag leaves the text around it as it was, minus doubled spaces and a comma left
    dangling at either end.
    """
    tags = [_parse_tag(m.group(0), m.group(2)) for m in _LORA_TAG.finditer(prompt)]
    if not tags:
        return prompt, []
    text = _LORA_TAG.sub(" ", prompt)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",(\s*,)+", ",", text)
    return text.strip().strip(",").strip(), tags
