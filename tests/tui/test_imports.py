"""The TUI reaches data only through tsr.client: importing all of it loads no storage or server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import pkgutil, importlib, sys
import tsr.tui
for module in pkgutil.walk_packages(tsr.tui.__path__, "tsr.tui."):
    importlib.import_module(module.name)
import tsr.cli.tui
bad = sorted(
    name for name in sys.modules
    if name.split(".")[0] == "peewee"
    or name.startswith(("tsr.db", "tsr.server", "tsr.gallery", "fastapi", "uvicorn"))
)
print(",".join(bad))
"""


def test_the_tui_imports_no_storage_and_no_server() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=ROOT, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_other_verbs_start_without_textual() -> None:
    check = "import sys, tsr.cli; print(any(m.startswith('textual') for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    """The keymap remaps by id, and the footer and help explain each key."""
    from importlib import import_module

    from textual.binding import Binding
    from textual.screen import Screen

    from tsr.tui.keymap import BOUND_CLASSES, all_bindings

    textuals_own = {b.key for b in Screen.BINDINGS if isinstance(b, Binding)}
    for spec in BOUND_CLASSES:
        module, name = spec.split(":")
        owner = getattr(import_module(module), name)
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.key in textuals_own and not binding.id:
                continue  # tab, shift+tab and copy: Textual's own, on every screen
            assert binding.id and binding.tooltip, f"{name}: {binding.key}"
    ids = [binding_id for rows in all_bindings().values() for binding_id, _ in rows]
    assert len(ids) == len(set(ids)) > 50
