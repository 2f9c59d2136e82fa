"""The machine as a container, a pod or a CI runner gives it: the CPU quota and the memory limit of this
process's cgroups (v2, or v1's cpu and memory controllers), read from /proc and the cgroup file systems.

``docker run --cpus=1`` or a Kubernetes CPU limit leaves the affinity mask at every CPU of the host and
sets a CFS quota instead; a memory limit leaves /proc/meminfo at the host's. Both are read here, with the
strictest limit among the process's cgroup and its ancestors (a parent's limit binds its children).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 2**60      # v1 writes "no limit" as a page-rounded 2**63 - 1; anything above this is no limit


@dataclass(frozen=True)
class Mount:
    """One cgroup hierarchy: where it is mounted, the path of this process's cgroup in it, its version."""

    root: Path
    path: str
    version: int

    def chain(self) -> list[Path]:
        """The process's cgroup directory and each ancestor's, up to the mount's root."""
        parts = [part for part in self.path.strip("/").split("/") if part]
        return [self.root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _mounts(proc: Path) -> dict[str, Mount]:
    """Controller ("cpu", "memory") -> its hierarchy; v2 serves both where v1 does not."""
    memberships = {}
    for line in (proc / "self" / "cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            memberships[name] = path
    found: dict[str, Mount] = {}
    for line in (proc / "self" / "mountinfo").read_text().splitlines():
        fields = line.split()
        tail = fields[fields.index("-") + 1:]
        fstype, options, mount_root, point = tail[0], tail[2], fields[3], Path(fields[4])
        if fstype == "cgroup2" and "" in memberships:
            inside = os.path.relpath(memberships[""], mount_root) if mount_root != "/" else memberships[""]
            for name in ("cpu", "memory"):
                found.setdefault(f"v2 {name}", Mount(point, inside, 2))
        elif fstype == "cgroup":
            for name in ("cpu", "memory"):
                if name in options.split(",") and name in memberships:
                    found[name] = Mount(point, memberships[name], 1)
    for name in ("cpu", "memory"):       # a v1 controller wins where both are mounted: it is the one in force
        if name not in found and f"v2 {name}" in found:
            found[name] = found[f"v2 {name}"]
    return {name: mount for name, mount in found.items() if not name.startswith("v2 ")}


def controller_mount(controller: str, proc: Path = Path("/proc")) -> Mount | None:
    """The hierarchy holding ``controller`` ("cpu" or "memory") for this process; None where none does, or
    /proc cannot say (a container without cgroup files: then nothing is limited that the suite can see)."""
    try:
        return _mounts(proc).get(controller)
    except (OSError, ValueError, IndexError):
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class CpuQuota:
    quota_us: int
    period_us: int
    where: str          # the cgroup file that sets it

    @property
    def cpus(self) -> float:
        return self.quota_us / self.period_us


def cpu_quota(proc: Path = Path("/proc")) -> CpuQuota | None:
    """The strictest CFS quota over this process's cgroup and its ancestors; None without one (or unreadable)."""
    mount = controller_mount("cpu", proc)
    if mount is None:
        return None
    quotas = []
    for directory in mount.chain():
        if mount.version == 2:
            text = _read(directory / "cpu.max")
            if text and not text.startswith("max"):
                quota, period = text.split()
                quotas.append(CpuQuota(int(quota), int(period), str(directory / "cpu.max")))
        else:
            quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
            if quota and period and int(quota) > 0:
                quotas.append(CpuQuota(int(quota), int(period), str(directory / "cpu.cfs_quota_us")))
    return min(quotas, key=lambda found: found.cpus, default=None)


def memory_limit(proc: Path = Path("/proc")) -> tuple[int, str] | None:
    """(bytes, the file that sets it): the strictest memory limit over this process's cgroup and its ancestors;
    None without one."""
    mount = controller_mount("memory", proc)
    if mount is None:
        return None
    name = "memory.max" if mount.version == 2 else "memory.limit_in_bytes"
    limits = []
    for directory in mount.chain():
        text = _read(directory / name)
        if text and text != "max" and int(text) < UNLIMITED:
            limits.append((int(text), str(directory / name)))
    return min(limits, default=None)


def memory_used(proc: Path = Path("/proc")) -> int | None:
    """Bytes the process's memory cgroup holds now that the kernel cannot simply drop: its usage less its
    inactive file pages (the page cache a limit reclaims first, as a container's working set is counted);
    None where it has none to read."""
    mount = controller_mount("memory", proc)
    if mount is None:
        return None
    own = mount.chain()[0]
    usage = _read(own / ("memory.current" if mount.version == 2 else "memory.usage_in_bytes"))
    if not usage:
        return None
    stat = dict(line.split() for line in (_read(own / "memory.stat") or "").splitlines() if len(line.split()) == 2)
    inactive = int(stat.get("inactive_file" if mount.version == 2 else "total_inactive_file", 0))
    return max(int(usage) - inactive, 0)


def oom_kills(proc: Path = Path("/proc")) -> int | None:
    """How many processes the out-of-memory killer has killed in this process's memory cgroup (v2
    memory.events, v1 memory.oom_control's oom_kill, where the kernel counts it); None where nothing says."""
    mount = controller_mount("memory", proc)
    if mount is None:
        return None
    text = _read(mount.chain()[0] / ("memory.events" if mount.version == 2 else "memory.oom_control"))
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


def resident_bytes(proc: Path = Path("/proc")) -> tuple[int, int]:
    """(resident, private) bytes of this process now: VmRSS, and RssAnon, its own part (the rest is pages of
    files, torch's libraries among them, that every process mapping them shares)."""
    kib = {line.split(":")[0]: int(line.split()[1]) for line in (_read(proc / "self" / "status") or "").splitlines()
           if line.startswith(("VmRSS:", "RssAnon:"))}
    return kib.get("VmRSS", 0) * 1024, kib.get("RssAnon", 0) * 1024


def mem_available(proc: Path = Path("/proc")) -> int | None:
    """MemAvailable of /proc/meminfo in bytes (the host's or the VM's, whatever limit a cgroup sets)."""
    for line in (_read(proc / "meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


@dataclass(frozen=True)
class Cores:
    """The cores a measurement may use: the fewer of the affinity mask and the CPU quota (rounded down, never
    below 1), and where that number comes from."""

    count: int
    affinity: int
    quota: CpuQuota | None

    @property
    def source(self) -> str:
        plural = "CPU" if self.count == 1 else "CPUs"
        if self.quota is None:
            return f"{self.count} {plural}: affinity {self.affinity} (no CPU quota)"
        bound = "cgroup quota" if self.count < self.affinity or self.quota.cpus < self.affinity else "affinity"
        cpus = f"{self.quota.cpus:g} CPU" + ("" if self.quota.cpus == 1 else "s")
        return (f"{self.count} {plural}: {bound} {self.quota.quota_us}/{self.quota.period_us} us ({cpus}); "
                f"affinity {self.affinity}")


def usable_cores(affinity: int, quota: CpuQuota | None) -> Cores:
    limit = affinity if quota is None else max(1, math.floor(quota.cpus))
    return Cores(min(affinity, limit), affinity, quota)


@dataclass(frozen=True)
class Memory:
    """Memory a measurement may use: the smaller of MemAvailable and the cgroup's limit less what the cgroup
    holds already, and where that number comes from."""

    available: int                  # bytes
    source: str


def usable_memory(proc: Path = Path("/proc")) -> Memory:
    meminfo, limit = mem_available(proc), memory_limit(proc)
    said = f"MemAvailable {meminfo / 2**30:.1f} GiB" if meminfo is not None else "no MemAvailable"
    if limit is None:
        return Memory(meminfo or 0, f"{(meminfo or 0) / 2**30:.1f} GiB: {said} (no cgroup memory limit)")
    used = memory_used(proc) or 0
    left = limit[0] - used
    if meminfo is not None and meminfo <= left:
        return Memory(meminfo, f"{meminfo / 2**30:.1f} GiB: {said} (cgroup limit {limit[0] / 2**30:.1f} GiB)")
    return Memory(left, f"{left / 2**30:.1f} GiB: cgroup limit {limit[0] / 2**30:.1f} GiB ({limit[1]}) less "
                        f"{used / 2**30:.1f} GiB in use; {said}")


def oom_kill_count(proc: Path = Path("/proc")) -> tuple[int, str] | None:
    """(count, what counts it): the out-of-memory kills of this process's memory cgroup, else of the whole
    kernel (/proc/vmstat); None where neither says."""
    found = oom_kills(proc)
    if found is not None:
        return found, "the cgroup's oom_kill count"
    for line in (_read(proc / "vmstat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value), "the kernel's oom_kill count (/proc/vmstat)"
    return None


def raise_oom_score(by: int = 500) -> None:
    """Make this process the out-of-memory killer's likelier victim than its parent (a rank before the session
    that writes the report): oom_score_adj raised by ``by``, capped at 1000. Raising it needs no privilege."""
    path = Path("/proc/self/oom_score_adj")
    try:
        path.write_text(str(min(1000, int(path.read_text()) + by)))
    except (OSError, ValueError):
        pass
