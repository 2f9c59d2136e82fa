"""What a session raises: bad input found before any launch, and a launch that failed."""
from __future__ import annotations


class SessionError(ValueError):
    """The session cannot run as asked (bad options, a baseline it cannot compare with, a REF that cannot run,
    no emulated nodes here): found before any launch; the message names the input. pytest exits 4, the CLI 2."""


class LaunchFailed(RuntimeError):
    """A launch, probe or microbenchmark failed; what it measured before failing is kept (and saved)."""


class NotRun(RuntimeError):
    """A world size the session did not launch, and why (it would not fit in memory); the rest of the curve
    stands."""
