"""What a result needs to say about where it was measured."""
from __future__ import annotations

import os
import platform
import socket
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def physical_cores() -> int:
    """Distinct (package, core) pairs in sysfs; logical count when sysfs does not say."""
    cores = set()
    for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
        try:
            core = (cpu / "topology" / "core_id").read_text().strip()
            package = (cpu / "topology" / "physical_package_id").read_text().strip()
        except OSError:
            continue
        cores.add((package, core))
    return len(cores) or (os.cpu_count() or 1)


def machine_info() -> dict:
    import torch
    import torch.distributed as dist

    from lanemodel.engine.cgroup import cpu_quota, usable_cores, usable_memory

    cores = usable_cores(len(os.sched_getaffinity(0)), cpu_quota())
    memory = usable_memory()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cores": os.cpu_count(),
        "cores_available": cores.count,
        "cores_source": cores.source,
        "memory_available_gb": round(memory.available / 2**30, 2),
        "memory_source": memory.source,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gloo_available": dist.is_gloo_available(),
    }
