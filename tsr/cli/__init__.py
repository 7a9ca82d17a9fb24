"""The `tsr` command's entry point; the app itself is in `tsr.cli.root`."""

from __future__ import annotations

import sys

from tsr.errors import TsrError


def _interrupted(exc: BaseException) -> bool:
    """True when `exc` was caused by a Ctrl-C (an interrupted import surfaces as another error)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        # `raise ... from None` means the raiser already told the user about the interrupt
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return False


def _class_names(exc: BaseException) -> set[str]:
    # typer ships its own copy of click, so classes are matched by name, not imported
    return {cls.__name__ for cls in type(exc).__mro__}


def main() -> None:
    """Entry point: run the app; a TsrError becomes one line on stderr and a non-zero exit."""
    try:
        # imported here so that a Ctrl-C during start-up is caught like any other
        from tsr.cli.root import app

        # without standalone mode click returns a typer.Exit's status instead of exiting
        status = app(standalone_mode=False)
    except TsrError as exc:
        print(f"tsr: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, Exception) as exc:
        names = _class_names(exc)
        if "Exit" in names and not _interrupted(exc):
            sys.exit(getattr(exc, "exit_code", 0))
        if names & {"Exit", "Abort"} or _interrupted(exc):
            print("tsr: interrupted", file=sys.stderr)
            sys.exit(130)
        if names & {"UsageError", "ClickException"}:
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    if status == 130:
        # typer turns a Ctrl-C inside a command into a silent exit status
        print("tsr: interrupted", file=sys.stderr)
    sys.exit(status if isinstance(status, int) else 0)
