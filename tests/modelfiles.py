"""Builders of real, tiny model files for tests: realistic key names, plausible counts, KBs in size.

Safetensors files are written by the `safetensors` library itself; GGUF files byte by byte with
`struct` as llama.cpp's writer lays them out; `.ckpt` as PyTorch's zip layout. Every builder takes
the destination path (parents are created) and returns it.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

Shapes = dict[str, tuple[int, ...]]

#: a kohya dataset: two folders captioned with overlapping tags (leading spaces as kohya keeps)
DEFAULT_TAG_FREQUENCY: dict[str, dict[str, int]] = {
    "10_mychar": {"mychar": 40, "1girl": 38, " solo": 30, "smile": 12, "long hair": 9},
    "5_mychar outfit": {"mychar": 10, "1girl": 10, "red dress": 12, " solo": 4},
}
PONY_MODELSPEC = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-xl-v1-base",
    "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
    "modelspec.title": "Pony Diffusion V6 XL",
}


def _save(
    path: Path, shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.zeros(shape, dtype=np.float16) for name, shape in shapes.items()}
    save_file(tensors, str(path), metadata=dict(metadata) if metadata else None)
    return path


def _add(shapes: Shapes, prefix: str, names: Iterable[str], shape: tuple[int, ...] = (1,)) -> None:
    for name in names:
        shapes[prefix + name] = shape


def _wb(*modules: str) -> list[str]:
    return [f"{m}.{p}" for m in modules for p in ("weight", "bias")]


# --- key layouts of the real models (names as the original checkpoints spell them) ---------


def _clip_text_model(shapes: Shapes, prefix: str, layers: int) -> None:
    """OpenAI CLIP in transformers naming (SD1's and SDXL's first text encoder)."""
    _add(
        shapes,
        prefix,
        ["embeddings.position_embedding.weight", "embeddings.token_embedding.weight"],
    )
    for i in range(layers):
        layer = f"encoder.layers.{i}."
        modules = ["layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"]
        modules += [f"self_attn.{p}_proj" for p in ("q", "k", "v", "out")]
        _add(shapes, prefix + layer, _wb(*modules))
    _add(shapes, prefix, _wb("final_layer_norm"))


def _open_clip(shapes: Shapes, prefix: str, layers: int) -> None:
    """OpenCLIP in its own naming (SD2's text encoder, SDXL's second)."""
    _add(shapes, prefix, ["positional_embedding", "token_embedding.weight", "text_projection"])
    _add(shapes, prefix, ["logit_scale", *_wb("ln_final")])
    for i in range(layers):
        block = f"transformer.resblocks.{i}."
        names = ["attn.in_proj_weight", "attn.in_proj_bias"]
        names += _wb("attn.out_proj", "ln_1", "ln_2", "mlp.c_fc", "mlp.c_proj")
        _add(shapes, prefix + block, names)


def _resnet(shapes: Shapes, prefix: str, skip: bool) -> None:
    names = _wb("in_layers.0", "in_layers.2", "emb_layers.1", "out_layers.0", "out_layers.3")
    _add(shapes, prefix, names + (_wb("skip_connection") if skip else []))


def _transformer(shapes: Shapes, prefix: str, depth: int, context_width: int) -> None:
    _add(shapes, prefix, _wb("norm", "proj_in", "proj_out"))
    for i in range(depth):
        block = f"{prefix}transformer_blocks.{i}."
        for attn in ("attn1", "attn2"):
            _add(shapes, f"{block}{attn}.", ["to_q.weight", *_wb("to_out.0")])
            # only the first block gets the real width: it is what detection reads, and it
            # keeps the files small
            width = context_width if attn == "attn2" and i == 0 else 1
            _add(shapes, f"{block}{attn}.", ["to_k.weight", "to_v.weight"], (1, width))
        _add(shapes, block, _wb("ff.net.0.proj", "ff.net.2", "norm1", "norm2", "norm3"))


def _unet(shapes: Shapes, depths: Sequence[int], context_width: int, label_emb: bool) -> None:
    """An LDM UNet (SD1/SD2/SDXL) under model.diffusion_model.; depths per resolution level."""
    prefix = "model.diffusion_model."
    _add(shapes, prefix, _wb("time_embed.0", "time_embed.2", "input_blocks.0.0", "out.0", "out.2"))
    if label_emb:
        _add(shapes, prefix, _wb("label_emb.0.0", "label_emb.0.2"))
    index = 1
    for level, depth in enumerate(depths):
        for block in range(2):
            _resnet(shapes, f"{prefix}input_blocks.{index}.0.", skip=level > 0 and block == 0)
            if depth:
                _transformer(shapes, f"{prefix}input_blocks.{index}.1.", depth, context_width)
            index += 1
        if level < len(depths) - 1:
            _add(shapes, f"{prefix}input_blocks.{index}.0.", _wb("op"))
            index += 1
    _resnet(shapes, f"{prefix}middle_block.0.", skip=False)
    _transformer(shapes, f"{prefix}middle_block.1.", max(depths), context_width)
    _resnet(shapes, f"{prefix}middle_block.2.", skip=False)
    index = 0
    for level, depth in enumerate(reversed(depths)):
        for block in range(3):
            _resnet(shapes, f"{prefix}output_blocks.{index}.0.", skip=True)
            if depth:
                _transformer(shapes, f"{prefix}output_blocks.{index}.1.", depth, context_width)
            if block == 2 and level < len(depths) - 1:
                _add(shapes, f"{prefix}output_blocks.{index}.{2 if depth else 1}.", _wb("conv"))
            index += 1


def _vae(shapes: Shapes, prefix: str) -> None:
    """The SD/SDXL autoencoder: encoder, decoder, quant_conv, post_quant_conv."""
    for side, levels, blocks in (("encoder", 4, 2), ("decoder", 4, 3)):
        base = f"{prefix}{side}."
        _add(shapes, base, _wb("conv_in", "conv_out", "norm_out"))
        for part in ("block_1", "block_2"):
            _add(shapes, f"{base}mid.{part}.", _wb("norm1", "conv1", "norm2", "conv2"))
        _add(shapes, f"{base}mid.attn_1.", _wb("norm", "q", "k", "v", "proj_out"))
        group = "down" if side == "encoder" else "up"
        for level in range(levels):
            for block in range(blocks):
                names = _wb("norm1", "conv1", "norm2", "conv2")
                if level in (1, 2) and block == 0:
                    names += _wb("nin_shortcut")
                _add(shapes, f"{base}{group}.{level}.block.{block}.", names)
            if level < levels - 1 or side == "decoder":
                sample = "downsample" if side == "encoder" else "upsample"
                _add(shapes, f"{base}{group}.{level}.{sample}.", _wb("conv"))
    _add(shapes, prefix, _wb("quant_conv", "post_quant_conv"))


def _flux_transformer(shapes: Shapes, prefix: str) -> None:
    """Flux.1 (dev/schnell) in Black Forest Labs' naming: 19 double and 38 single blocks."""
    _add(shapes, prefix, _wb("img_in", "txt_in", "final_layer.linear"))
    _add(shapes, prefix, _wb("final_layer.adaLN_modulation.1"))
    for embedder in ("time_in", "vector_in", "guidance_in"):
        _add(shapes, prefix, _wb(f"{embedder}.in_layer", f"{embedder}.out_layer"))
    for i in range(19):
        for stream in ("img", "txt"):
            base = f"{prefix}double_blocks.{i}.{stream}_"
            _add(shapes, base, ["attn.norm.key_norm.scale", "attn.norm.query_norm.scale"])
            _add(shapes, base, _wb("attn.proj", "attn.qkv", "mlp.0", "mlp.2", "mod.lin"))
    for i in range(38):
        base = f"{prefix}single_blocks.{i}."
        _add(shapes, base, ["norm.key_norm.scale", "norm.query_norm.scale"])
        _add(shapes, base, _wb("linear1", "linear2", "modulation.lin"))


# --- checkpoints -------------------------------------------------------------------------------


def write_sd15_checkpoint(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """An SD 1.5 checkpoint: CLIP-L text encoder, 768-wide UNet and VAE (~1,130 tensors)."""
    shapes: Shapes = {}
    _clip_text_model(shapes, "cond_stage_model.transformer.text_model.", 12)
    _unet(shapes, (1, 1, 1, 0), context_width=768, label_emb=False)
    _vae(shapes, "first_stage_model.")
    return _save(path, shapes, metadata)


def write_sd2_checkpoint(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """An SD 2.x checkpoint: OpenCLIP ViT-H text encoder (cond_stage_model.model.*)."""
    shapes: Shapes = {}
    _open_clip(shapes, "cond_stage_model.model.", 23)
    _unet(shapes, (1, 1, 1, 0), context_width=1024, label_emb=False)
    _vae(shapes, "first_stage_model.")
    return _save(path, shapes, metadata)


def write_sdxl_checkpoint(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """An SDXL base checkpoint: two text encoders under conditioner.embedders (~2,500 tensors)."""
    shapes: Shapes = {}
    _clip_text_model(shapes, "conditioner.embedders.0.transformer.text_model.", 12)
    _open_clip(shapes, "conditioner.embedders.1.model.", 32)
    _unet(shapes, (0, 2, 10), context_width=2048, label_emb=True)
    _vae(shapes, "first_stage_model.")
    return _save(path, shapes, metadata)


def write_pony_checkpoint(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """A Pony Diffusion V6 XL checkpoint: SDXL keys plus its modelspec title."""
    return write_sdxl_checkpoint(path, metadata=PONY_MODELSPEC if metadata is None else metadata)


def write_flux_checkpoint(
    path: Path, *, prefixed: bool = False, metadata: Mapping[str, str] | None = None
) -> Path:
    """A Flux.1 diffusion model (780 tensors), bare or under model.diffusion_model."""
    shapes: Shapes = {}
    _flux_transformer(shapes, "model.diffusion_model." if prefixed else "")
    return _save(path, shapes, metadata)


def write_sd3_checkpoint(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """An SD3 MMDiT (joint_blocks) under model.diffusion_model."""
    shapes: Shapes = {}
    prefix = "model.diffusion_model."
    _add(shapes, prefix, _wb("x_embedder.proj", "context_embedder", "final_layer.linear"))
    for i in range(24):
        for part in ("context_block", "x_block"):
            base = f"{prefix}joint_blocks.{i}.{part}."
            _add(shapes, base, _wb("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"))
    return _save(path, shapes, metadata)


def write_vae(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """A standalone SD/SDXL VAE (encoder.*, decoder.*, quant_conv, post_quant_conv)."""
    shapes: Shapes = {}
    _vae(shapes, "")
    return _save(path, shapes, metadata)


def write_embedding(path: Path, *, architecture: str = "sd1", vectors: int = 2) -> Path:
    """A textual-inversion embedding: emb_params (SD1 768 / SD2 1024) or clip_l + clip_g (SDXL)."""
    if architecture == "sdxl":
        shapes: Shapes = {"clip_l": (vectors, 768), "clip_g": (vectors, 1280)}
    else:
        shapes = {"emb_params": (vectors, 1024 if architecture == "sd2" else 768)}
    return _save(path, shapes, None)


# --- LoRAs -------------------------------------------------------------------------------------


def kohya_lora_metadata(
    *,
    base_model_version: str = "sd_v1",
    sd_model_name: str = "v1-5-pruned-emaonly.safetensors",
    output_name: str = "mychar",
    network_dim: int = 16,
    network_alpha: float = 8,
    network_module: str = "networks.lora",
    clip_skip: int | None = None,
    resolution: tuple[int, int] = (512, 512),
    tag_frequency: Mapping[str, Mapping[str, int]] | None = None,
    modelspec_architecture: str | None = None,
) -> dict[str, str]:
    """The `ss_*` metadata kohya sd-scripts writes into a LoRA (every value a string)."""
    metadata = {
        "ss_base_model_version": base_model_version,
        "ss_sd_model_name": sd_model_name,
        "ss_output_name": output_name,
        "ss_network_dim": str(network_dim),
        "ss_network_alpha": str(network_alpha),
        "ss_network_module": network_module,
        "ss_clip_skip": "None" if clip_skip is None else str(clip_skip),
        "ss_resolution": str(resolution),
        "ss_learning_rate": "0.0001",
        "ss_num_epochs": "10",
        "ss_training_comment": "None",
        "ss_tag_frequency": json.dumps(
            DEFAULT_TAG_FREQUENCY if tag_frequency is None else tag_frequency
        ),
        "ss_dataset_dirs": json.dumps({"10_mychar": {"n_repeats": 10, "img_count": 40}}),
        "sshs_model_hash": "0" * 64,
    }
    if modelspec_architecture:
        metadata["modelspec.sai_model_spec"] = "1.0.0"
        metadata["modelspec.architecture"] = modelspec_architecture
        metadata["modelspec.title"] = output_name
    return metadata


def _lora_module(shapes: Shapes, module: str, width: int, algo: str = "lora") -> None:
    rank = 1
    shapes[f"{module}.alpha"] = ()
    if algo == "loha":
        _add(shapes, module, [".hada_w1_a", ".hada_w2_a"], (1, rank))
        _add(shapes, module, [".hada_w1_b", ".hada_w2_b"], (rank, width))
    elif algo == "lokr":
        _add(shapes, module, [".lokr_w1", ".lokr_w2"], (1, 1))
    else:
        shapes[f"{module}.lora_down.weight"] = (rank, width)
        shapes[f"{module}.lora_up.weight"] = (1, rank)


def _lora_text_encoder(shapes: Shapes, prefix: str, layers: int, width: int, algo: str) -> None:
    for i in range(layers):
        base = f"{prefix}text_model_encoder_layers_{i}_"
        for proj in ("q", "k", "v", "out"):
            wide = proj == "q" and i == 0
            _lora_module(shapes, f"{base}self_attn_{proj}_proj", width if wide else 1, algo)
        for fc in ("fc1", "fc2"):
            _lora_module(shapes, f"{base}mlp_{fc}", 1, algo)


def _lora_unet(shapes: Shapes, blocks: Sequence[str], context_width: int, algo: str) -> None:
    """kohya's diffusers-style UNet module names; `blocks` are `down_blocks_1_attentions_0`..."""
    for attention, depth in (item.rsplit(":", 1) for item in blocks):
        base = f"lora_unet_{attention}_"
        _lora_module(shapes, base + "proj_in", 1, algo)
        _lora_module(shapes, base + "proj_out", 1, algo)
        for i in range(int(depth)):
            block = f"{base}transformer_blocks_{i}_"
            for attn in ("attn1", "attn2"):
                for proj in ("to_q", "to_k", "to_v", "to_out_0"):
                    wide = i == 0 and attn == "attn2" and proj in ("to_k", "to_v")
                    _lora_module(
                        shapes, f"{block}{attn}_{proj}", context_width if wide else 1, algo
                    )
            _lora_module(shapes, block + "ff_net_0_proj", 1, algo)
            _lora_module(shapes, block + "ff_net_2", 1, algo)


_SD15_ATTENTIONS = [
    f"{side}_blocks_{b}_attentions_{a}:1"
    for side, levels, count in (("down", (0, 1, 2), 2), ("up", (1, 2, 3), 3))
    for b in levels
    for a in range(count)
] + ["mid_block_attentions_0:1"]
_SDXL_ATTENTIONS = (
    [f"down_blocks_1_attentions_{a}:2" for a in range(2)]
    + [f"down_blocks_2_attentions_{a}:10" for a in range(2)]
    + ["mid_block_attentions_0:10"]
    + [f"up_blocks_0_attentions_{a}:10" for a in range(3)]
    + [f"up_blocks_1_attentions_{a}:2" for a in range(3)]
)


def write_sd15_lora(
    path: Path, *, metadata: Mapping[str, str] | None = None, algo: str = "lora"
) -> Path:
    """A kohya SD 1.5 LoRA (792 tensors: lora_te_ and lora_unet_) with ss_* metadata.

    `metadata=None` writes `kohya_lora_metadata()`; pass a dict (even empty) to replace it.
    """
    shapes: Shapes = {}
    _lora_text_encoder(shapes, "lora_te_", 12, 768, algo)
    _lora_unet(shapes, _SD15_ATTENTIONS, 768, algo)
    return _save(path, shapes, kohya_lora_metadata() if metadata is None else metadata)


def write_sdxl_lora(
    path: Path,
    *,
    metadata: Mapping[str, str] | None = None,
    text_encoder: bool = True,
) -> Path:
    """A kohya SDXL LoRA: lora_te1_/lora_te2_ (unless unet-only) and 2048-wide cross-attention."""
    shapes: Shapes = {}
    if text_encoder:
        _lora_text_encoder(shapes, "lora_te1_", 12, 768, "lora")
        _lora_text_encoder(shapes, "lora_te2_", 32, 1280, "lora")
    _lora_unet(shapes, _SDXL_ATTENTIONS, 2048, "lora")
    if metadata is None:
        metadata = kohya_lora_metadata(
            base_model_version="sdxl_base_v1-0",
            sd_model_name="sd_xl_base_1.0.safetensors",
            resolution=(1024, 1024),
            modelspec_architecture="stable-diffusion-xl-v1-base/lora",
        )
    return _save(path, shapes, metadata)


def write_pony_lora(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """An SDXL LoRA trained on Pony: kohya names ponyDiffusionV6XL as its base model."""
    if metadata is None:
        metadata = kohya_lora_metadata(
            base_model_version="sdxl_base_v1-0",
            sd_model_name="ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
            clip_skip=2,
            resolution=(1024, 1024),
            modelspec_architecture="stable-diffusion-xl-v1-base/lora",
        )
    return write_sdxl_lora(path, metadata=metadata)


def write_flux_lora(path: Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """A kohya Flux.1 LoRA (lora_unet_double_blocks_*/single_blocks_*)."""
    shapes: Shapes = {}
    for i in range(19):
        for stream in ("img", "txt"):
            for module in ("attn_proj", "attn_qkv", "mlp_0", "mlp_2", "mod_lin"):
                _lora_module(shapes, f"lora_unet_double_blocks_{i}_{stream}_{module}", 1)
    for i in range(38):
        for module in ("linear1", "linear2", "modulation_lin"):
            _lora_module(shapes, f"lora_unet_single_blocks_{i}_{module}", 1)
    if metadata is None:
        metadata = kohya_lora_metadata(
            base_model_version="flux1",
            sd_model_name="flux1-dev.safetensors",
            network_module="networks.lora_flux",
            resolution=(1024, 1024),
            modelspec_architecture="flux-1-dev/lora",
        )
    return _save(path, shapes, metadata)


def write_lycoris_lora(
    path: Path, *, algo: str = "loha", metadata: Mapping[str, str] | None = None
) -> Path:
    """A LyCORIS SD 1.5 network: LoHa (hada_*) or LoKr (lokr_*) modules."""
    if metadata is None:
        metadata = kohya_lora_metadata(network_module="lycoris.kohya")
        metadata["ss_network_args"] = json.dumps({"algo": algo, "conv_dim": "4"})
    return write_sd15_lora(path, metadata=metadata, algo=algo)


# --- GGUF and pickles --------------------------------------------------------------------------

GGUF_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34)}
GGUF_TYPES |= {"Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}
_GGUF_VALUE_TYPES = {int: (5, "<i"), float: (6, "<f"), bool: (7, "<?")}


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf_value(value: object) -> bytes:
    if isinstance(value, str):
        return struct.pack("<I", 8) + _gguf_string(value)
    if isinstance(value, list):
        items = [_gguf_value(item) for item in value]
        item_type = items[0][:4] if items else struct.pack("<I", 5)
        return struct.pack("<IIQ", 9, *struct.unpack("<I", item_type), len(items)) + b"".join(
            item[4:] for item in items
        )
    type_id, fmt = _GGUF_VALUE_TYPES[type(value)]
    return struct.pack("<I", type_id) + struct.pack(fmt, value)


def gguf_bytes(
    metadata: Mapping[str, object],
    tensors: Sequence[tuple[str, tuple[int, ...], str]],
    *,
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """A GGUF file as bytes: metadata (str/int/float/bool/lists) and (name, ggml dims, type)."""
    out = [b"GGUF", struct.pack("<IQQ", version, len(tensors), len(metadata))]
    for key, value in metadata.items():
        out.append(_gguf_string(key) + _gguf_value(value))
    offset, blobs = 0, []
    for name, dims, type_name in tensors:
        type_id, block, block_bytes = GGUF_TYPES[type_name]
        elements = int(np.prod(dims))
        size = elements // block * block_bytes
        out.append(_gguf_string(name) + struct.pack(f"<I{len(dims)}Q", len(dims), *dims))
        out.append(struct.pack("<IQ", type_id, offset))
        blobs.append(bytes(size) + bytes(-size % alignment))
        offset += len(blobs[-1])
    head = b"".join(out)
    return head + bytes(-len(head) % alignment) + b"".join(blobs)


def write_gguf(
    path: Path,
    *,
    architecture: str | None = "flux",
    quant: str = "Q4_0",
    metadata: Mapping[str, object] | None = None,
    version: int = 3,
) -> Path:
    """A quantized Flux diffusion model as city96's ComfyUI-GGUF writes it (780 tensors).

    Weights are `quant`, biases and norm scales F32; `architecture=None` leaves out
    general.architecture (as stable-diffusion.cpp's converter does).
    """
    shapes: Shapes = {}
    _flux_transformer(shapes, "")
    block = GGUF_TYPES[quant][1]
    tensors = [
        (name, (block, 1), quant) if name.endswith(".weight") else (name, (1,), "F32")
        for name in shapes
    ]
    values: dict[str, object] = {"general.quantization_version": 2, "general.file_type": 2}
    if architecture:
        values = {"general.architecture": architecture, **values}
    values |= dict(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gguf_bytes(values, tensors, version=version))
    return path


class _Touch:
    """Unpickling this creates `marker`: proof that a reader ran the pickle's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def write_ckpt(path: Path, *, booby_trap: Path | None = None) -> Path:
    """A PyTorch zip checkpoint (archive/data.pkl...); with `booby_trap`, unpickling it creates
    that file, so a test can prove tsr never unpickles."""
    state: dict[str, object] = {"state_dict": {"model.diffusion_model.out.2.bias": [0.0]}}
    if booby_trap is not None:
        state["payload"] = _Touch(booby_trap)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(state, protocol=4))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", bytes(64))
    return path
