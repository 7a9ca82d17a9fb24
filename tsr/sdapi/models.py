"""Typed requests and answers of sd-server's native job API and its A1111-style API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LoraRef(BaseModel):
    """A LoRA to apply: its path as /sdapi/v1/loras lists it (with extension) and a weight."""

    model_config = ConfigDict(frozen=True)

    path: str
    multiplier: float = 1.0


class GenerationParams(BaseModel):
    """One generation request, in tsr's terms (validated before anything is sent).

    None means "sd-server's own default" for steps, cfg, guidance, sampler, scheduler and clip
    skip; width/height None means the init image's size (img2img) or 512 (txt2img).
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    guidance: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    seed: int = -1
    batch_count: int = 1
    clip_skip: int | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    init_image: bytes | None = None
    strength: float = 0.75

    @field_validator("loras", mode="before")
    @classmethod
    def _accept_pairs(cls, value: Any) -> Any:
        """Accept `(path, multiplier)` pairs as well as LoraRef objects or dicts."""
        if isinstance(value, list | tuple):
            return [
                {"path": item[0], "multiplier": item[1]} if isinstance(item, list | tuple) else item
                for item in value
            ]
        return value


class LoraEntry(BaseModel):
    """One LoRA sd-server found under its --lora-model-dir."""

    name: str
    path: str


class Limits(BaseModel):
    """Size, batch and queue limits from /sdcpp/v1/capabilities."""

    min_width: int = 64
    max_width: int = 4096
    min_height: int = 64
    max_height: int = 4096
    max_batch_count: int = 8
    max_queue_size: int = 64


class LoadedModel(BaseModel):
    """The checkpoint an sd-server process serves."""

    name: str = ""
    stem: str = ""
    path: str = ""


class Capabilities(BaseModel):
    """GET /sdcpp/v1/capabilities: the model, sampler and scheduler names, limits, defaults."""

    model_config = ConfigDict(extra="allow")

    model: LoadedModel = Field(default_factory=LoadedModel)
    current_mode: str = ""
    samplers: list[str] = Field(default_factory=list)
    schedulers: list[str] = Field(default_factory=list)
    loras: list[LoraEntry] = Field(default_factory=list)
    output_formats: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    defaults: dict[str, Any] = Field(default_factory=dict)


class ServerOptions(BaseModel):
    """GET /sdapi/v1/options (sd-server has only these two keys)."""

    samples_format: str = "png"
    sd_model_checkpoint: str = ""


JobStatus = Literal["queued", "generating", "completed", "failed", "cancelled"]


class NativeImage(BaseModel):
    """One result image of a native job, base64-encoded."""

    index: int
    b64_json: str


class NativeResult(BaseModel):
    """The result of a completed native job."""

    output_format: str = "png"
    images: list[NativeImage] = Field(default_factory=list)


class NativeError(BaseModel):
    """Why a native job failed or was cancelled."""

    code: str = ""
    message: str = ""


class NativeJob(BaseModel):
    """GET /sdcpp/v1/jobs/{id}: a job's state; queue_position counts from 1 while queued."""

    id: str
    kind: str = "img_gen"
    status: JobStatus
    created: int | None = None
    started: int | None = None
    completed: int | None = None
    queue_position: int = 0
    result: NativeResult | None = None
    error: NativeError | None = None

    @property
    def finished(self) -> bool:
        """True once the job completed, failed or was cancelled."""
        return self.status in ("completed", "failed", "cancelled")


class GeneratedImage(BaseModel):
    """One generated image: PNG bytes, the seed it really used and sd.cpp's infotext."""

    png: bytes
    seed: int
    width: int
    height: int
    infotext: str = ""


class GenerationResult(BaseModel):
    """What `SdServerClient.generate` returns: the images of one finished job, in order."""

    job_id: str
    images: list[GeneratedImage]

    @property
    def seeds(self) -> list[int]:
        """The real seed of each image."""
        return [image.seed for image in self.images]

    @property
    def pngs(self) -> list[bytes]:
        """The PNG bytes of each image."""
        return [image.png for image in self.images]


class Txt2ImgInfo(BaseModel):
    """The sdapi `info` field, parsed from its JSON string."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    seed: int
    all_seeds: list[int] = Field(default_factory=list)
    all_prompts: list[str] = Field(default_factory=list)
    all_negative_prompts: list[str] = Field(default_factory=list)
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    sampler_name: str = ""
    sd_model_name: str = ""
    clip_skip: int | None = None
    extra_generation_params: dict[str, Any] = Field(default_factory=dict)
    denoising_strength: float | None = None
    version: str = ""
    infotexts: list[str] = Field(default_factory=list)


class Txt2ImgResult(BaseModel):
    """POST /sdapi/v1/txt2img|img2img: decoded images, the echoed request, the parsed info."""

    images: list[bytes]
    parameters: dict[str, Any]
    info: Txt2ImgInfo

    @property
    def seeds(self) -> list[int]:
        """The seed of each image (`info.all_seeds`)."""
        return list(self.info.all_seeds)
