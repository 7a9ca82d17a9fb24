"""File names from servers are made safe; CivitAI model types map to model folders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsr.downloads.names import (
    filename_from_disposition,
    kind_for_model_type,
    numbered,
    safe_file_name,
)
from tsr.errors import BadRequest


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="zkx_girl_v2.safetensors"', "zkx_girl_v2.safetensors"),
        ("attachment; filename=plain.safetensors", "plain.safetensors"),
        ("attachment; filename*=UTF-8''caf%C3%A9%20v2.safetensors", "café v2.safetensors"),
        (
            "attachment; filename=\"fallback.safetensors\"; filename*=UTF-8''real.safetensors",
            "real.safetensors",
        ),
        ("inline", None),
        (None, None),
    ],
)
def test_content_disposition_names(header: str | None, name: str | None) -> None:
    assert filename_from_disposition(header) == name


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\model.safetensors", "model.safetensors"),
        (".hidden.safetensors", "hidden.safetensors"),
        ("a..b.safetensors", "a_b.safetensors"),
        ("line\nbreak\x00.safetensors", "linebreak.safetensors"),
        ("..", None),
        ("/", None),
        ("", None),
    ],
)
def test_unsafe_names_are_made_safe(sent: str, kept: str | None) -> None:
    assert safe_file_name(sent) == kept


@given(st.text(max_size=400))
def test_a_safe_name_never_leaves_its_folder(sent: str) -> None:
    name = safe_file_name(sent)
    if name is None:
        return
    assert "/" not in name and "\\" not in name
    assert ".." not in name
    assert not name.startswith(".")
    assert name.strip() == name and name
    assert len(name.encode()) <= 255


def test_long_names_keep_their_extension() -> None:
    name = safe_file_name("x" * 400 + ".safetensors")
    assert name is not None
    assert name.endswith(".safetensors") and len(name.encode()) == 255


def test_numbered_names() -> None:
    assert numbered("model.safetensors", 2) == "model-2.safetensors"
    assert numbered("README", 3) == "README-3"


@pytest.mark.parametrize(
    ("model_type", "kind"),
    [
        ("Checkpoint", "checkpoints"),
        ("LORA", "loras"),
        ("LoCon", "loras"),
        ("DoRA", "loras"),
        ("VAE", "vae"),
        ("TextualInversion", "embeddings"),
    ],
)
def test_civitai_types_go_to_their_folders(model_type: str, kind: str) -> None:
    assert kind_for_model_type(model_type, "x") == kind


def test_other_types_are_refused_by_name() -> None:
    with pytest.raises(BadRequest, match=r"^Pose pack is a CivitAI Poses model; tsr installs"):
        kind_for_model_type("Poses", "Pose pack")
    with pytest.raises(BadRequest, match="an unknown type"):
        kind_for_model_type(None, "Mystery")
