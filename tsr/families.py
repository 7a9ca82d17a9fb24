"""Model families and their defaults, read from rocm-docker/model-defaults.toml (one source)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

Orientation = Literal["square", "portrait", "landscape"]
#: the family assumed when nothing identifies a checkpoint (the UI says so)
FALLBACK_FAMILY = "sdxl"
_REPO_DEFAULTS = Path(__file__).resolve().parent.parent / "rocm-docker" / "model-defaults.toml"


class Family(BaseModel):
    """One family's generation defaults and how sd-server is started for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str
    architecture: str
    sizes: dict[Orientation, tuple[int, int]]
    steps: int
    steps_range: tuple[int, int]
    cfg: float
    cfg_range: tuple[float, float]
    sampler: str
    scheduler: str
    clip_skip: int
    prompt_prefix: str
    negative: str
    model_flag: str
    companions: dict[str, str]
    server_args: list[str]
    port: int
    civitai_base_models: list[str]

    @property
    def default_size(self) -> tuple[int, int]:
        """The square size, the form's first choice."""
        return self.sizes["square"]


def _defaults_text() -> str:
    # A source checkout reads the file that the docker images read; a wheel ships a copy.
    if _REPO_DEFAULTS.is_file():
        return _REPO_DEFAULTS.read_text(encoding="utf-8")
    return resources.files("tsr").joinpath("model-defaults.toml").read_text(encoding="utf-8")


@cache
def all_families() -> dict[str, Family]:
    """Every family in model-defaults.toml, in file order, keyed by name."""
    data = tomllib.loads(_defaults_text())
    return {name: Family(name=name, **values) for name, values in data["families"].items()}


def get_family(name: str | None) -> Family:
    """The named family, or the fallback family (sdxl) for None or an unknown name."""
    families = all_families()
    return families.get(name or "", families[FALLBACK_FAMILY])


def family_for_base_model(base_model: str | None) -> str | None:
    """Map a CivitAI `baseModel` ("Pony", "SDXL 1.0", "NoobAI"...) to a family name, or None."""
    if not base_model:
        return None
    wanted = base_model.strip().casefold()
    for family in all_families().values():
        if any(wanted == known.casefold() for known in family.civitai_base_models):
            return family.name
    return None


def families_with_architecture(architecture: str) -> list[str]:
    """The families that share one architecture (pony, illustrious and sdxl are all `sdxl`)."""
    return [f.name for f in all_families().values() if f.architecture == architecture]
