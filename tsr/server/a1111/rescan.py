"""The scan behind A1111's refresh-checkpoints and refresh-loras: one kind's roots, as a task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tsr.db.database import db
from tsr.db.scan import scan_roots
from tsr.schemas.models import ScanResult
from tsr.server.tasks import TaskCancelled, TaskControl


def scan_work(
    roots: Sequence[Path], model_roots: Mapping[str, Sequence[Path]]
) -> Callable[[TaskControl], ScanResult]:
    """The work of a `scan` task over `roots` (each a configured model root)."""

    def work(control: TaskControl) -> ScanResult:
        with db.connection_context():
            result = scan_roots(list(roots), model_roots=model_roots, stop_event=control.stop)
        if result.interrupted:
            raise TaskCancelled(result)
        return result

    return work
