"""Interrupts held while a process starts: the clean-up can only kill a process it holds."""
import os
import signal
import subprocess
import time

import pytest

from lanemodel.engine.interrupts import starting, terminate_as_interrupt
from lanemodel.engine.launcher import _start_and_supervise


def signal_self(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)                  # the handler has run by now, unless the signal is held


@pytest.fixture
def ctrl_c_interrupts():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal (an xdist worker ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_start_interrupts_once_the_block_is_done(sig, ctrl_c_interrupts):
    done = []
    with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt) as raised:
        with starting():
            signal_self(sig)
            done.append(True)
    assert done == [True]
    assert ("SIGTERM" in str(raised.value)) == (sig == signal.SIGTERM)


def test_the_handlers_in_place_before_are_back_afterwards(ctrl_c_interrupts):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with terminate_as_interrupt():
        inside = signal.getsignal(signal.SIGTERM)
        with starting():
            assert signal.getsignal(signal.SIGTERM) is not inside
        assert signal.getsignal(signal.SIGTERM) is inside
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_process_started_as_the_interrupt_lands_is_killed_on_the_way_out(tmp_path):
    """The interrupt arrives after the process exists and before the launcher's list holds it (as when it
    lands inside Popen while the child execs): held, the process is listed first and then killed."""
    started = []

    def start(procs: list) -> None:
        with starting():
            proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
            started.append(proc)
            signal_self(signal.SIGTERM)
            procs.append(proc)

    with terminate_as_interrupt(), pytest.raises(KeyboardInterrupt):
        _start_and_supervise(start, time.perf_counter() + 30, tmp_path, 30, None)
    (proc,) = started
    assert proc.poll() == -signal.SIGKILL
