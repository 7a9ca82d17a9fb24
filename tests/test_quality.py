"""The linters as tests, so `uv run pytest` is the one command that checks everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.lint


def _run(*command: str) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"


def test_ruff_check_is_clean() -> None:
    _run(sys.executable, "-m", "ruff", "check", ".")


def test_ruff_format_is_clean() -> None:
    _run(sys.executable, "-m", "ruff", "format", "--check", ".")


def test_mypy_is_clean() -> None:
    _run(sys.executable, "-m", "mypy")


def test_import_rules_hold() -> None:
    """architecture.md: core stays headless, the TUI reaches data only through the client."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    _run(str(lint_imports), "--no-cache")
