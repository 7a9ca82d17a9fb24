"""What an image was made with: prompt, model, LoRAs, settings, state; shown beside its preview."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from tsr.schemas.images import ImageOut
from tsr.tui.text import human_size, number


def details_markup(image: ImageOut) -> str:
    """The image's parameters as Textual markup, most useful first."""
    lines = [escape(image.prompt.strip()) or "[dim](no prompt)[/]"]
    if image.negative.strip():
        lines.append(f"[dim]negative:[/] {escape(image.negative.strip())}")
    lines.append("")
    lines.append(f"[b]model[/] {escape(image.checkpoint or '?')}")
    if image.loras:
        loras = ", ".join(f"{escape(lora.name)} {number(lora.weight)}" for lora in image.loras)
        lines.append(f"[b]LoRAs[/] {loras}")
    sampler = " ".join(part for part in (image.sampler, image.scheduler) if part) or "?"
    lines.append(
        f"{image.width}x{image.height} · {image.steps or '?'} steps · CFG {number(image.cfg)}"
        f" · {escape(sampler)}"
    )
    lines.append(f"seed {image.seed if image.seed is not None else '?'}")
    state = {"inbox": "in the inbox", "kept": "kept", "trashed": "in the trash"}[image.state]
    favourite = " · ★ favourite" if image.favourite else ""
    made = image.created.strftime("%Y-%m-%d %H:%M")
    lines.append(f"[dim]{state}{favourite} · {made} · {human_size(image.file_size)}[/]")
    return "\n".join(lines)


class ImageDetails(Static):
    """The highlighted image's metadata (empty when there is none)."""

    def show(self, image: ImageOut | None) -> None:
        """Describe `image` (its box does not change size: no layout pass, which would
        repaint the preview beside it too)."""
        self.update(details_markup(image) if image else "", layout=False)
