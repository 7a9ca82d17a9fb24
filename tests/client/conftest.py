"""Client fixtures: embedded servers stop after each test; the CLI run in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import OFFLINE_CIVITAI
from tsr.client.local import shutdown_embedded


@pytest.fixture(autouse=True)
def stop_embedded_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Servers use an unreachable CivitAI; whatever a test started is stopped after it."""
    monkeypatch.setenv("CIVITAI_BASE_URL", OFFLINE_CIVITAI)
    yield
    shutdown_embedded()


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """Run `tsr ARGS` through its real entry point; (exit status, stdout, stderr)."""
    from tsr.cli import main

    monkeypatch.setattr(sys, "argv", ["tsr", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write_config(path: Path, text: str) -> None:
    """Write the config file the CLI reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
