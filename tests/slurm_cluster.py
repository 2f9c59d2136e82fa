"""A real one-node Slurm on this machine for the tests: munged, slurmctld and slurmd from Debian's slurm-wlm and
munge, with a generated slurm.conf, ports and state of their own under a temporary directory, stopped (and
every job cancelled) when the test session ends. Skipped, with the reason, where Slurm is not installed or
the tests do not run as root (slurmd starts tasks as their users)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "srun", "squeue", "scancel", "sinfo")
START_TIMEOUT_S = 60
PARTITION = "lanebench"


def missing_binaries() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(root: Path, host: str, cpus: int, munge_socket: Path) -> str:
    ports = _free_port(), _free_port()
    return "\n".join([
        "ClusterName=lanebench", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={munge_socket}",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "SchedulerType=sched/builtin",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2",
        "SlurmctldTimeout=30", "SlurmdTimeout=30", "InactiveLimit=0", "KillWait=5", "MinJobAge=2",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES",
    ]) + "\n"


def _wait_until(check, timeout_s: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
    raise RuntimeError(f"{what} within {timeout_s:.0f} s; logs:\n{tails}")


@contextmanager
def slurm_cluster(root: Path):
    """Yield the environment (SLURM_CONF) of a running one-node cluster; everything stops on the way out."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key, munge_socket = root / "munge" / "munge.key", root / "munge" / "munge.socket"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, os.cpu_count() or 2, munge_socket))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    env.pop("SLURM_JOB_ID", None)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={munge_socket}",
             f"--pid-file={root / 'munge' / 'munged.pid'}", f"--log-file={root / 'munge' / 'munged.log'}",
             f"--seed-file={root / 'munge' / 'seed'}"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_until(munge_socket.exists, START_TIMEOUT_S, "munged did not start", [root / "munge" / "munged.log"])
        for daemon in (["slurmctld", "-D", "-i", "-f", str(conf)], ["slurmd", "-D", "-f", str(conf), "-N", host]):
            procs.append(subprocess.Popen(daemon, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))

        def idle() -> bool:
            out = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=env, capture_output=True, text=True,
                                 timeout=10).stdout
            return "idle" in out
        _wait_until(idle, START_TIMEOUT_S, "the node did not come up idle",
                    [root / "slurmctld.log", root / "slurmd.log"])
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--full", "--signal=KILL", "--user=root"], env=env, capture_output=True,
                       timeout=30)
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def queued(env: dict[str, str]) -> list[str]:
    """Every job and step squeue lists."""
    out = subprocess.run(["squeue", "--noheader", "--format=%i %j"], env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=30).stdout
    steps = subprocess.run(["squeue", "--steps", "--noheader", "--format=%i %j"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=30).stdout
    return [line for line in (out + steps).splitlines() if line.strip()]
