"""One model file in detail: file, hashes, family and why, CivitAI link, description, triggers."""

from __future__ import annotations

import re

from rich.markup import escape
from textual.widgets import Static

from tsr.schemas.models import FileDetail, ModelFile
from tsr.tui.text import clip, human_size, one_line

_TAGS = re.compile(r"<[^>]+>")
#: header keys that describe a model, best first
DESCRIPTION_KEYS = ("modelspec.description", "ss_training_comment", "description")


def description_excerpt(detail: FileDetail, civitai_description: str | None, width: int) -> str:
    """A few lines about the model: CivitAI's description (tags removed) or the file's own."""
    text = civitai_description or next(
        (str(detail.header_metadata[k]) for k in DESCRIPTION_KEYS if detail.header_metadata.get(k)),
        "",
    )
    return clip(one_line(_TAGS.sub(" ", text)), width)


def details_markup(
    model: ModelFile, detail: FileDetail | None, civitai_description: str | None
) -> str:
    """The file described as Textual markup (the summary until the detail arrives)."""
    lines = [f"[b]{escape(model.civitai.model_name if model.civitai else model.name)}[/]"]
    lines.append(f"[dim]file[/] {escape(model.path)}")
    facts = [human_size(model.size), model.format or "", model.architecture or ""]
    if model.tensor_count:
        facts.append(f"{model.tensor_count} tensors")
    lines.append(" · ".join(fact for fact in facts if fact))
    if model.sha256:
        lines.append(f"[dim]sha256[/] {model.sha256}")
        lines.append(f"[dim]AutoV2[/] {model.autov2 or model.sha256[:10]}")
    else:
        lines.append("[dim]not hashed yet (rescan)[/]")
    why = f" [dim]({escape(model.family_signal)})[/]" if model.family_signal else ""
    lines.append(f"[b]family[/] {escape(model.family or 'unknown: treated as sdxl')}{why}")
    if model.civitai:
        ref = model.civitai
        lines.append(
            f"[b]CivitAI[/] {escape(ref.model_name)} · {escape(ref.version_name)} "
            f"[dim](model {ref.model_id}, version {ref.version_id})[/]"
        )
        if ref.base_model:
            lines.append(f"[b]base model[/] {escape(ref.base_model)}")
    else:
        lines.append("[dim]not linked to CivitAI (c: link by hash)[/]")
    if model.missing:
        lines.append("[red]the file is missing on disk[/]")
    if model.error:
        lines.append(f"[red]{escape(model.error)}[/]")
    if detail is not None:
        excerpt = description_excerpt(detail, civitai_description, 400)
        if excerpt:
            lines.append("")
            lines.append(escape(excerpt))
        words = [w.word for w in detail.triggers if not w.hidden]
        if words:
            lines.append("")
            lines.append(f"[b]trigger words[/] {escape(', '.join(words))}")
    return "\n".join(lines)


class ModelDetails(Static):
    """The highlighted model file, described."""

    def show(
        self,
        model: ModelFile | None,
        detail: FileDetail | None = None,
        civitai_description: str | None = None,
    ) -> None:
        """Describe `model` (and its detail, once fetched)."""
        self.update(details_markup(model, detail, civitai_description) if model else "")
