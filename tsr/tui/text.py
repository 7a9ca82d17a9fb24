"""Small text helpers for the panes (the TUI may not import tsr.cli, so they live here)."""

from __future__ import annotations


def human_size(size: float) -> str:
    """Bytes as a short size: 2.0 GiB, 151 MiB, 12 KiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units:
        if abs(size) < 1024 or unit == units[-1]:
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" or abs(size) >= 100 else f"{size:.1f} {unit}"


def one_line(text: str) -> str:
    """`text` with its whitespace (newlines too) collapsed, for a single row."""
    return " ".join(text.split())


def clip(text: str, width: int) -> str:
    """`text` cut to `width` cells, with an ellipsis when cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def number(value: float | None) -> str:
    """A number as people write it (7, not 7.0), or `?`."""
    return "?" if value is None else f"{value:g}"
