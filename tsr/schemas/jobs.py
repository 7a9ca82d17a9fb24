"""Wire models for generation requests, jobs (generate, switch) and sd-server backends."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JobKind = Literal["generate", "switch"]
JobState = Literal["queued", "switching", "running", "saving", "done", "failed", "cancelled"]
#: states a job never leaves
FINISHED_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})
BackendKind = Literal["managed", "external"]
BackendState = Literal["stopped", "starting", "ready", "switching", "failed", "unreachable"]

#: sd-server's own limits (capabilities.limits); it silently clamps or rounds what lies outside
MIN_SIZE, MAX_SIZE, SIZE_STEP = 64, 4096, 64
MAX_STEPS = 100
MAX_BATCH = 8
MAX_SEED = 2**63 - 1


class LoraRef(BaseModel):
    """One LoRA for a generation: exactly one of DB id, name (or hash) or path, and its weight."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    name: str | None = None
    path: str | None = None
    weight: float = Field(1.0, ge=-10.0, le=10.0)

    @model_validator(mode="after")
    def _exactly_one_reference(self) -> LoraRef:
        given = [key for key in ("id", "name", "path") if getattr(self, key) not in (None, "")]
        if len(given) != 1:
            raise ValueError("give exactly one of id, name or path for each LoRA")
        return self

    def label(self) -> str:
        """How the user named this LoRA, for messages."""
        return str(self.path or self.name or f"#{self.id}")


class GenerateRequest(BaseModel):
    """What a user asks for; every field left out comes from the checkpoint family's defaults."""

    model_config = ConfigDict(extra="forbid")

    #: DB id, file name/stem, or SHA256/AutoV2 hash; None = the model the backend holds now
    checkpoint: int | str | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    prompt: str
    #: None = the family's default negative; "" = no negative prompt at all
    negative: str | None = None
    width: int | None = Field(None, ge=MIN_SIZE, le=MAX_SIZE)
    height: int | None = Field(None, ge=MIN_SIZE, le=MAX_SIZE)
    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    cfg: float | None = Field(None, ge=0.0, le=30.0)
    #: WebUI labels ("DPM++ 2M", "Karras") or sd.cpp names ("dpm++2m", "karras")
    sampler: str | None = None
    scheduler: str | None = None
    #: -1 = random; sd-server reports the real seed, which is what gets saved
    seed: int = Field(-1, ge=-1, le=MAX_SEED)
    batch: int = Field(1, ge=1, le=MAX_BATCH)
    clip_skip: int | None = Field(None, ge=0, le=12)
    #: run on this backend (by name) instead of letting tsr choose
    backend: str | None = None
    #: use LoRAs made for another architecture anyway
    force: bool = False
    #: prepend the family's prompt prefix (pony's score tags...) unless the prompt has it already
    family_prompt: bool = True
    #: img2img: the start image, base64 PNG or JPEG (a `data:` URL prefix is allowed); its size
    #: is the output size. Kept out of every JobOut and event (it may be megabytes).
    init_image: str | None = Field(None, exclude=True, repr=False)
    #: img2img: how much of the init image is repainted, 0..1 (default 0.75)
    strength: float | None = Field(None, ge=0.0, le=1.0)

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
            # sd-server would silently round it up and record the wrong size
            raise ValueError(f"{size} is not a multiple of {SIZE_STEP}")
        return size


class ResolvedLora(BaseModel):
    """A LoRA as it is sent: its file, its path below the backend's LoRA dir, weight and hash."""

    name: str
    path: str
    server_path: str
    weight: float
    sha256: str | None = None
    family: str | None = None


class ResolvedGeneration(BaseModel):
    """A request with every default filled in and every name resolved to a file."""

    checkpoint: str
    checkpoint_path: str | None = None
    checkpoint_sha256: str | None = None
    family: str
    prompt: str
    negative: str
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    seed: int
    batch: int
    clip_skip: int
    loras: list[ResolvedLora] = Field(default_factory=list)
    #: img2img: the decoded start image (kept out of every JobOut) and the strength
    init_image: bytes | None = Field(None, exclude=True, repr=False)
    strength: float | None = None


class JobOut(BaseModel):
    """A job as clients see it: state, place in the queue, progress, outcome."""

    id: str
    kind: JobKind
    state: JobState
    backend: str | None = None
    queue_position: int | None = None
    #: 0..1 where known (sd-server reports no per-step progress, so mostly 0 or 1)
    progress: float | None = None
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    #: the checkpoint the job runs on (generate) or loads (switch)
    model: str | None = None
    image_ids: list[int] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    request: GenerateRequest | None = None
    resolved: ResolvedGeneration | None = None


class BackendOut(BaseModel):
    """One sd-server backend: where it is, what it holds, its state and the end of its log."""

    name: str
    kind: BackendKind
    url: str
    state: BackendState
    #: the loaded checkpoint's path (as tsr knows it, or as sd-server reports it)
    model: str | None = None
    model_name: str | None = None
    family: str | None = None
    families: list[str] = Field(default_factory=list)
    error: str | None = None
    pid: int | None = None
    restarts: int = 0
    queued: int = 0
    log_tail: list[str] = Field(default_factory=list)
