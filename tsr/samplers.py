"""Sampler and scheduler names: WebUI labels <-> stable-diffusion.cpp names, legacy labels split."""

from __future__ import annotations

from tsr.errors import BadRequest

#: WebUI sampler label -> sd.cpp sample method (model-families.md)
SAMPLER_LABELS: dict[str, str] = {
    "Euler a": "euler_a",
    "Euler": "euler",
    "Heun": "heun",
    "DPM2": "dpm2",
    "DPM++ 2S a": "dpm++2s_a",
    "DPM++ 2M": "dpm++2m",
    "DPM++ 2M SDE": "dpm++2m_sde",
    "LCM": "lcm",
    "DDIM": "ddim_trailing",
    "LMS": "lms",
}

#: WebUI scheduler ("Schedule type") label -> sd.cpp scheduler
SCHEDULER_LABELS: dict[str, str] = {
    "Automatic": "default",
    "Normal": "discrete",
    "Karras": "karras",
    "Simple": "simple",
    "Exponential": "exponential",
    "SGM Uniform": "sgm_uniform",
    "Align Your Steps": "ays",
    "Beta": "beta",
    "KL Optimal": "kl_optimal",
}

#: every sample method sd-server knows (GET /sdapi/v1/samplers); "default" = the server's own
SDCPP_SAMPLERS: tuple[str, ...] = (
    "default",
    "euler",
    "euler_a",
    "heun",
    "dpm2",
    "dpm++2s_a",
    "dpm++2m",
    "dpm++2mv2",
    "ipndm",
    "ipndm_v",
    "lcm",
    "ddim_trailing",
    "tcd",
    "res_multistep",
    "res_2s",
    "er_sde",
    "euler_cfg_pp",
    "euler_a_cfg_pp",
    "euler_ge",
    "dpm++2m_sde",
    "dpm++2m_sde_bt",
    "lms",
)

#: every scheduler sd-server knows (GET /sdapi/v1/schedulers); "default" = the server's own
SDCPP_SCHEDULERS: tuple[str, ...] = (
    "default",
    "discrete",
    "normal",
    "karras",
    "exponential",
    "ays",
    "gits",
    "sgm_uniform",
    "simple",
    "smoothstep",
    "kl_optimal",
    "lcm",
    "bong_tangent",
    "ltx2",
    "logit_normal",
    "flux2",
    "flux",
    "beta",
)

_SAMPLER_BY_FOLDED = {label.casefold(): label for label in SAMPLER_LABELS}
_SCHEDULER_BY_FOLDED = {label.casefold(): label for label in SCHEDULER_LABELS}
# The longest scheduler labels first, so "SGM Uniform" wins over a shorter suffix.
_SCHEDULER_SUFFIXES = sorted(SCHEDULER_LABELS, key=len, reverse=True)


def split_legacy_label(label: str) -> tuple[str, str | None]:
    """Split an old combined label ("DPM++ 2M Karras") into (sampler label, scheduler label).

    A label without a scheduler part comes back unchanged with None; known parts come back in
    their canonical spelling ("dpm++ 2m karras" -> ("DPM++ 2M", "Karras")).
    """
    text = " ".join(label.split())
    folded = text.casefold()
    if folded in _SAMPLER_BY_FOLDED or folded in SDCPP_SAMPLERS:
        return _SAMPLER_BY_FOLDED.get(folded, text), None
    for scheduler in _SCHEDULER_SUFFIXES:
        suffix = " " + scheduler.casefold()
        if folded.endswith(suffix) and len(folded) > len(suffix):
            sampler = text[: -len(suffix)].strip()
            return _SAMPLER_BY_FOLDED.get(sampler.casefold(), sampler), scheduler
    return text, None


def _valid_names(labels: dict[str, str], names: tuple[str, ...]) -> str:
    return f"{', '.join(labels)} (or sd.cpp names: {', '.join(names)})"


def to_sdcpp_sampler(name: str) -> str:
    """The sd.cpp sample method for a WebUI label or an sd.cpp name; BadRequest otherwise."""
    text = " ".join(name.split())
    folded = text.casefold()
    if folded in _SAMPLER_BY_FOLDED:
        return SAMPLER_LABELS[_SAMPLER_BY_FOLDED[folded]]
    if folded in SDCPP_SAMPLERS:
        return folded
    sampler, scheduler = split_legacy_label(text)
    if scheduler is not None and sampler.casefold() in _SAMPLER_BY_FOLDED:
        raise BadRequest(
            f"sampler {name!r} combines a sampler and a scheduler; "
            f"choose sampler {sampler!r} with scheduler {scheduler!r}"
        )
    raise BadRequest(
        f"unknown sampler {name!r}; valid samplers: {_valid_names(SAMPLER_LABELS, SDCPP_SAMPLERS)}"
    )


def to_sdcpp_scheduler(name: str) -> str:
    """The sd.cpp scheduler for a WebUI label or an sd.cpp name; BadRequest for anything else."""
    folded = " ".join(name.split()).casefold()
    if folded in _SCHEDULER_BY_FOLDED:
        return SCHEDULER_LABELS[_SCHEDULER_BY_FOLDED[folded]]
    if folded in SDCPP_SCHEDULERS:
        return folded
    raise BadRequest(
        f"unknown scheduler {name!r}; valid schedulers: "
        f"{_valid_names(SCHEDULER_LABELS, SDCPP_SCHEDULERS)}"
    )


def resolve_sampling(sampler: str | None, scheduler: str | None) -> tuple[str | None, str | None]:
    """Map a (sampler, scheduler) pair to sd.cpp names, splitting a legacy combined sampler label.

    None stays None (sd-server's own default). A combined label ("DPM++ 2M Karras") supplies the
    scheduler unless one is given too; two different schedulers are refused.
    """
    sdcpp_scheduler = to_sdcpp_scheduler(scheduler) if scheduler is not None else None
    if sampler is None:
        return None, sdcpp_scheduler
    sampler_part, scheduler_part = split_legacy_label(sampler)
    if scheduler_part is None or sampler_part.casefold() not in _SAMPLER_BY_FOLDED:
        return to_sdcpp_sampler(sampler), sdcpp_scheduler
    implied = to_sdcpp_scheduler(scheduler_part)
    if sdcpp_scheduler is not None and sdcpp_scheduler != implied:
        raise BadRequest(
            f"sampler {sampler!r} implies scheduler {scheduler_part!r} but scheduler "
            f"{scheduler!r} was given; choose sampler {sampler_part!r} and one scheduler"
        )
    return to_sdcpp_sampler(sampler_part), implied


def sampler_label(sdcpp_name: str) -> str:
    """The WebUI label for an sd.cpp sample method, or the name itself when it has no label."""
    for label, name in SAMPLER_LABELS.items():
        if name == sdcpp_name:
            return label
    return sdcpp_name


def scheduler_label(sdcpp_name: str) -> str:
    """The WebUI label for an sd.cpp scheduler, or the name itself when it has no label."""
    for label, name in SCHEDULER_LABELS.items():
        if name == sdcpp_name:
            return label
    return sdcpp_name
