"""Ctrl-C and SIGTERM end a driver at a safe point between Ray calls.

Python raises KeyboardInterrupt (and the CLI's SIGTERM handler Terminated) in
whatever the main thread is doing. A driver spends nearly all its time inside
`ray.wait`, whose C++ code runs the handler itself: the exception then comes out
as a SystemError and a traceback instead of the one-line exit (seen with
SIGTERM), or the driver does not end at all (seen with Ctrl-C, in tests). So while a driver loop
polls (`polled()`), a signal only records itself, and the loop raises it with
`check()` after each short wait; elsewhere, or at a second signal, it raises at
once. Without `install()` (library use) nothing changes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from landscape.errors import Terminated

_pending: int | None = None  # the signal received while polled, not yet raised
_polling = 0
_sigint_seen = False  # a Ctrl-C reached the handler (see took_sigint)


def _exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _handler(signum, frame) -> None:
    global _pending, _sigint_seen
    _sigint_seen = _sigint_seen or signum == signal.SIGINT
    if _polling and _pending is None:
        _pending = signum  # check() raises it between Ray calls
        return
    _pending = None
    raise _exception(signum)  # not in a polled loop, or pressed twice: at once


def install() -> bool:
    """Route SIGINT and SIGTERM through the handler (main thread only); True if installed."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        return False
    _pending = None
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return True


def uninstall() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def polled() -> Iterator[None]:
    """A loop that calls check() at least every second or so."""
    global _polling
    _polling += 1
    try:
        yield
    finally:
        _polling -= 1
    check()  # a signal after the loop's last check still ends the run


def check() -> None:
    """Raise the signal received while polled (KeyboardInterrupt or Terminated), if any."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise _exception(signum)


def took_sigint() -> bool:
    """Whether a Ctrl-C reached the handler since the last call. The CLI turns Ctrl-C into exit
    status 130, which is right for a process; a program that calls `main(argv)` in-process (the
    test suite) would then go on as if nothing happened, so it asks this and stops too."""
    global _sigint_seen
    seen, _sigint_seen = _sigint_seen, False
    return seen
