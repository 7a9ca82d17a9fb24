"""Wire models of the generation API: checkpoints and LoRAs to choose from, the backends' models,
sampler and scheduler names, model switches and the images a job made."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tsr.schemas.jobs import BackendOut
from tsr.schemas.models import ModelFile


class CheckpointOut(ModelFile):
    """A checkpoint to generate with: the file, its family, CivitAI link, and where it is loaded."""

    #: the backends that hold this checkpoint now
    loaded_on: list[str] = Field(default_factory=list)


class CheckpointPage(BaseModel):
    """A page of checkpoints by name; `next_offset` says where the next page starts."""

    items: list[CheckpointOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class LoraOut(ModelFile):
    """A LoRA, with whether it suits the family asked about and its first trigger words."""

    #: None when no family was given (nothing to compare with)
    compatible: bool | None = None
    #: why it is incompatible, or what to expect from a near miss (same architecture)
    note: str | None = None
    #: the first trigger words (CivitAI's first), for a preview; `GET /api/db/triggers` has all
    triggers: list[str] = Field(default_factory=list)


class LoraPage(BaseModel):
    """A page of LoRAs and the family (and its architecture) they were checked against."""

    #: the family asked for, else the active checkpoint's; None when neither is known
    family: str | None = None
    architecture: str | None = None
    items: list[LoraOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class ActiveBackend(BackendOut):
    """A backend with the models-database entry of the checkpoint it holds (when known)."""

    file: ModelFile | None = None


class SwitchRequest(BaseModel):
    """`POST /api/models/switch`: the checkpoint to load (DB id, name, hash or path) and where."""

    model_config = ConfigDict(extra="forbid")

    model: int | str
    #: the backend to switch (default: the first)
    backend: str | None = None


class SamplingChoice(BaseModel):
    """A sampler or scheduler: the sd.cpp name and its WebUI label when it has one.

    A request may name either; images record the label where there is one.
    """

    name: str
    label: str | None = None


class JobImage(BaseModel):
    """An image a job saved: its gallery id, where it is on the server, and its real seed."""

    id: int
    #: the absolute path of the file on the server
    path: str
    #: the path relative to the gallery folder
    file: str
    seed: int | None = None
    width: int
    height: int
