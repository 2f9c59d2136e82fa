"""A real cgroup with a CPU quota or a memory limit for the tests, as `docker run --cpus=1 --memory=3g` or a
pod's limits make one: made under whichever hierarchy holds the controller here (cgroup v1's cpu and memory,
or v2), a command run inside it from its first instruction, and the cgroup removed afterwards with anything
left in it killed. Skipped, with the reason, where no cgroup can be made (not root, no writable hierarchy)."""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lanemodel.engine.cgroup import controller_mount

REQUIRE = "LANEBENCH_REQUIRE_CGROUPS"     # CI sets it: a cgroup test it cannot run is a failure there

# Runs argv[2:] after moving itself into every cgroup.procs file named (comma-separated) in argv[1].
ENTER = ("import os, sys\n"
         "for procs in sys.argv[1].split(','):\n"
         "    open(procs, 'w').write(str(os.getpid()))\n"
         "os.execv(sys.argv[2], sys.argv[2:])\n")


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE):
        pytest.fail(f"{REQUIRE} is set, but {reason}", pytrace=False)
    pytest.skip(reason)


def _directory(controller: str, name: str) -> Path:
    mount = controller_mount(controller)
    if mount is None:
        skip_or_fail(f"no cgroup hierarchy holds the {controller} controller here")
    base = mount.root if mount.version == 1 else mount.chain()[-1]
    if mount.version == 2:
        controllers = (base / "cgroup.subtree_control").read_text().split()
        if controller not in controllers:
            try:
                (base / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError as exc:
                skip_or_fail(f"cgroup v2 at {base} does not delegate {controller}: {exc.strerror}")
    return base / name


@contextmanager
def limited_cgroup(cpu_quota_us: int | None = None, memory_bytes: int | None = None) -> Iterator[tuple[list, dict]]:
    """(command prefix that runs a program inside the new cgroup, {controller: its directory})."""
    if os.geteuid() != 0:
        skip_or_fail("making a cgroup needs root")
    name = f"lanebench-test-{uuid.uuid4().hex[:8]}"
    made: dict[str, Path] = {}
    try:
        for controller, limit in (("cpu", cpu_quota_us), ("memory", memory_bytes)):
            if limit is None:
                continue
            directory = _directory(controller, name)
            if directory in made.values():       # v2: one cgroup holds both
                made[controller] = directory
            else:
                try:
                    directory.mkdir()
                except OSError as exc:
                    skip_or_fail(f"cannot make {directory}: {exc.strerror}")
                made[controller] = directory
            if controller == "cpu":
                if (directory / "cpu.max").exists():
                    (directory / "cpu.max").write_text(f"{limit} 100000")
                else:
                    (directory / "cpu.cfs_period_us").write_text("100000")
                    (directory / "cpu.cfs_quota_us").write_text(str(limit))
            else:
                for limit_file in ("memory.max", "memory.limit_in_bytes"):
                    if (directory / limit_file).exists():
                        (directory / limit_file).write_text(str(limit))
                        break
                if (directory / "memory.memsw.limit_in_bytes").exists():    # v1 with swap accounting
                    (directory / "memory.memsw.limit_in_bytes").write_text(str(limit))
                if (directory / "memory.swap.max").exists():
                    (directory / "memory.swap.max").write_text("0")
        procs = ",".join(str(directory / "cgroup.procs") for directory in dict.fromkeys(made.values()))
        yield [sys.executable, "-c", ENTER, procs, sys.executable], made
    finally:
        for directory in dict.fromkeys(made.values()):
            _empty_and_remove(directory)


def _empty_and_remove(directory: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while directory.exists():
        try:
            pids = [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            directory.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def cgroup_oom_kills(directory: Path) -> int:
    """The out-of-memory kills counted in a memory cgroup made by ``limited_cgroup``."""
    for name in ("memory.events", "memory.oom_control"):
        if (directory / name).exists():
            for line in (directory / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return 0
