"""A store write is never cut in half by SIGTERM: the signal waits for the write under way to end.

`cli`'s SIGTERM handler raises `Terminated` wherever the program is. Raised inside an MLflow write to a SQLite store,
it leaves that connection's transaction open, holding the store's write lock, and the `except` that then closes the
run KILLED waits for the same lock from another connection of the same process until SQLite gives up ("database is
locked": the run stays RUNNING, or the command fails with exit 1 instead of 143; seen in
tests/integration/test_signals.py and test_parent_death.py). `tracking.client` wraps every client call in
`uninterrupted()`; the SIGTERM and SIGINT (Ctrl-C) handlers ask `defer` first, and a deferred signal is raised when
the outermost write ends. `deferring` does the same for a handler another library installed (submitit's time-limit
handler, which exits the job wherever it is).
Main thread only, as Python runs signal handlers there. No torch, MLflow or files."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

_depth = 0
_pending: Callable[[], None] | None = None


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A block that a deferred signal does not interrupt; the signal (if any came) is raised when it ends, also when
    the block itself raised (the signal's exception then carries the block's as its context)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            act, _pending = _pending, None
            act()


def defer(act: Callable[[], None], again_acts: bool = False) -> bool:
    """From a signal handler: inside an `uninterrupted` block keep `act` (e.g. raise Terminated) for its end and
    return True; outside return False (the handler acts now). `again_acts`: when a signal already waits, this one
    acts now (a second Ctrl-C: the user insists, as Python's own handler lets them)."""
    global _pending
    if _depth == 0 or (again_acts and _pending is not None):
        return False
    _pending = act
    return True


def waiting(handler: Callable[[int, object], object], again_acts: bool = False) -> Callable[[int, object], None]:
    """`handler` as a signal handler that waits for the store write under way (`defer`)."""

    def wait_then_act(sig: int, frame: object) -> None:
        if not defer(lambda: handler(sig, frame), again_acts=again_acts):
            handler(sig, frame)

    return wait_then_act


def deferring(signum: int, again_acts: bool = False) -> None:
    """Make the handler now installed for `signum` wait for the store write under way (main thread only; nothing
    for a default or ignored disposition, which Python does not run as a handler)."""
    handler = signal.getsignal(signum)
    if callable(handler):
        signal.signal(signum, waiting(handler, again_acts))
