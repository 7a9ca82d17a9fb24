"""The `tsr` command's entry point; the app itself is in `tsr.cli.root`."""

from __future__ import annotations

import signal
import sys

from tsr.errors import TsrError

#: the exit status of a command ended by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


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


def _run() -> int:
    """Run the app and turn its outcome into an exit status, reporting failures on stderr."""
    try:
        # imported here so that a Ctrl-C during start-up is caught like any other
        from tsr.cli.root import app

        # without standalone mode click returns a typer.Exit's status instead of exiting
        status = app(standalone_mode=False)
    except TsrError as exc:
        print(f"tsr: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, Exception) as exc:
        names = _class_names(exc)
        if "Exit" in names and not _interrupted(exc):
            return int(getattr(exc, "exit_code", 0))
        if names & {"Exit", "Abort"} or _interrupted(exc):
            print("tsr: interrupted", file=sys.stderr)
            return INTERRUPTED
        if names & {"UsageError", "ClickException"}:
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            return int(getattr(exc, "exit_code", 2))
        raise
    if status == INTERRUPTED:
        # typer turns a Ctrl-C inside a command into a silent exit status
        print("tsr: interrupted", file=sys.stderr)
    return status if isinstance(status, int) else 0


def main() -> None:
    """Run the `tsr` command line in this process; exits (SystemExit) with its status."""
    try:
        status = _run()
    except KeyboardInterrupt:
        # a second Ctrl-C while the outcome of the first was being reported
        status = INTERRUPTED
    sys.exit(status)


def entry() -> None:
    """The process's entry point (`tsr`, `python -m tsr`): `main()`, then a quiet exit."""
    try:
        main()
    finally:
        # The command is over; what remains is clean-up (stopping the embedded server, then
        # the interpreter's own shutdown). A Ctrl-C now would only cut that short: with
        # Python's handler it raises where nothing can catch it, and once the interpreter has
        # restored the default handler it kills the process mid-exit. Ignoring it (a pending
        # one included) lets the exit finish; the clean-up is bounded by its own timeouts.
        # Only here, never in `main()`: an ignored SIGINT is inherited by every process
        # started afterwards, so a caller that goes on running must keep its own handler.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Stopped here rather than by the atexit hook: by the time atexit hooks run, Python has
        # shut down every thread pool, and the server's services stop through one
        from tsr.client.local import shutdown_embedded

        shutdown_embedded()
