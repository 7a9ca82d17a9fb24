"""A1111's wire shapes (modules/api/models.py), as tsr accepts and answers them.

Requests keep A1111's field names and accept the fields A1111 scripts send; unknown fields are
kept (and echoed back in `parameters`) but do nothing. Fields left out take the checkpoint
family's defaults rather than A1111's fixed ones (50 steps, 512x512, Euler). Features tsr cannot
honour (hires fix, scripts, inpainting masks, infotext) are refused with a 422 naming the field,
never silently dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsr.schemas.jobs import MAX_BATCH, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE, SIZE_STEP

#: A1111 runs `n_iter` batches one after the other; tsr queues that many jobs
MAX_ITERATIONS = 32


class A1111Generation(BaseModel):
    """The fields txt2img and img2img share (StableDiffusionProcessing's API model)."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field("", validate_default=True)
    negative_prompt: str | None = None
    #: A1111 prompt styles: tsr has none, so they are ignored (and not reported as applied)
    styles: list[str] | None = None
    #: -1 (or null) = random; the real seeds come back in `info`
    seed: int | None = Field(-1, ge=-1, le=MAX_SEED)
    #: variation seeds are not supported by sd-server: ignored
    subseed: int | None = -1
    subseed_strength: float | None = 0.0
    seed_resize_from_h: int | None = -1
    seed_resize_from_w: int | None = -1
    sampler_name: str | None = None
    #: the old name of sampler_name
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH)
    n_iter: int | None = Field(None, ge=1, le=MAX_ITERATIONS)
    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    cfg_scale: float | None = Field(None, ge=0.0, le=30.0)
    width: int | None = Field(None, ge=MIN_SIZE, le=MAX_SIZE)
    height: int | None = Field(None, ge=MIN_SIZE, le=MAX_SIZE)
    #: face restoration is not part of sd-server: ignored
    restore_faces: bool | None = None
    tiling: bool | None = None
    denoising_strength: float | None = Field(None, ge=0.0, le=1.0)
    #: `sd_model_checkpoint` (a switch) and `CLIP_stop_at_last_layers` are honoured
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool | None = True
    enable_hr: bool | None = False
    script_name: str | None = None
    script_args: list[Any] | None = None
    #: False: answer without the images (they are in the gallery all the same)
    send_images: bool = True
    #: tsr files every image into its gallery whatever this says
    save_images: bool = False
    #: extensions' scripts do not exist in tsr: ignored
    alwayson_scripts: dict[str, Any] | None = None
    infotext: str | None = None
    force_task_id: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("the prompt is empty; describe the image to generate")
        return prompt

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_64(cls, size: int | None) -> int | None:
        if size is not None and size % SIZE_STEP:
            lower, upper = size // SIZE_STEP * SIZE_STEP, -(-size // SIZE_STEP) * SIZE_STEP
            raise ValueError(
                f"{size} is not a multiple of {SIZE_STEP} (sd-server would silently round it "
                f"up); use {max(lower, MIN_SIZE)} or {upper}"
            )
        return size

    @field_validator("enable_hr")
    @classmethod
    def _no_hires(cls, enabled: bool | None) -> bool | None:
        if enabled:
            raise ValueError("the hires fix is not supported by tsr; send enable_hr false")
        return enabled

    @field_validator("script_name")
    @classmethod
    def _no_script(cls, name: str | None) -> str | None:
        if name:
            raise ValueError(f"Script '{name}' not found: tsr runs no A1111 scripts")
        return name

    @field_validator("infotext")
    @classmethod
    def _no_infotext(cls, text: str | None) -> str | None:
        if text:
            raise ValueError("tsr does not read settings from infotext; send them as fields")
        return text


class Txt2ImgRequest(A1111Generation):
    """POST /sdapi/v1/txt2img."""


class Img2ImgRequest(A1111Generation):
    """POST /sdapi/v1/img2img: one init image (base64, optionally a data: URL) and a strength."""

    init_images: list[str] | None = None
    #: inpainting masks are refused: the job queue carries no mask
    mask: str | None = None
    resize_mode: int | None = 0
    include_init_images: bool = False
    denoising_strength: float | None = Field(0.75, ge=0.0, le=1.0)

    @field_validator("mask")
    @classmethod
    def _no_mask(cls, mask: str | None) -> str | None:
        if mask:
            raise ValueError("inpainting masks are not supported by tsr; send no mask")
        return mask


class ImageResponse(BaseModel):
    """TextToImageResponse / ImageToImageResponse: base64 PNGs, the request, `info` as JSON text."""

    images: list[str] | None = None
    parameters: dict[str, Any]
    info: str


class ProgressResponse(BaseModel):
    """GET /sdapi/v1/progress."""

    progress: float
    eta_relative: float
    state: dict[str, Any]
    current_image: str | None = None
    textinfo: str | None = None


class SamplerItem(BaseModel):
    """One entry of GET /sdapi/v1/samplers."""

    name: str
    aliases: list[str]
    options: dict[str, Any]


class SchedulerItem(BaseModel):
    """One entry of GET /sdapi/v1/schedulers."""

    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float | None = None
    need_inner_model: bool | None = None


class SdModelItem(BaseModel):
    """One entry of GET /sdapi/v1/sd-models: real hashes from tsr's models database."""

    model_config = ConfigDict(protected_namespaces=())

    title: str
    model_name: str
    #: AutoV2 (first 10 hex of the SHA256)
    hash: str | None = None
    sha256: str | None = None
    #: the file's absolute path on the server
    filename: str
    config: str | None = None


class LoraItem(BaseModel):
    """One entry of GET /sdapi/v1/loras (the Lora extension's shape)."""

    name: str
    alias: str
    #: the file's absolute path on the server
    path: str
    #: the safetensors training metadata (`ss_*`), JSON values parsed
    metadata: dict[str, Any]


class MemoryResponse(BaseModel):
    """GET /sdapi/v1/memory: RAM of the tsr host; the GPU is sd-server's and not reported."""

    ram: dict[str, Any]
    cuda: dict[str, Any]


class ScriptsList(BaseModel):
    """GET /sdapi/v1/scripts: tsr has no A1111 scripts."""

    txt2img: list[str] = Field(default_factory=list)
    img2img: list[str] = Field(default_factory=list)
