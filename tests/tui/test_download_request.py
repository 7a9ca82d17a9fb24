"""What the TUI's "download" prompt makes of what the user pastes."""

from __future__ import annotations

import pytest

from tsr.errors import BadRequest
from tsr.schemas.downloads import DownloadRequest
from tsr.tui.data import download_request


@pytest.mark.parametrize(
    ("pasted", "wanted"),
    [
        ("128713", DownloadRequest(version_id=128713)),
        (" model:4201 ", DownloadRequest(model_id=4201)),
        ("https://civitai.com/models/4201", DownloadRequest(url="https://civitai.com/models/4201")),
        ("E3B0C44298FC1C14", DownloadRequest(hash="E3B0C44298FC1C14")),
    ],
)
def test_ids_urls_and_hashes_are_understood(pasted: str, wanted: DownloadRequest) -> None:
    assert download_request(pasted) == wanted


@pytest.mark.parametrize("pasted", ["³", "model:²", "a model please"])
def test_anything_else_is_refused_with_a_message(pasted: str) -> None:
    # "³" and "²" are digits to str.isdigit() but not to int()
    with pytest.raises(BadRequest):
        download_request(pasted)
