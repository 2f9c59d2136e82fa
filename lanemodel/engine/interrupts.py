"""Interrupts as the engine takes them: SIGTERM like Ctrl-C, and neither while a process is being started.

An interrupt that lands inside ``subprocess.Popen`` after the fork (while the child execs) unwinds before the
Popen object is returned: the process is in no list that a clean-up walks, so nothing kills it and it
outlives the command. ``starting()`` holds SIGINT and SIGTERM for the milliseconds a start takes and
delivers them as soon as the caller holds the new process.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) ends the work like Ctrl-C, so processes are killed on the way out
    instead of outliving the command. Only the main thread can install a handler."""
    if not _main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"terminated by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def starting() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block starts a process and stores it; on leaving, deliver the first
    one that arrived to the handler that was in place (a KeyboardInterrupt, or the default action)."""
    held = {sig: signal.getsignal(sig) for sig in HELD_SIGNALS} if _main_thread() else {}
    held = {sig: handler for sig, handler in held.items() if handler is not None}   # None: set outside Python
    arrived: list[int] = []
    for sig in held:
        signal.signal(sig, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)
        if arrived:
            signal.raise_signal(arrived[0])
