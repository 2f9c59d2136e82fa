"""The machine as a container gives it, read from a fake /proc and cgroup file system (v1 and v2): the CPU
quota (the strictest over the cgroup's ancestors), the cores it leaves, the memory limit, what the cgroup
holds, the out-of-memory kills; and the memory plan that decides from them."""
from pathlib import Path

import pytest
from test_breakdown import make_doc

from lanemodel.engine.cgroup import (
    CpuQuota,
    cpu_quota,
    memory_limit,
    oom_kill_count,
    usable_cores,
    usable_memory,
)
from lanemodel.session.memory import GIB, MARGIN, MemoryPlan


def fake_proc(tmp_path: Path, version: int, files: dict[str, str], meminfo_kib: int = 20 * 2**20) -> Path:
    """A /proc whose process sits in cgroup /job/step, with ``files`` (paths under the mount) written."""
    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    if version == 1:
        (proc / "self" / "cgroup").write_text("5:memory:/job/step\n3:cpu,cpuacct:/job/step\n0::/\n")
        (proc / "self" / "mountinfo").write_text(
            f"32 31 0:29 / {mount}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
            f"35 31 0:32 / {mount}/memory rw - cgroup cgroup rw,memory\n"
            f"41 31 0:38 / {mount}/unified rw - cgroup2 cgroup2 rw\n")
    else:
        (proc / "self" / "cgroup").write_text("0::/job/step\n")
        (proc / "self" / "mountinfo").write_text(f"31 23 0:28 / {mount} rw - cgroup2 cgroup2 rw\n")
    (proc / "meminfo").write_text(f"MemTotal: {2 * meminfo_kib} kB\nMemAvailable: {meminfo_kib} kB\n")
    (proc / "vmstat").write_text("pgfault 10\noom_kill 3\n")
    for name, text in files.items():
        (mount / name).parent.mkdir(parents=True, exist_ok=True)
        (mount / name).write_text(text)
    return proc


def test_a_v1_quota_of_one_and_a_half_cpus_leaves_one_core_and_names_its_source(tmp_path):
    proc = fake_proc(tmp_path, 1, {"cpu,cpuacct/job/step/cpu.cfs_quota_us": "150000",
                                   "cpu,cpuacct/job/step/cpu.cfs_period_us": "100000",
                                   "cpu,cpuacct/job/cpu.cfs_quota_us": "-1",
                                   "cpu,cpuacct/job/cpu.cfs_period_us": "100000"})
    quota = cpu_quota(proc)
    assert (quota.quota_us, quota.period_us, quota.cpus) == (150000, 100000, 1.5)
    cores = usable_cores(2, quota)
    assert cores.count == 1
    assert cores.source == "1 CPU: cgroup quota 150000/100000 us (1.5 CPUs); affinity 2"


def test_the_strictest_ancestor_binds_and_a_fraction_never_leaves_less_than_one_core(tmp_path):
    proc = fake_proc(tmp_path, 2, {"job/step/cpu.max": "max 100000", "job/cpu.max": "50000 100000",
                                   "cpu.max": "400000 100000"})
    quota = cpu_quota(proc)
    assert quota.cpus == 0.5 and quota.where.endswith("job/cpu.max")
    assert usable_cores(4, quota).count == 1


def test_no_quota_changes_nothing(tmp_path):
    proc = fake_proc(tmp_path, 2, {"job/step/cpu.max": "max 100000"})
    assert cpu_quota(proc) is None
    cores = usable_cores(2, None)
    assert (cores.count, cores.source) == (2, "2 CPUs: affinity 2 (no CPU quota)")
    assert usable_cores(8, CpuQuota(400000, 100000, "x")).count == 4      # a quota above the mask: the mask


@pytest.mark.parametrize("version, files", [
    (1, {"memory/job/step/memory.limit_in_bytes": str(3 * 2**30), "memory/job/memory.limit_in_bytes": str(2**63 - 4096),
         "memory/job/step/memory.usage_in_bytes": str(2**30),
         "memory/job/step/memory.stat": f"cache 5\ntotal_inactive_file {2**29}\n",
         "memory/job/step/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"}),
    (2, {"job/step/memory.max": str(3 * 2**30), "job/memory.max": "max",
         "job/step/memory.current": str(2**30), "job/step/memory.stat": f"anon 5\ninactive_file {2**29}\n",
         "job/step/memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n"}),
])
def test_a_memory_limit_less_what_the_cgroup_holds_is_what_is_available(tmp_path, version, files):
    proc = fake_proc(tmp_path, version, files)
    limit, where = memory_limit(proc)
    assert limit == 3 * 2**30 and where.endswith("job/step/memory.limit_in_bytes" if version == 1 else "memory.max")
    memory = usable_memory(proc)
    assert memory.available == 3 * 2**30 - 2**30 + 2**29        # inactive page cache is not held
    assert memory.source.startswith("2.5 GiB: cgroup limit 3.0 GiB") and "MemAvailable 20.0 GiB" in memory.source
    assert oom_kill_count(proc) == (2, "the cgroup's oom_kill count")


def test_without_a_memory_limit_mem_available_stands_and_the_kernel_counts_oom_kills(tmp_path):
    proc = fake_proc(tmp_path, 2, {}, meminfo_kib=2**20)
    memory = usable_memory(proc)
    assert memory.available == 2**30 and memory.source == "1.0 GiB: MemAvailable 1.0 GiB (no cgroup memory limit)"
    assert oom_kill_count(proc) == (3, "the kernel's oom_kill count (/proc/vmstat)")


def launch_with_ranks(world_size: int, peak_mb: float, shared_mb: float):
    launch = make_doc([[{"step_time": 0.5}] * world_size] * 3)
    launch.rank_metas = [{"rank": r, "max_rss_mb": peak_mb, "shared_rss_mb": shared_mb} for r in range(world_size)]
    return launch


def test_the_memory_plan_predicts_from_each_ranks_own_memory_plus_the_shared_pages_once():
    from lanemodel.engine.cgroup import Memory

    plan = MemoryPlan(lambda: Memory(3 * GIB, "3.0 GiB: test"))
    plan.observe(launch_with_ranks(1, 1000, 400))
    plan.observe(launch_with_ranks(2, 950, 400))      # smaller per-rank batch, smaller peak: the larger one stands
    own, shared = 600 * 2**20, 400 * 2**20
    assert plan.need(4) == pytest.approx((4 * own + shared) * (1 + MARGIN))
    assert plan.refusal(3) == ""
    reason = plan.refusal(8)
    assert reason.startswith(f"needs about {(8 * own + shared) * (1 + MARGIN) / GIB:.1f} GiB, 3.0 GiB available")
    assert "at world size 1, 2" in reason


def test_a_launch_during_which_the_oom_killer_killed_says_so_and_another_does_not(monkeypatch):
    from lanemodel.engine import launcher

    counts = iter([(0, "the cgroup's oom_kill count"), (1, "the cgroup's oom_kill count")])
    monkeypatch.setattr(launcher, "oom_kill_count", lambda: next(counts))
    failed = launcher.LaunchError("world size 2 failed: rank 1 was killed by signal SIGKILL\nrecords kept in x",
                                  Path("x"), [11, 12])
    said = launcher._with_oom_kills(failed, launcher.oom_kill_count())
    assert str(said) == ("world size 2 failed: rank 1 was killed by signal SIGKILL (the out-of-memory killer: 1 "
                         "process killed during this launch; the cgroup's oom_kill count 0 -> 1)\nrecords kept in x")
    assert said.pids == [11, 12] and said.run_dir == Path("x")
    monkeypatch.setattr(launcher, "oom_kill_count", lambda: (1, "the kernel's oom_kill count (/proc/vmstat)"))
    assert launcher._with_oom_kills(failed, (1, "the kernel's oom_kill count (/proc/vmstat)")) is failed


def test_a_rank_is_the_out_of_memory_killers_likelier_victim_than_its_session():
    import subprocess
    import sys

    session = int(Path("/proc/self/oom_score_adj").read_text())
    child = subprocess.run([sys.executable, "-c", "from lanemodel.engine.cgroup import raise_oom_score; "
                            "raise_oom_score(); print(open('/proc/self/oom_score_adj').read())"],
                           capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert int(child.stdout) == min(1000, session + 500)
    assert int(Path("/proc/self/oom_score_adj").read_text()) == session
