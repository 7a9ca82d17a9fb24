"""Tell a model file's kind, architecture and family from its tensor names, shapes and metadata.

The rules are model-families.md's "Telling families and kinds apart"; each answer comes with a
short sentence naming the signal that decided it, so the UI can show why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from tsr.families import all_families, families_with_architecture, family_for_base_model

Kind = Literal["checkpoint", "lora", "vae", "embedding", "unknown"]
Architecture = Literal["sd1", "sd2", "sdxl", "flux", "sd3"]

ARCHITECTURE_LABELS: dict[str, str] = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x",
    "sdxl": "SDXL",
    "flux": "Flux",
    "sd3": "SD3",
}
DIFFUSION_PREFIX = "model.diffusion_model."
_LORA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
_LORA_MARKERS = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".hada_", ".lokr_")
_LORA_DOWN_MARKERS = (".lora_down.", ".lora_A.", ".hada_w1_b", ".hada_w2_b")
# post_quant_conv is in every SD VAE, beside the quant_conv* the notes name
_VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv", "post_quant_conv")
_DIFFUSION_STARTS = (
    "double_blocks.",
    "single_blocks.",
    "joint_blocks.",
    "input_blocks.",
    "middle_block.",
    "output_blocks.",
    "time_embed.",
    "down_blocks.",
    "time_embedding.",
    "single_transformer_blocks.",
)
#: width of the text conditioning a cross-attention layer reads, per architecture
_CROSS_ATTENTION_WIDTHS: dict[int, Architecture] = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
#: text-encoder hidden widths: CLIP ViT-L (SD1, SDXL's first), OpenCLIP ViT-H (SD2), bigG (SDXL)
_TEXT_ENCODER_WIDTHS: dict[int, Architecture] = {768: "sd1", 1024: "sd2", 1280: "sdxl"}

#: key prefixes that settle a checkpoint's architecture, checked in this order
_CHECKPOINT_MARKERS: tuple[tuple[str, Architecture], ...] = (
    ("conditioner.embedders.1.", "sdxl"),
    ("conditioner.embedders.0.", "sdxl"),  # the SDXL refiner has only the second encoder
    ("cond_stage_model.model.", "sd2"),
    ("cond_stage_model.transformer.", "sd1"),
    (DIFFUSION_PREFIX + "label_emb.", "sdxl"),  # a UNet-only SDXL file
)


class Decision(NamedTuple):
    """An answer and the sentence saying which signal gave it (both None when nothing did)."""

    value: str | None
    signal: str | None


def detect_kind(names: Sequence[str]) -> Kind:
    """checkpoint, lora, vae or embedding from tensor names alone; unknown otherwise."""
    if not names:
        return "unknown"
    if any(n.startswith(_LORA_PREFIXES) or any(m in n for m in _LORA_MARKERS) for n in names):
        return "lora"
    if (
        "emb_params" in names
        or any(n.startswith("string_to_param") for n in names)
        or set(names) <= {"clip_l", "clip_g"}
    ):
        return "embedding"
    if any(DIFFUSION_PREFIX in n or n.startswith(_DIFFUSION_STARTS) for n in names):
        return "checkpoint"
    if all(n.startswith(_VAE_PREFIXES) for n in names):
        return "vae"
    return "unknown"


def _labelled(architecture: Architecture, where: str) -> Decision:
    return Decision(architecture, f"{where} ({ARCHITECTURE_LABELS[architecture]})")


def detect_architecture(
    kind: Kind, shapes: Mapping[str, Sequence[int]], metadata: Mapping[str, Any]
) -> Decision:
    """The architecture (sd1, sd2, sdxl, flux, sd3) from tensor names and shapes, then metadata."""
    names = list(shapes)
    found = Decision(None, None)
    if kind == "checkpoint":
        found = _checkpoint_architecture(names, shapes)
    elif kind == "lora":
        found = _lora_architecture(names, shapes)
    elif kind == "embedding":
        found = _embedding_architecture(shapes)
    return found if found.value else _metadata_architecture(metadata)


def _checkpoint_architecture(names: list[str], shapes: Mapping[str, Sequence[int]]) -> Decision:
    stripped = [n.removeprefix(DIFFUSION_PREFIX) for n in names]
    if any(n.startswith(("double_blocks.", "single_blocks.")) for n in stripped):
        return _labelled("flux", "header keys double_blocks/single_blocks")
    if any(n.startswith("single_transformer_blocks.") for n in stripped):
        return _labelled("flux", "header keys single_transformer_blocks")
    if any(n.startswith("joint_blocks.") for n in stripped):
        return _labelled("sd3", "header keys joint_blocks")
    for marker, architecture in _CHECKPOINT_MARKERS:
        if any(n.startswith(marker) for n in names):
            return _labelled(architecture, f"header keys {marker.rstrip('.')}")
    for name in names:
        if name.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
            width = _last(shapes[name])
            if width in _CROSS_ATTENTION_WIDTHS:
                return _labelled(_CROSS_ATTENTION_WIDTHS[width], f"cross-attention width {width}")
    return Decision(None, None)


def _lora_architecture(names: list[str], shapes: Mapping[str, Sequence[int]]) -> Decision:
    if any("double_blocks" in n or "single_blocks" in n for n in names):
        return _labelled("flux", "LoRA keys double_blocks/single_blocks")
    if any("single_transformer_blocks" in n for n in names):
        return _labelled("flux", "LoRA keys single_transformer_blocks")
    if any("joint_blocks" in n for n in names):
        return _labelled("sd3", "LoRA keys joint_blocks")
    if any(n.startswith(("lora_te2_", "lora_te1_")) for n in names):
        return _labelled("sdxl", "LoRA keys lora_te1_/lora_te2_")
    downs = [n for n in names if any(marker in n for marker in _LORA_DOWN_MARKERS)]
    for name in downs:
        if "attn2" in name and ("to_k" in name or "to_v" in name):
            width = _last(shapes[name])
            if width in _CROSS_ATTENTION_WIDTHS:
                architecture = _CROSS_ATTENTION_WIDTHS[width]
                return _labelled(architecture, f"LoRA cross-attention width {width}")
    widths = {_last(shapes[n]) for n in downs if n.startswith(("lora_te", "text_encoder"))}
    for width in (1280, 1024, 768):  # widest first: SDXL's second encoder outranks its first
        if width in widths:
            return _labelled(_TEXT_ENCODER_WIDTHS[width], f"LoRA text-encoder width {width}")
    return Decision(None, None)


def _embedding_architecture(shapes: Mapping[str, Sequence[int]]) -> Decision:
    if "clip_g" in shapes:
        return _labelled("sdxl", "embedding keys clip_g")
    for name, shape in shapes.items():
        if name == "emb_params" or name.startswith("string_to_param"):
            width = _last(shape)
            if width in (768, 1024):
                return _labelled(_TEXT_ENCODER_WIDTHS[width], f"embedding width {width}")
    return Decision(None, None)


def _last(shape: Sequence[int]) -> int | None:
    return shape[-1] if shape else None


def architecture_from_id(text: str) -> Architecture | None:
    """Architecture named by a modelspec.architecture or ss_base_model_version value."""
    lowered = text.casefold()
    if "flux" in lowered:
        return "flux"
    if lowered.startswith(("stable-diffusion-xl", "sdxl")):
        return "sdxl"
    if lowered.startswith(("stable-diffusion-3", "stable-diffusion-v3", "sd3")):
        return "sd3"
    if lowered.startswith(("stable-diffusion-v2", "sd_v2", "sd2")):
        return "sd2"
    if lowered.startswith(("stable-diffusion-v1", "sd_v1", "sd1")):
        return "sd1"
    return None


def _metadata_architecture(metadata: Mapping[str, Any]) -> Decision:
    for key, where in (
        ("modelspec.architecture", "modelspec.architecture"),
        ("ss_base_model_version", "kohya ss_base_model_version"),
    ):
        value = metadata.get(key)
        if isinstance(value, str) and (architecture := architecture_from_id(value)):
            return _labelled(architecture, f"{where} {_quoted(value)}")
    if str(metadata.get("ss_v2", "")).casefold() == "true":
        return _labelled("sd2", "kohya ss_v2 'True'")
    return Decision(None, None)


def _quoted(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


# free-text keywords, most specific first; sdxl alone never outranks a later, specific signal
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pony", re.compile(r"pony")),
    ("illustrious", re.compile(r"illustrious|noob")),
    ("flux", re.compile(r"flux")),
    ("sd15", re.compile(r"sd[-_ ]?v?1[-_. ]?5|v1[-_.]5")),
    ("sdxl", re.compile(r"sdxl|(?<![a-z])xl|xl(?![a-z])")),
)


def family_in_text(text: str) -> tuple[str, str] | None:
    """The family a name or title points at, with the keyword found: ('pony', 'pony')."""
    lowered = text.casefold()
    for family, pattern in _KEYWORDS:
        if match := pattern.search(lowered):
            return family, match.group(0)
    return None


def _family_for_architecture(architecture: str) -> str | None:
    names = families_with_architecture(architecture)
    # sdxl, pony and illustrious share one architecture: the plain one is named after it
    return architecture if architecture in names else (names[0] if names else None)


def _candidates(metadata: Mapping[str, Any], file_name: str) -> Iterable[tuple[str, str]]:
    """(family, signal) pairs from the header side, in the order model-families.md gives."""
    for key, where in (
        ("modelspec.title", "modelspec.title"),
        ("modelspec.architecture", "modelspec.architecture"),
        ("ss_base_model_version", "kohya ss_base_model_version"),
        ("ss_sd_model_name", "kohya ss_sd_model_name"),
    ):
        value = metadata.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        signal = f"{where} {_quoted(value)}"
        found = family_in_text(value)
        if found:
            yield found[0], signal
        elif key in ("modelspec.architecture", "ss_base_model_version"):
            architecture = architecture_from_id(value)
            family = _family_for_architecture(architecture) if architecture else None
            if family:
                yield family, signal
    found = family_in_text(file_name)
    if found:
        yield found[0], f"file name contains {found[1]!r}"


def detect_family(
    *,
    architecture: str | None,
    architecture_signal: str | None,
    metadata: Mapping[str, Any],
    file_name: str,
    civitai_base_model: str | None = None,
    override: str | None = None,
) -> Decision:
    """The family (sd15, sdxl, pony, illustrious, flux...) and the signal that decided it.

    Order: a user override, CivitAI's baseModel, modelspec.title/architecture, kohya
    ss_base_model_version and ss_sd_model_name, file-name keywords, then the architecture.
    A header-side signal must fit the architecture the tensors show (so an architecture only
    one family has, sd1 or flux, decides alone); plain "sdxl" from one signal gives way to
    pony or illustrious from a later one.
    """
    families = all_families()
    if override and override in families:
        return Decision(override, "set by the user")
    if civitai_base_model and (family := family_for_base_model(civitai_base_model)):
        return Decision(family, f"CivitAI baseModel {_quoted(civitai_base_model)}")
    if architecture and len(families_with_architecture(architecture)) == 1:
        # the tensors leave one family possible: no name or title can change it, so the
        # tensors are what decided
        family = families_with_architecture(architecture)[0]
        label = ARCHITECTURE_LABELS.get(architecture, architecture)
        return Decision(family, architecture_signal or f"architecture {label}")
    plain: Decision | None = None
    for family, signal in _candidates(metadata, file_name):
        if family not in families:
            continue
        if architecture and families[family].architecture != architecture:
            continue
        if families_with_architecture(families[family].architecture) != [family] and (
            family == families[family].architecture
        ):
            plain = plain or Decision(family, signal)
            continue
        return Decision(family, signal)
    if plain:
        return plain
    if architecture:
        family = _family_for_architecture(architecture)
        label = ARCHITECTURE_LABELS.get(architecture, architecture)
        if family:
            return Decision(family, architecture_signal or f"architecture {label}")
        return Decision(
            None, f"{architecture_signal or 'architecture ' + label}; tsr has no {label} family"
        )
    return Decision(None, None)
