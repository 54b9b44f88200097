"""Ray Train's fit() runs in a thread while the main thread polls: SIGTERM and Ctrl-C end it at a safe point."""

import os
import signal
import threading
import time

import pytest

from cluster import interrupts
from cluster.ray_train import fit_at_safe_point
from landscape.errors import ClusterError, Terminated

from .test_interrupts import installed  # noqa: F401 (the fixture: the CLI's handlers installed)

pytestmark = pytest.mark.sends_sigint  # conftest: these Ctrl-Cs do not stop the suite


@pytest.mark.parametrize("sig, exc", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_during_fit_is_raised_by_the_polling_main_thread(installed, sig, exc):
    release, seen = threading.Event(), {}

    def fit():
        seen["main"] = threading.current_thread() is threading.main_thread()
        release.wait(10)  # stands in for ray.get inside fit(): it never sees the signal
        seen["finished"] = True

    threading.Timer(0.3, os.kill, (os.getpid(), sig)).start()
    t0 = time.monotonic()
    with pytest.raises(exc):
        fit_at_safe_point(fit, poll_s=0.05)
    assert time.monotonic() - t0 < 3 and seen["main"] is False and "finished" not in seen
    release.set()
    interrupts.check()  # nothing left pending


def test_fit_result_and_errors_come_back_to_the_caller():
    assert fit_at_safe_point(lambda: 42) == 42

    def failing():
        raise ClusterError("workers failed")

    with pytest.raises(ClusterError, match="workers failed"):
        fit_at_safe_point(failing)
