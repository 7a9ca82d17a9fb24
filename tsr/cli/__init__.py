"""The `tsr` command's entry point; the app itself is in `tsr.cli.root`."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from types import FrameType

from tsr.errors import TsrError

#: the exit status of a command ended by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130
#: Ctrl-Cs pressed once the command was over, while it cleaned up
_cleanup_interrupts = 0


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
        # The command is over; what remains is clean-up: stopping the embedded server, the
        # threads it still runs (a start-up walk of a big gallery cannot be cut short), then
        # the interpreter's own shutdown. A Ctrl-C now must not raise where nothing catches
        # it: the first one only says that it is finishing, a second one leaves at once.
        # Never in `main()`: a caller that goes on running keeps its own handler.
        signal.signal(signal.SIGINT, _while_cleaning_up)
        ending = sys.exc_info()[1]
        if isinstance(ending, SystemExit) and ending.code == INTERRUPTED:
            global _cleanup_interrupts
            _cleanup_interrupts = 1  # the user pressed Ctrl-C once already: next time, leave
        from tsr.client.local import shutdown_embedded

        shutdown_embedded()
        # atexit hooks run once every thread has ended, just before the interpreter restores
        # the default handler (which would kill the process mid-shutdown); ignored from here
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)


def _while_cleaning_up(_signum: int, _frame: FrameType | None) -> None:
    global _cleanup_interrupts
    _cleanup_interrupts += 1
    if _cleanup_interrupts == 1:
        os.write(2, b"tsr: finishing; press Ctrl-C again to quit at once\n")
        return
    # leaves without waiting for threads (a half-done scan or download resumes next time),
    # but not leaving an sd-server it started behind
    from tsr.client.local import abandon_embedded

    with contextlib.suppress(Exception):
        abandon_embedded()
    os._exit(INTERRUPTED)
