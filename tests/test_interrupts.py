"""Signals in a polled driver loop are raised between Ray calls, elsewhere at once."""

import os
import signal

import pytest

from cluster import interrupts
from landscape.errors import Terminated

pytestmark = pytest.mark.sends_sigint  # conftest: these Ctrl-Cs do not stop the suite


@pytest.fixture
def installed():
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert interrupts.install()
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


@pytest.mark.parametrize("sig, exc", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_while_polled_waits_for_check(installed, sig, exc):
    with interrupts.polled():
        os.kill(os.getpid(), sig)  # the handler runs here and only records it
        done = sum(range(1000))  # the loop goes on to its next check
        with pytest.raises(exc):
            interrupts.check()
        interrupts.check()  # raised once, then cleared
    assert done == 499500


def test_a_signal_after_the_loops_last_check_is_raised_when_the_loop_ends(installed):
    with pytest.raises(KeyboardInterrupt):
        with interrupts.polled():
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(10))  # the loop ends without another check
    interrupts.check()


def test_a_second_signal_while_polled_raises_at_once(installed):
    with interrupts.polled():
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C pressed twice: do not wait for the loop
            sum(range(10))
        interrupts.check()  # nothing left pending


@pytest.mark.parametrize("sig, exc", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_outside_a_polled_loop_a_signal_raises_at_once(installed, sig, exc):
    with pytest.raises(exc):
        os.kill(os.getpid(), sig)
        sum(range(10))
