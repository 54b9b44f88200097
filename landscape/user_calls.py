"""Calling a user's factory (`kind: import`): its output, its exits and its silence, attributed to it.

A factory is the user's code, run inside `landscape`. Three things it may do would
otherwise look like landscape's own behaviour:
- take long (reading a large data set, building a large model): after a few
  seconds, and then at doubling intervals, a line says what is being waited on;
- exit (`sys.exit`, or argparse parsing `sys.argv`, which holds landscape's own
  arguments, and exiting on them): refused in one line saying the factory exited;
- print an error first (argparse's `usage: ... error: ...`): what it writes to
  stderr while it runs is held back, shown after it returns, and when it exits or
  raises, its last line is quoted in landscape's one line as the factory's.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from typing import Callable

SLOW_NOTICE_S = 5.0  # first "still waiting" line after this many seconds, then at 2x, 4x, ...


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


@contextlib.contextmanager
def still_waiting(what: str, stream=None):
    """While the body runs: 'still waiting for WHAT (N s)' on `stream` (default: stderr now) after SLOW_NOTICE_S, 2x, 4x, ..."""
    stream = stream or sys.stderr
    done = threading.Event()
    t0 = time.monotonic()

    def notices():
        wait = SLOW_NOTICE_S
        while not done.wait(max(0.0, t0 + wait - time.monotonic())):
            print(f"still waiting for {what} ({time.monotonic() - t0:.0f} s)", file=stream, flush=True)
            wait *= 2

    thread = threading.Thread(target=notices, name="still-waiting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def call_factory(fn: Callable, kwargs: dict, what: str, error: type[Exception], contract: str, args_field: str):
    """fn(**kwargs) (the spec's `args_field`), refusing with `error` (one line naming `what`) when it raises or exits;
    `contract`: what it must return. See the module docstring."""
    real = sys.stderr
    held = io.StringIO()
    try:
        with still_waiting(what, real), contextlib.redirect_stderr(held):
            made = fn(**kwargs)
    except SystemExit as e:
        said = _last_line(held)
        quoted = f" after printing {said!r} (the factory's message, not landscape's)" if said else ""
        argv = " (a factory that parses sys.argv sees landscape's own arguments)" if "usage:" in held.getvalue() else ""
        raise error(f"{what} exited (sys.exit({e.code!r})){quoted}{argv}; it must return {contract}, not exit") from None
    except Exception as e:
        said = _last_line(held)
        quoted = f" (it printed {said!r})" if said and said not in str(e) else ""
        raise error(f"{what} raised {type(e).__name__}: {first_line(e)}{quoted}; it is called with {args_field} as keyword "
                    f"arguments ({', '.join(kwargs) or 'none'}) and must return {contract}") from None
    real.write(held.getvalue())  # what it printed, now that it returned
    return made


def _last_line(held: io.StringIO) -> str:
    lines = [ln.strip() for ln in held.getvalue().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
