"""`tsr info`: what a model file is (kind, family and why, tensors, training) and its hashes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tsr.inspect import ModelInfo

TRIGGERS_SHOWN = 10


def register(app: typer.Typer) -> None:
    """Add the `info` command to the root app."""
    app.command("info")(info)


def info(
    files: Annotated[
        list[Path], typer.Argument(help="Model files (.safetensors, .gguf, .ckpt...).")
    ],
    with_hash: Annotated[
        bool, typer.Option("--hash", help="Also compute SHA256, AutoV2 and the LoRA short hash.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what model files are, read from their headers (no weights loaded)."""
    from tsr.cli.output import print_json, warn
    from tsr.inspect import inspect_file

    reports = []
    for path in files:
        progress = _progress_printer(path) if with_hash and sys.stderr.isatty() else None
        report = inspect_file(path, with_hash=with_hash, progress=progress)
        if progress is not None:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        reports.append(report)
        if report.error:
            warn(report.error)
        elif not as_json:
            if len(reports) > 1:
                print()
            _print_report(report)
    if as_json:
        print_json(reports)
    if any(report.error for report in reports):
        # SystemExit, not typer.Exit: tsr.cli.main runs the app with standalone_mode=False,
        # where click turns typer.Exit into a return value that main() does not pass on
        raise SystemExit(1)


def _progress_printer(path: Path) -> Callable[[int], None]:
    total = max(path.stat().st_size, 1) if path.is_file() else 1
    last = [-1]

    def show(done: int) -> None:
        percent = done * 100 // total
        if percent != last[0]:
            last[0] = percent
            print(f"\rhashing {path.name}: {percent}%", end="", file=sys.stderr, flush=True)

    return show


def parameters_text(count: int) -> str:
    """A parameter count the way model cards write it: 2.57 B, 85.3 M, 12.4 K."""
    for factor, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= factor:
            return f"{count / factor:.3g} {unit}"
    return str(count)


def _print_report(report: ModelInfo) -> None:
    from tsr.cli.output import human_size
    from tsr.inspect import ARCHITECTURE_LABELS

    rows: list[tuple[str, str]] = []
    kind_text: str = report.kind
    if report.architecture:
        kind_text += f" ({ARCHITECTURE_LABELS[report.architecture]})"
    rows.append(("kind", kind_text))
    family = report.family or "unknown"
    if report.family_signal:
        family += f", from {report.family_signal}"
    rows.append(("family", family))
    rows.append(("format", report.format))
    if report.size is not None:
        rows.append(("size", f"{human_size(report.size)} ({report.size:,} bytes)"))
    if report.tensor_count is not None:
        rows.append(("tensors", f"{report.tensor_count:,}"))
    if report.parameter_count is not None:
        rows.append(("parameters", parameters_text(report.parameter_count)))
    if report.dtypes:
        label = "types" if report.format == "gguf" else "dtypes"
        rows.append(
            (label, ", ".join(f"{name} {count:,}" for name, count in report.dtypes.items()))
        )
    if report.gguf_architecture:
        rows.append(("gguf arch", report.gguf_architecture))
    training = _training_text(report)
    if training:
        rows.append(("training", training))
    if report.trigger_candidates:
        shown = report.trigger_candidates[:TRIGGERS_SHOWN]
        rows.append(("triggers", ", ".join(f"{c.tag} ({c.count})" for c in shown)))
    if report.sha256:
        rows += [("SHA256", report.sha256), ("AutoV2", report.autov2 or "")]
        rows.append(("short", report.short_hash or ""))
    print(report.path)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"  {label + ':':<{width}} {value}")


def _number(value: float) -> str:
    return f"{value:g}"


def _training_text(report: ModelInfo) -> str:
    training = report.training
    parts = []
    if training.base_model_version:
        parts.append(f"base {training.base_model_version}")
    if training.sd_model_name:
        parts.append(f"on {training.sd_model_name}")
    if training.network_module:
        parts.append(f"module {training.network_module}")
    if training.network_dim is not None:
        parts.append(f"dim {training.network_dim}")
    if training.network_alpha is not None:
        parts.append(f"alpha {_number(training.network_alpha)}")
    if training.clip_skip is not None:
        parts.append(f"clip skip {training.clip_skip}")
    if training.resolution:
        parts.append(f"resolution {training.resolution}")
    if training.output_name:
        parts.append(f"output {training.output_name}")
    if training.modelspec_architecture:
        parts.append(f"modelspec {training.modelspec_architecture}")
    if training.modelspec_title and training.modelspec_title != training.output_name:
        parts.append(f"title {training.modelspec_title!r}")
    return ", ".join(parts)
