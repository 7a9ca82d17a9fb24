"""The PNG `parameters` text: build it in A1111's form, parse A1111's and sd.cpp's forms back.

A1111 form (model-families.md): the prompt (with `<lora:stem:weight>` tags), an optional
`Negative prompt:` part, then one line of `Key: value` pairs, values quoted (JSON) when they hold
a comma, colon, newline or quote. sd.cpp writes the same outline with its own names
(`Sampler: euler_a karras`, `CFG scale: 7.000000`) and ends with `SDCPP: {json}`, unquoted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tsr import __version__
from tsr.samplers import sampler_label, scheduler_label, split_legacy_label
from tsr.schemas.images import ImageParams, LoraUse, ParsedParameters

NEGATIVE = "Negative prompt:"
# quantifiers are bounded so that a hostile text (a PNG can carry megabytes) parses in linear time
_PAIR = re.compile(r'\s*(\w[\w \-/+.()]{0,63}?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_KEY = re.compile(r"^\w[\w \-/]*$")
_LORA_TAG = re.compile(r"<lora:([^<>]+)>")
#: the ": <hash>" ending each "name: hash" item of `Lora hashes` (names may hold commas)
_LORA_HASH_END = re.compile(r":\s*([0-9a-fA-F]{1,64})\s*(?:,|$)")
#: a real parameters line is a few hundred characters; longer lines are never parsed as one
_MAX_LINE = 65_536
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_SDCPP_TAIL = ", SDCPP: "
_MODEL_SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".sft", ".bin")
#: keys build_parameters writes itself; an `extra` entry never overrides them
KNOWN_KEYS = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Clip skip",
        "Lora hashes",
        "Version",
    }
)


def format_number(value: float | int) -> str:
    """A number as A1111 writes it: 7 not 7.0, 0.8 not 0.800000."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def quote(value: str) -> str:
    """A value as it goes into the `Key: value` line: JSON-quoted when it would break the line."""
    if not value or value != value.strip() or any(mark in value for mark in ',:\n"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def lora_tag(lora: LoraUse) -> str:
    """The `<lora:stem:weight>` tag for a LoRA."""
    return f"<lora:{lora.name}:{format_number(1.0 if lora.weight is None else lora.weight)}>"


def prompt_with_loras(prompt: str, loras: list[LoraUse]) -> str:
    """The prompt with a tag appended for each LoRA it does not already name."""
    tags = [lora_tag(lora) for lora in loras if f"<lora:{lora.name}:" not in prompt]
    if not tags:
        return prompt
    return " ".join([prompt, *tags]) if prompt else " ".join(tags)


def _scalar_extras(extra: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in extra.items():
        if key in KNOWN_KEYS or not _KEY.match(key) or key.endswith(" "):
            continue
        if isinstance(value, bool):
            pairs.append((key, str(value)))
        elif isinstance(value, int | float):
            pairs.append((key, format_number(value)))
        elif isinstance(value, str):
            pairs.append((key, value))
    return pairs


def build_parameters(params: ImageParams, *, version: str = __version__) -> str:
    """The A1111 `parameters` text for an image made with `params`."""
    pairs: list[tuple[str, str]] = []
    if params.steps is not None:
        pairs.append(("Steps", str(params.steps)))
    if params.sampler:
        pairs.append(("Sampler", params.sampler))
    if params.scheduler:
        pairs.append(("Schedule type", params.scheduler))
    if params.cfg is not None:
        pairs.append(("CFG scale", format_number(params.cfg)))
    if params.seed is not None:
        pairs.append(("Seed", str(params.seed)))
    if params.width and params.height:
        pairs.append(("Size", f"{params.width}x{params.height}"))
    if params.checkpoint_sha256:
        pairs.append(("Model hash", params.checkpoint_sha256[:10]))
    if params.checkpoint:
        pairs.append(("Model", params.checkpoint))
    if params.clip_skip is not None:
        pairs.append(("Clip skip", str(params.clip_skip)))
    hashes = [f"{lora.name}: {lora.sha256[:12]}" for lora in params.loras if lora.sha256]
    if hashes:
        pairs.append(("Lora hashes", ", ".join(hashes)))
    pairs.extend(_scalar_extras(params.extra))
    pairs.append(("Version", f"tsr {version}"))
    lines = [prompt_with_loras(params.prompt, params.loras)]
    if params.negative:
        lines.append(f"{NEGATIVE} {params.negative}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in pairs))
    return "\n".join(lines)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        try:
            return str(json.loads(value))
        except ValueError:
            return value
    return value


def _pairs(line: str) -> dict[str, str]:
    """The `Key: value` pairs of a parameters line, unquoted; sd.cpp's JSON tail kept whole."""
    tail: str | None = None
    if line.startswith("SDCPP: "):
        line, tail = "", line[len("SDCPP: ") :]
    elif _SDCPP_TAIL in line:
        line, tail = line.split(_SDCPP_TAIL, 1)
    pairs: dict[str, str] = {}
    if len(line) > _MAX_LINE:
        return pairs
    for match in _PAIR.finditer(line):
        pairs.setdefault(match.group(1).strip(), _unquote(match.group(2)))
    if tail is not None:
        pairs["SDCPP"] = tail
    return pairs


def _split_prompt(body: str) -> tuple[str, str]:
    if body.startswith(NEGATIVE):
        prompt, negative = "", body[len(NEGATIVE) :]
    else:
        at = body.find("\n" + NEGATIVE)
        if at < 0:
            return body, ""
        prompt, negative = body[:at], body[at + 1 + len(NEGATIVE) :]
    return prompt, negative.removeprefix(" ")


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value.strip()) if value is not None else None
    except ValueError:
        return None


def _stem(name: str) -> str:
    for suffix in _MODEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _strip_trailing_tags(prompt: str) -> str:
    """The prompt without the ` <lora:...>` tags build_parameters appended (each after a space)."""
    end = len(prompt)
    while end and prompt[end - 1] == ">":
        start = prompt.rfind("<lora:", 0, end)
        body = prompt[start + len("<lora:") : end - 1]
        if start < 0 or not body or "<" in body or ">" in body:
            break
        if start == 0:
            return ""
        if prompt[start - 1] != " ":
            break
        end = start - 1
    return prompt[:end]


def _loras_from_prompt(prompt: str) -> tuple[str, list[LoraUse]]:
    loras: list[LoraUse] = []
    for match in _LORA_TAG.finditer(prompt):
        name, _, weight = match.group(1).rpartition(":")
        if not name:
            name, weight = weight, "1"
        if name not in [lora.name for lora in loras]:
            loras.append(LoraUse(name=name, weight=_float(weight)))
    return (_strip_trailing_tags(prompt) if loras else prompt), loras


def _lora_hashes(text: str, loras: list[LoraUse]) -> None:
    # each name runs from the end of the previous item to its own ": <hex>" ending
    start = 0
    for match in _LORA_HASH_END.finditer(text):
        name, digest = text[start : match.start()].strip(), match.group(1).lower()
        start = match.end()
        if not name:
            continue
        for lora in loras:
            if lora.name == name:
                lora.sha256 = digest
                break
        else:
            loras.append(LoraUse(name=name, weight=None, sha256=digest))


def _apply_sdcpp(parsed: ParsedParameters, raw: str) -> None:
    """Take sampler, scheduler, LoRAs and clip skip from sd.cpp's SDCPP JSON (its exact values)."""
    try:
        data = json.loads(raw)
    except ValueError:
        parsed.extra["SDCPP"] = raw
        return
    parsed.extra["SDCPP"] = data
    if not isinstance(data, dict):
        return
    sampling = data.get("sampling")
    if not isinstance(sampling, dict):
        sampling = {}
    method, scheduler = sampling.get("method"), sampling.get("scheduler")
    if isinstance(method, str) and method:
        parsed.sampler = sampler_label(method)
    if isinstance(scheduler, str) and scheduler:
        parsed.scheduler = scheduler_label(scheduler)
    clip_skip = data.get("clip_skip")
    if isinstance(clip_skip, int) and clip_skip > 0:
        parsed.clip_skip = clip_skip
    for item in data.get("loras") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            name = _stem(item["name"].rsplit("/", 1)[-1])
            weight = item.get("multiplier")
            weight = round(float(weight), 6) if isinstance(weight, int | float) else None
            if name not in [lora.name for lora in parsed.loras]:
                parsed.loras.append(LoraUse(name=name, weight=weight))


def _apply_sampler(parsed: ParsedParameters, value: str) -> None:
    if parsed.source == "sdcpp":
        # sd.cpp writes "<method> <scheduler>", or NONE when the server's default was used
        method, _, scheduler = value.partition(" ")
        if method and method != "NONE":
            parsed.sampler = sampler_label(method)
        if scheduler:
            parsed.scheduler = scheduler_label(scheduler)
        return
    label, implied_scheduler = split_legacy_label(value)
    parsed.sampler = label
    if implied_scheduler is not None and parsed.scheduler is None:
        parsed.scheduler = implied_scheduler


def _apply_pairs(parsed: ParsedParameters, pairs: dict[str, str]) -> None:
    parsed.steps = _int(pairs.pop("Steps", None))
    parsed.cfg = _float(pairs.pop("CFG scale", None))
    parsed.seed = _int(pairs.pop("Seed", None))
    parsed.clip_skip = _int(pairs.pop("Clip skip", None))
    parsed.version = pairs.pop("Version", None)
    scheduler = pairs.pop("Schedule type", None)
    if scheduler:
        parsed.scheduler = scheduler_label(scheduler) if parsed.source == "sdcpp" else scheduler
    sampler = pairs.pop("Sampler", None)
    if sampler:
        _apply_sampler(parsed, sampler)
    width, _, height = (pairs.pop("Size", None) or "").partition("x")
    parsed.width, parsed.height = _int(width), _int(height)
    model_hash = (pairs.pop("Model hash", None) or "").strip()
    if model_hash and _HEX.match(model_hash):
        parsed.checkpoint_hash = model_hash[:10].lower()
    model = pairs.pop("Model", None)
    if model:
        parsed.checkpoint = _stem(model) if parsed.source == "sdcpp" else model
    hashes = pairs.pop("Lora hashes", None)
    if hashes:
        _lora_hashes(hashes, parsed.loras)
    sdcpp = pairs.pop("SDCPP", None)
    if sdcpp is not None:
        _apply_sdcpp(parsed, sdcpp)
    parsed.extra.update(pairs)


def _is_parameters_line(line: str) -> bool:
    pairs = _pairs(line)
    # tsr always ends its line with its Version, however few other values it has
    tsr_line = pairs.get("Version", "").startswith("tsr ")
    return line.startswith("Steps: ") or len(pairs) >= 3 or tsr_line


def parse_parameters(text: str) -> ParsedParameters:
    """Read an A1111 (or tsr) or sd.cpp `parameters` text into fields."""
    text = text.rstrip("\n")
    body, _, last = text.rpartition("\n")
    if not _is_parameters_line(last):
        body, last = text, ""
    prompt, negative = _split_prompt(body)
    prompt, loras = _loras_from_prompt(prompt)
    parsed = ParsedParameters(prompt=prompt, negative=negative, loras=loras, source="a1111")
    pairs = _pairs(last) if last else {}
    version = pairs.get("Version", "")
    if "SDCPP" in pairs or version.startswith("stable-diffusion.cpp"):
        parsed.source = "sdcpp"
    elif version.startswith("tsr"):
        parsed.source = "tsr"
    _apply_pairs(parsed, pairs)
    return parsed
